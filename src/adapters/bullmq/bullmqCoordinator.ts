import type { Job, Queue, Worker } from 'bullmq'
import type { Redis } from 'ioredis'
import { DependencyError } from '../server/errors.js'
import { settles } from '../server/settles.js'
import type { CoordinatorHandlers, FlowChange, FlowCoordinator } from '../server/types.js'
import { plainCause, resolveConnection, type RedisConnectionOptions } from './connection.js'

/** Options of {@link createBullMQCoordinator}. */
export interface BullMQCoordinatorOptions {
  /**
   * Redis: a `redis://[user:password@]host[:port][/db]` URL (`rediss://` for TLS), or ioredis
   * options `{ host, port, password, db, tls, ... }`. The coordinator opens its own connections
   * (commands and publishing, the worker and its blocking fetch, the subscriber) and sets the
   * options BullMQ needs on each. The password never appears in an error.
   */
  connection: string | RedisConnectionOptions
  /**
   * Every Redis key of the deployment starts with `${prefix}:` (BullMQ's own `prefix`; the queue
   * is `${prefix}:flows`), and so do the pub/sub channels. Replicas of one deployment share it;
   * two deployments on one Redis need two prefixes. On Redis Cluster, use a hash tag: `'{kyc}'`.
   * @default '10npay'
   */
  prefix?: string
  /**
   * How long a replica's lock on a running stretch (a BullMQ job) lasts without renewal. BullMQ
   * renews it every `lockDurationMs / 2`; a replica that is killed or frozen loses its stretches
   * to the others after this long plus the stalled-job check (`stalledIntervalMs`).
   * @default 10000
   */
  lockDurationMs?: number
  /**
   * How often the replicas (together: one check per interval across them) look for stretches
   * whose lock ran out and put them back in the queue.
   * @default lockDurationMs / 2
   */
  stalledIntervalMs?: number
  /**
   * How many queued stretches this replica runs at once. A stretch is a polling loop that mostly
   * sleeps, so this can be high. The service queues only the stretches nobody drives (a killed
   * or closing replica's flows, found by its reconciler); a stretch a replica starts itself — the
   * initiate of a flow it started, the polling after an event it applied — is not counted here.
   * @default 1000
   */
  concurrency?: number
  /**
   * How long `dispatch`, `notifyInbox`, `notifyChange` and `ping` wait for Redis before they
   * reject with an error naming Redis (they reject at once when the connection is down). Keep it
   * below the service's `dependencyTimeoutMs`.
   * @default 3000
   */
  commandTimeoutMs?: number
  /**
   * Errors no caller waits for: Redis connection errors (each new one once), lock renewals that
   * failed, malformed notifications, a `run` handler that threw. Redis errors come as a
   * `DependencyError` naming Redis, without the password.
   * @default ignore them
   */
  onError?: (error: unknown) => void
}

/** The BullMQ queue's name (the keys are `${prefix}:flows:*`). */
const QUEUE = 'flows'
/** A stalled stretch goes back to the queue this many times before BullMQ would fail it (the reconciler re-dispatches anyway). */
const MAX_STALLED = 1000
/** What a job carries. */
interface StretchJob {
  flowId: string
  stretch: number
}
/** A connection of the coordinator, with what it last said. */
interface Conn {
  client: Redis
  role: string
  lastError: unknown
}
/** A stretch running here. */
interface Running {
  controller: AbortController
  /** Until when the BullMQ lock is surely held (epoch ms): renewed with every lock extension. */
  lockedUntil: number
}
type BullMQ = typeof import('bullmq')
type IORedis = { Redis: new (options: Record<string, unknown>) => Redis }

/**
 * How long ioredis waits for a socket to close after `disconnect()` before destroying it (its
 * timer also outlives sockets that were closed already: close() waits it out).
 */
const DISCONNECT_MS = 200

const JOB_ID_UNSAFE = /[^A-Za-z0-9_-]/

/**
 * The job id of a flow's working stretch: `${flowId}.${stretch}`. (BullMQ refuses `:` in custom
 * job ids, and integers.) A stretch already queued or running is not queued again; once it has
 * run its job is removed, so that the service's reconciler can queue it again.
 */
export function stretchJobId(flowId: string, stretch: number): string {
  return `${flowId}.${stretch}`
}

/**
 * A {@link FlowCoordinator} on BullMQ and Redis: any number of replicas of the identification
 * service share the flows' work.
 *
 * - **Work**: one BullMQ queue, `${prefix}:flows`, for the stretches the service hands to any
 *   replica (flows nobody drives). `dispatch(flowId, stretch)` adds a job with
 *   the id `${flowId}.${stretch}`, so a stretch is never queued twice; it is removed when it
 *   completes or fails (`removeOnComplete`, `removeOnFail`), and BullMQ does not retry it
 *   (`attempts: 1`): when a stretch is lost, the service's reconciler dispatches it again once
 *   the flow's lease has run out.
 * - **Locks**: each replica's worker runs up to `concurrency` stretches and holds a BullMQ lock on
 *   each for `lockDurationMs`, renewed every half of it. The signal given to `handlers.run` is
 *   aborted when BullMQ reports `lockRenewalFailed` for the job, when no renewal has succeeded
 *   for 0.8 × `lockDurationMs` (a frozen event loop, Redis gone: the lock may be lost), and on
 *   `close()`. A stretch aborted so goes back to the queue at once when its lock is still held;
 *   otherwise the stalled-job check puts it back. A killed replica's stretches resume elsewhere
 *   within `lockDurationMs` plus `stalledIntervalMs` (BullMQ's `maxStalledCount` is 1000: a
 *   stalled stretch is retried, not failed). The lock is the second line of defence; the
 *   service's lease in the store is the first.
 * - **Notifications**: Redis pub/sub on channels `${prefix}:notify:inbox` (the flow id) and
 *   `${prefix}:notify:change` (the {@link FlowChange} as JSON), received by every replica,
 *   this one included, on a subscriber connection of its own. The subscriber subscribes again
 *   after a reconnect; messages published while it is disconnected are lost (pub/sub keeps
 *   nothing). That is acceptable: the service re-reads the store (lease renewals report pending
 *   inbox events, SSE clients replay from `Last-Event-ID`).
 * - **Failures**: `dispatch`, `notify*` and `ping` reject with a `DependencyError` naming Redis
 *   at once when the connection is down, or after `commandTimeoutMs`; never with the password.
 *   `start()` rejects only when `bullmq` (or `ioredis`) cannot be loaded; when Redis is down it
 *   resolves (reporting to `onError`) and the worker takes work once Redis answers.
 *
 * Redis must keep BullMQ's keys: set `maxmemory-policy noeviction` (an evicted lock or job is
 * lost work until the reconciler notices). Requires the optional packages `bullmq` (tested with
 * 6.7 on Node 20) and `ioredis` 5: `npm install bullmq ioredis`. The factory is synchronous and
 * opens no connection; `bullmq` is loaded by the first call.
 *
 * @example
 * import { createIdentificationService } from '10npay-identification/server'
 * import { createPostgresFlowStore } from '10npay-identification/postgres'
 * import { createBullMQCoordinator } from '10npay-identification/bullmq'
 *
 * const service = createIdentificationService({
 *   api,
 *   store: createPostgresFlowStore({ connectionString: process.env.DATABASE_URL }),
 *   coordinator: createBullMQCoordinator({
 *     connection: process.env.REDIS_URL ?? { host: '127.0.0.1', port: 6379 },
 *     prefix: 'kyc',
 *     onError: (err) => console.error(err),
 *   }),
 * })
 */
export function createBullMQCoordinator(options: BullMQCoordinatorOptions): FlowCoordinator {
  if (!options || typeof options !== 'object') throw new TypeError('createBullMQCoordinator: options { connection } are required')
  const conn = resolveConnection(options.connection)
  const prefix = options.prefix ?? '10npay'
  if (typeof prefix !== 'string' || prefix === '' || prefix.length > 100 || /[\s\0]/.test(prefix)) {
    throw new TypeError('createBullMQCoordinator: prefix must be a non-empty string of at most 100 characters without spaces')
  }
  const lockMs = positiveInt(options.lockDurationMs, 10_000, 'lockDurationMs')
  const stalledMs = positiveInt(options.stalledIntervalMs, Math.max(1, Math.floor(lockMs / 2)), 'stalledIntervalMs')
  const concurrency = positiveInt(options.concurrency, 1000, 'concurrency')
  const commandMs = positiveInt(options.commandTimeoutMs, 3000, 'commandTimeoutMs')
  if (options.onError !== undefined && typeof options.onError !== 'function') throw new TypeError('createBullMQCoordinator: onError must be a function')
  const onError = options.onError
  const inboxChannel = `${prefix}:notify:inbox`
  const changeChannel = `${prefix}:notify:change`

  let handlers: CoordinatorHandlers | undefined
  let closed = false
  /**
   * Set once close() has waited for the running stretches: from then on no command is sent.
   * Until then a stretch that is handing over may still store its last change and announce it.
   */
  let shut = false
  let closing: Promise<void> | undefined
  let starting: Promise<void> | undefined
  let base: Promise<{ mods: { bullmq: BullMQ; ioredis: IORedis }; commands: Conn; queue: Queue }> | undefined
  let worker: Worker | undefined
  /** Every connection opened, BullMQ's duplicates included: close() waits for each to end. */
  const conns: Conn[] = []
  const running = new Map<string, Running>()
  /** The processor calls in flight (close() waits for them). */
  const processing = new Set<Promise<unknown>>()
  let watchdog: ReturnType<typeof setInterval> | undefined
  let watchLocks = false
  /** Redis errors reported since a connection was last ready: each is reported once. */
  const reported = new Set<string>()

  const redisError = (what: string, err?: unknown) => {
    const cause = err === undefined ? undefined : plainCause(err, conn.secrets)
    return new DependencyError('Redis', cause ? `${what} (${cause.message})` : what, cause && { cause })
  }
  const report = (err: unknown) => {
    if (!onError) return
    try {
      onError(err)
    } catch {
      // the app's handler must not break the coordinator
    }
  }
  /** A Redis error nobody waits for: each reported once until a connection is ready again. */
  const reportRedis = (what: string, err: unknown) => {
    const e = redisError(what, err)
    if (reported.has(e.message)) return
    if (reported.size < 100) reported.add(e.message)
    report(e)
  }

  /** Loads bullmq and ioredis; a missing package is named with its install command. */
  async function load(): Promise<{ bullmq: BullMQ; ioredis: IORedis }> {
    const missing = (name: string, err: unknown) => {
      const cause = plainCause(err, conn.secrets)
      return new Error(`createBullMQCoordinator needs the optional package '${name}', which could not be loaded (${cause.message}). Install it: npm install ${name}`, { cause })
    }
    const bullmq = await import('bullmq').catch((err: unknown) => {
      throw missing('bullmq', err)
    })
    const { Redis } = await import('ioredis').catch((err: unknown) => {
      throw missing('ioredis', err)
    })
    return { bullmq, ioredis: { Redis } }
  }

  /** Opens a connection of the coordinator; errors are kept (for fast failures) and reported. */
  function open(ioredis: IORedis, role: string, own: Record<string, unknown>): Conn {
    const client = new ioredis.Redis({ ...conn.options, ...own, connectionName: `${prefix}:${role}`, lazyConnect: false, disconnectTimeout: DISCONNECT_MS })
    return track(client, role)
  }
  function track(client: Redis, role: string): Conn {
    const c: Conn = { client, role, lastError: undefined }
    client.on('error', (err: unknown) => {
      c.lastError = err
      if (!closed) reportRedis(`the ${role} connection to Redis at ${conn.where} failed`, err)
    })
    client.on('ready', () => {
      c.lastError = undefined
      reported.clear()
    })
    conns.push(c)
    return c
  }

  /** The commands connection and the queue, created by the first call. */
  function ready() {
    if (shut) return Promise.reject(closedError('call'))
    if (base) return base
    if (closed) return Promise.reject(closedError('call'))
    base = (async () => {
      const mods = await load()
      if (closed) throw closedError('call')
      const commands = open(mods.ioredis, 'commands', {
        // Fail fast instead of queueing while Redis is away, and bound every command.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: commandMs,
      })
      const queue = new mods.bullmq.Queue(QUEUE, { connection: commands.client, prefix })
      queue.on('error', (err: unknown) => {
        if (!closed) reportRedis('the queue failed', err)
      })
      return { mods, commands, queue }
    })()
    base.catch(() => {
      base = undefined // a package installed later, a call after a failed load: try again
    })
    return base
  }

  /**
   * Resolves when `c` is connected; rejects at once with its last error when it is not, and
   * otherwise on its next error. `signal` gives up waiting (and removes the listeners).
   */
  function connected(c: Conn, what: string, signal: AbortSignal): Promise<void> {
    const status: string = c.client.status
    if (status === 'ready') return Promise.resolve()
    if (c.lastError !== undefined) return Promise.reject(redisError(`${what}: Redis at ${conn.where} is unavailable`, c.lastError))
    if (status === 'end') return Promise.reject(redisError(`${what}: the connection to Redis is closed`))
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        c.client.off('ready', onReady)
        c.client.off('error', onFail)
        c.client.off('end', onEnd)
        signal.removeEventListener('abort', onAbort)
      }
      const onReady = () => (done(), resolve())
      const onFail = (err: unknown) => (done(), reject(redisError(`${what}: Redis at ${conn.where} is unavailable`, err)))
      const onEnd = () => (done(), reject(redisError(`${what}: the connection to Redis is closed`)))
      const onAbort = () => (done(), reject(signal.reason))
      c.client.on('ready', onReady)
      c.client.on('error', onFail)
      c.client.on('end', onEnd)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** A call through the commands connection, bounded by `commandTimeoutMs`. */
  function call<T>(what: string, fn: (b: Awaited<ReturnType<typeof ready>>) => Promise<T>): Promise<T> {
    if (shut) return Promise.reject(closedError(what))
    const gaveUp = new AbortController()
    const p = ready().then(async (b) => {
      await connected(b.commands, what, gaveUp.signal)
      try {
        return await fn(b)
      } catch (err) {
        throw err instanceof DependencyError ? err : redisError(`${what} failed`, err)
      }
    })
    return within(p, commandMs, () => {
      const err = redisError(`${what}: Redis at ${conn.where} did not answer within ${commandMs} ms`)
      gaveUp.abort(err)
      return err
    })
  }

  const closedError = (what: string) => new Error(`BullMQ coordinator: ${what} after close()`)

  // ——— running stretches ———

  function abort(r: Running, why: string) {
    if (!r.controller.signal.aborted) r.controller.abort(new Error(`BullMQ coordinator: ${why}`))
  }

  /** Aborts stretches whose lock renewal has not succeeded for a while (a frozen loop, Redis gone). */
  function watch() {
    if (watchdog || !watchLocks) return
    watchdog = setInterval(
      () => {
        const now = Date.now()
        for (const [id, r] of running) if (now > r.lockedUntil) abort(r, `the lock on job ${id} was not renewed in time`)
        if (running.size === 0) {
          clearInterval(watchdog)
          watchdog = undefined
        }
      },
      Math.max(25, Math.floor(lockMs / 20)),
    )
    watchdog.unref()
  }

  async function processJob(job: Job, token: string | undefined, bullSignal: AbortSignal | undefined, WaitingError: BullMQ['WaitingError'] | undefined): Promise<void> {
    const h = handlers
    const data = job.data as Partial<StretchJob> | undefined
    const id = job.id
    if (!h || !id || typeof data?.flowId !== 'string' || !Number.isSafeInteger(data.stretch)) {
      report(new Error(`BullMQ coordinator: job ${String(id)} is not a flow's stretch; dropped`))
      return
    }
    const r: Running = { controller: new AbortController(), lockedUntil: Date.now() + 0.8 * lockMs }
    running.set(id, r)
    watch()
    const relay = () => abort(r, `job ${id} was cancelled`)
    bullSignal?.addEventListener('abort', relay, { once: true })
    if (closed) abort(r, 'closed')
    try {
      await h.run({ flowId: data.flowId, stretch: data.stretch! }, r.controller.signal)
    } catch (err) {
      report(err)
    } finally {
      if (running.get(id) === r) running.delete(id)
      bullSignal?.removeEventListener('abort', relay)
    }
    if (!r.controller.signal.aborted) return // the stretch is done: the job completes and is removed
    // Given up (closing, lock lost or in doubt): back to the queue at once while the lock is ours;
    // otherwise the stalled-job check puts it back. Either way BullMQ must not complete it.
    // (Bounded: with Redis away the worker's connection queues the command.)
    if (token && typeof job.moveToWait === 'function') await settles(job.moveToWait(token), commandMs)
    if (WaitingError) throw new WaitingError()
  }

  // ——— the coordinator ———

  async function start(h: CoordinatorHandlers): Promise<void> {
    if (closed) throw closedError('start')
    if (starting) throw new Error('BullMQ coordinator: start() was called already')
    if (!h || typeof h.run !== 'function' || typeof h.inbox !== 'function' || typeof h.change !== 'function') {
      throw new TypeError('BullMQ coordinator: start() needs handlers { run, inbox, change }')
    }
    starting = (async () => {
      const { mods } = await ready()
      if (closed) throw closedError('start')
      handlers = h
      const { Worker, WaitingError } = mods.bullmq

      // The subscriber: queues SUBSCRIBE until connected, subscribes again after a reconnect.
      const sub = open(mods.ioredis, 'subscriber', { maxRetriesPerRequest: null, enableOfflineQueue: true, autoResubscribe: true })
      sub.client.on('message', (channel: string, message: string) => deliver(channel, message))
      const subscribed = sub.client.subscribe(inboxChannel, changeChannel)
      subscribed.catch(() => {}) // a connection that never comes: reported by its error events

      // The worker: BullMQ needs maxRetriesPerRequest null; it duplicates this connection for its
      // blocking fetch, and the duplicates are tracked so close() waits for them too.
      const wc = open(mods.ioredis, 'worker', { maxRetriesPerRequest: null, enableOfflineQueue: true })
      const duplicate = wc.client.duplicate.bind(wc.client)
      wc.client.duplicate = ((override?: Record<string, unknown>) => {
        const d = duplicate(override)
        track(d, 'blocking worker')
        return d
      }) as Redis['duplicate']
      const w = new Worker(
        QUEUE,
        // Three parameters: BullMQ passes its own cancellation signal too.
        (job: Job, token?: string, signal?: AbortSignal) => {
          const p = processJob(job, token, signal, WaitingError)
          processing.add(p)
          void p.catch(() => {}).finally(() => processing.delete(p))
          return p
        },
        {
          connection: wc.client,
          prefix,
          concurrency,
          lockDuration: lockMs,
          stalledInterval: stalledMs,
          maxStalledCount: MAX_STALLED,
          autorun: true,
        },
      )
      worker = w
      w.on('error', (err: unknown) => {
        if (!closed) reportRedis('the worker failed', err)
      })
      w.on('lockRenewalFailed', (ids: string[]) => {
        for (const id of ids) {
          const r = running.get(id)
          if (r) abort(r, `the lock on job ${id} was lost`)
        }
      })
      // Every lock extension BullMQ makes: when it started, so the lock is known to be held until then + duration.
      const extend = (w as unknown as { extendJobLocks?: (ids: string[], tokens: string[], duration: number) => Promise<string[]> }).extendJobLocks
      if (typeof extend === 'function') {
        watchLocks = true
        ;(w as unknown as { extendJobLocks: typeof extend }).extendJobLocks = async (ids, tokens, duration) => {
          const at = Date.now()
          const failed = await extend.call(w, ids, tokens, duration)
          for (const id of ids) {
            const r = running.get(id)
            if (r && !failed.includes(id)) r.lockedUntil = at + 0.8 * duration
          }
          return failed
        }
      }

      // Wait (bounded) until the worker and the subscription are in place; a Redis that is down
      // is reported and the worker keeps connecting: start() must not wedge the service.
      const firstError = (c: Conn) =>
        new Promise<void>((resolve) => {
          if (c.lastError !== undefined) return resolve()
          c.client.once('error', () => resolve())
        })
      let timer: ReturnType<typeof setTimeout> | undefined
      const outcome = await Promise.race([
        Promise.all([w.waitUntilReady(), subscribed]).then(() => 'ready' as const),
        firstError(wc).then(() => 'error' as const),
        firstError(sub).then(() => 'error' as const),
        new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), commandMs))),
      ]).catch((err: unknown) => (reportRedis('start', err), 'error' as const))
      clearTimeout(timer)
      if (outcome !== 'ready' && !closed) {
        report(redisError(`start: Redis at ${conn.where} ${outcome === 'timeout' ? `did not answer within ${commandMs} ms` : 'is unavailable'}; the worker takes work once it answers`))
      }
    })()
    // bullmq missing (or closed meanwhile) before anything was started: start() may be tried again.
    starting.catch(() => {
      if (!handlers) starting = undefined
    })
    return starting
  }

  function deliver(channel: string, message: string) {
    const h = handlers
    if (!h || closed) return
    try {
      if (channel === inboxChannel) {
        h.inbox(message)
      } else if (channel === changeChannel) {
        // A change of a flow nobody here listens to is not decoded (its JSON starts with the id).
        const id = peekId(message)
        if (id !== undefined && h.wants && !h.wants(id)) return
        const change = parseChange(message)
        if (change) h.change(change)
        else report(new Error(`BullMQ coordinator: a malformed change on ${changeChannel} was ignored`))
      }
    } catch (err) {
      report(err)
    }
  }

  async function close(): Promise<void> {
    if (closing) return closing
    closed = true
    closing = (async () => {
      await starting?.catch(() => {})
      await base?.catch(() => {})
      // Abort every running stretch; wait for them (a run that ignores its signal is abandoned after lockDurationMs).
      for (const [, r] of running) abort(r, 'closed')
      const settled = await settles(Promise.all([...processing]), lockMs)
      shut = true
      if (watchdog) clearInterval(watchdog)
      watchdog = undefined
      // BullMQ's graceful close waits for Redis; when the worker's connection is down, force it.
      const wc = conns.find((c) => c.role === 'worker')
      if (worker) await settles(worker.close(!settled || wc?.client.status !== 'ready'), commandMs)
      const b = await base?.catch(() => undefined)
      if (b) await settles(b.queue.close(), commandMs)
      const disconnected = await Promise.all(conns.map((c) => end(c.client, commandMs)))
      // ioredis's disconnect timer of a socket that had closed already: nothing may be left running.
      if (disconnected.includes(true)) await new Promise((r) => setTimeout(r, DISCONNECT_MS + 10))
    })()
    return closing
  }

  return {
    distributed: true,
    kind: 'Redis',
    start,
    dispatch(flowId, stretch) {
      if (typeof flowId !== 'string' || flowId === '' || flowId.length > 200 || JOB_ID_UNSAFE.test(flowId)) {
        return Promise.reject(new TypeError('BullMQ coordinator: dispatch needs a flow id of letters, digits, - and _'))
      }
      if (!Number.isSafeInteger(stretch) || stretch < 0) return Promise.reject(new TypeError('BullMQ coordinator: dispatch needs a non-negative integer stretch'))
      const data: StretchJob = { flowId, stretch }
      return call('dispatch', async ({ queue }) => {
        await queue.add('stretch', data, { jobId: stretchJobId(flowId, stretch), attempts: 1, removeOnComplete: true, removeOnFail: true })
      })
    },
    notifyInbox(flowId) {
      if (typeof flowId !== 'string' || flowId === '') return Promise.reject(new TypeError('BullMQ coordinator: notifyInbox needs a flow id'))
      return call('notifyInbox', async ({ commands }) => {
        await commands.client.publish(inboxChannel, flowId)
      })
    },
    notifyChange(change: FlowChange) {
      let message: string
      try {
        message = JSON.stringify(change)
      } catch (err) {
        return Promise.reject(err)
      }
      return call('notifyChange', async ({ commands }) => {
        await commands.client.publish(changeChannel, message)
      })
    },
    ping() {
      return call('ping', async ({ commands }) => {
        await commands.client.ping()
      })
    },
    close,
  }

  /**
   * Ends a connection: QUIT when it is connected, then waits (bounded) until its socket is gone.
   * @returns whether it had to `disconnect()` it (which leaves a timer of DISCONNECT_MS behind)
   */
  async function end(client: Redis, ms: number): Promise<boolean> {
    const status = (): string => client.status
    if (status() === 'end') return false
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()))
    if (status() === 'ready') await settles(client.quit(), ms)
    if (status() === 'end') return false
    // disconnect() also cancels a pending reconnect; a client that has no socket (waiting to
    // reconnect) stays as it is and emits no 'end'.
    client.disconnect()
    if (status() !== 'end' && status() !== 'reconnecting' && status() !== 'wait' && !(await settles(ended, 500))) {
      // A server that never reads (hung) never completes the close: destroy the socket.
      ;(client as unknown as { stream?: { destroy(): void } }).stream?.destroy()
      await settles(ended, 500)
    }
    return true
  }
}

/** `p`, or a rejection with `onTimeout()` after `ms` (the late outcome of `p` is ignored). */
function within<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms)
    p.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (err: unknown) => (clearTimeout(timer), reject(err)),
    )
  })
}

function positiveInt(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v <= 0) throw new TypeError(`createBullMQCoordinator: ${name} must be a positive integer`)
  return v
}

const ID_PREFIX = '{"id":"'
/** The flow id a change message starts with (`JSON.stringify` of a FlowChange puts it first), or `undefined`. */
function peekId(message: string): string | undefined {
  if (!message.startsWith(ID_PREFIX)) return undefined
  const end = message.indexOf('"', ID_PREFIX.length)
  if (end < 0 || end - ID_PREFIX.length > 200) return undefined
  const id = message.slice(ID_PREFIX.length, end)
  return id.includes('\\') ? undefined : id
}

function parseChange(message: string): FlowChange | undefined {
  let v: unknown
  try {
    v = JSON.parse(message)
  } catch {
    return undefined
  }
  const c = v as Partial<FlowChange> | null
  if (!c || typeof c !== 'object' || typeof c.id !== 'string' || typeof c.version !== 'number' || typeof c.appliedSeq !== 'number' || !c.view || typeof c.view !== 'object') {
    return undefined
  }
  return c as FlowChange
}

export type { RedisConnectionOptions }
