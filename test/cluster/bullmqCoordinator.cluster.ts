/**
 * The BullMQ coordinator against a real Redis on loopback (127.0.0.1:6379, started by .ci/run).
 * Every key this file creates starts with FILE_PREFIX (random); each test uses a prefix of its
 * own under it, and afterEach deletes the keys under FILE_PREFIX, and nothing else. Replicas are
 * coordinators in this process, except for the SIGKILL test, whose first replica is a child
 * process (fixtures/bullmqReplica.ts).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { createServer, Socket, type Server } from 'node:net'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { createBullMQCoordinator, stretchJobId, type BullMQCoordinatorOptions } from '../../src/adapters/bullmq/index.js'
import type { CoordinatorHandlers, FlowChange, FlowCoordinator } from '../../src/adapters/server/types.js'

const REDIS_PORT = Number(process.env.REDIS_PORT ?? 6379)
const FILE_PREFIX = `t10np-bullmq-${randomUUID().slice(0, 8)}`
const FIXTURE = fileURLToPath(new URL('./fixtures/bullmqReplica.ts', import.meta.url))

let admin: Redis
let testNo = 0
let prefix = ''
const coordinators: FlowCoordinator[] = []
const children: ChildProcess[] = []
const servers: { server: Server; sockets: Set<Socket> }[] = []

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
/** Polls `cond` every 10 ms; fails after `ms`. */
async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<number> {
  const t0 = Date.now()
  for (;;) {
    if (await cond()) return Date.now() - t0
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(10)
  }
}
/** Measurements, printed after each test (console output inside a test would add vitest's timers to the handle counts). */
const lines: string[] = []
const log = (line: string) => void lines.push(`[bullmq] ${line}`)

/** A coordinator on this test's prefix, closed in afterEach. */
function coordinator(extra: Partial<BullMQCoordinatorOptions> = {}): FlowCoordinator {
  const c = createBullMQCoordinator({ connection: { host: '127.0.0.1', port: REDIS_PORT }, prefix, ...extra })
  coordinators.push(c)
  return c
}

interface Replica {
  name: string
  runs: { key: string; at: number; signal: AbortSignal }[]
  inbox: string[]
  changes: FlowChange[]
  handlers: CoordinatorHandlers
}
/** Handlers that record what they get; `run` defaults to a 20 ms stretch. */
function replica(name: string, run?: (job: { flowId: string; stretch: number }, signal: AbortSignal) => Promise<void>): Replica {
  const r: Replica = {
    name,
    runs: [],
    inbox: [],
    changes: [],
    handlers: {
      run: async (job, signal) => {
        r.runs.push({ key: stretchJobId(job.flowId, job.stretch), at: Date.now(), signal })
        await (run ? run(job, signal) : sleep(20))
      },
      inbox: (flowId) => void r.inbox.push(flowId),
      change: (c) => void r.changes.push(c),
    },
  }
  return r
}
/** Resolves when `signal` is aborted. */
const aborted = (signal: AbortSignal) => new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })))

/** Replica A, with `lockDurationMs`, running one stretch whose first run waits until its signal aborts (later runs end at once). */
async function firstRunWaitsForAbort(lockDurationMs: number) {
  const a = coordinator({ lockDurationMs })
  const f = randomUUID()
  const ra = replica('A', (_job, signal) => (ra.runs.length === 1 ? aborted(signal) : Promise.resolve()))
  await a.start(ra.handlers)
  await a.dispatch(f, 1)
  await waitFor(() => ra.runs.length === 1, 5000, 'the stretch to start')
  return { f, ra, signal: ra.runs[0]!.signal }
}

async function keysUnder(p: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await admin.scan(cursor, 'MATCH', `${p}*`, 'COUNT', 1000)
    cursor = next
    keys.push(...batch)
  } while (cursor !== '0')
  return keys
}
async function deleteKeysUnder(p: string) {
  const keys = await keysUnder(p)
  for (let i = 0; i < keys.length; i += 500) await admin.del(...keys.slice(i, i + 500))
}
const jobKey = (flowId: string, stretch: number) => `${prefix}:flows:${stretchJobId(flowId, stretch)}`
const counts = (runs: { key: string }[]) => runs.reduce((m, r) => m.set(r.key, (m.get(r.key) ?? 0) + 1), new Map<string, number>())

/** The number of each kind of active resource (sockets, timers, ...). */
function resources(): Map<string, number> {
  const m = new Map<string, number>()
  for (const r of process.getActiveResourcesInfo()) m.set(r, (m.get(r) ?? 0) + 1)
  return m
}
/** Resources there are more of now than in `before`. */
function leaked(before: Map<string, number>): string[] {
  const out: string[] = []
  for (const [k, n] of resources()) if (n > (before.get(k) ?? 0)) out.push(`${k} +${n - (before.get(k) ?? 0)}`)
  return out
}
/** A loopback port nothing listens on. */
async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}
/** A TCP server that accepts connections and never answers (a hung Redis). */
async function silentServer(): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  servers.push({ server, sockets })
  return (server.address() as { port: number }).port
}

/**
 * A TCP proxy to Redis that can be cut (every connection dropped, nothing accepted: Redis gone)
 * and restored on the same port (Redis back).
 */
async function redisProxy(): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = new Socket()
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    upstream.connect(REDIS_PORT, '127.0.0.1')
    client.pipe(upstream).pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  const entry = { server, sockets }
  servers.push(entry)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  return {
    port,
    async cut() {
      const closed = new Promise<void>((r) => server.close(() => r()))
      for (const s of sockets) s.destroy()
      await closed
    },
    async restore() {
      await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
    },
  }
}

beforeAll(async () => {
  admin = new Redis({ host: '127.0.0.1', port: REDIS_PORT, maxRetriesPerRequest: 1, connectTimeout: 5000 })
  await admin.ping()
})
afterAll(async () => {
  await deleteKeysUnder(FILE_PREFIX)
  await admin.quit()
})
beforeEach(() => {
  testNo += 1
  prefix = `${FILE_PREFIX}-${testNo}`
})
afterEach(async () => {
  if (lines.length) console.log(lines.splice(0).join('\n'))
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await Promise.all(coordinators.splice(0).map((c) => c.close()))
  for (const { server, sockets } of servers.splice(0)) {
    for (const s of sockets) s.destroy()
    await new Promise<void>((r) => server.close(() => r()))
  }
  await deleteKeysUnder(FILE_PREFIX)
})

describe('createBullMQCoordinator', () => {
  it('is a distributed coordinator named Redis; the factory validates synchronously, opens nothing and never echoes a password', async () => {
    const before = resources()
    const c = coordinator()
    expect(c.distributed).toBe(true)
    expect(c.kind).toBe('Redis')
    expect(stretchJobId('0b6c7f3e-1f7b-4a8e-9c61-0d7a3c1e2f40', 3)).toBe('0b6c7f3e-1f7b-4a8e-9c61-0d7a3c1e2f40.3')
    for (const connection of ['http://u:hunter2@127.0.0.1', 'not a url hunter2', 'redis://u:hunter2@127.0.0.1/x']) {
      let err: unknown
      try {
        createBullMQCoordinator({ connection, prefix })
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(TypeError)
      expect(String(err)).not.toContain('hunter2')
    }
    expect(() => createBullMQCoordinator({ connection: {}, prefix: '' })).toThrow(/prefix/)
    expect(() => createBullMQCoordinator({ connection: {}, lockDurationMs: 0 })).toThrow(/lockDurationMs/)
    expect(() => createBullMQCoordinator({ connection: {}, concurrency: 1.5 })).toThrow(/concurrency/)
    expect(leaked(before)).toEqual([])
    await expect(c.dispatch('bad:id', 1)).rejects.toThrow(TypeError)
    await expect(c.dispatch('f', -1)).rejects.toThrow(TypeError)
  }, 10_000)

  it('runs a dispatched stretch exactly once across two replicas, even when both dispatch it', async () => {
    const a = coordinator()
    const b = coordinator()
    const ra = replica('A')
    const rb = replica('B')
    await Promise.all([a.start(ra.handlers), b.start(rb.handlers)])
    const flows = Array.from({ length: 40 }, () => randomUUID())
    const t0 = Date.now()
    await Promise.all(flows.flatMap((f) => [a.dispatch(f, 1), b.dispatch(f, 1), a.dispatch(f, 1)]))
    await waitFor(() => ra.runs.length + rb.runs.length >= flows.length, 10_000, 'every stretch to run')
    const allRun = Date.now() - t0
    await sleep(500) // room for a duplicate to show up
    const all = counts([...ra.runs, ...rb.runs])
    expect(all.size).toBe(flows.length)
    for (const f of flows) expect(all.get(stretchJobId(f, 1))).toBe(1)
    log(`40 stretches dispatched 3× each from 2 replicas: all ran once in ${allRun} ms (A ran ${ra.runs.length}, B ${rb.runs.length})`)
    // Completed jobs are removed (the reconciler may queue a stretch again).
    await waitFor(async () => (await admin.exists(...flows.map((f) => jobKey(f, 1)))) === 0, 2000, 'completed jobs to be removed')
  }, 20_000)

  it('does not queue a stretch twice while it is queued or running; a new stretch of the flow runs; a finished stretch can be queued again', async () => {
    const a = coordinator()
    const b = coordinator()
    const f = randomUUID()
    let release!: () => void
    const released = new Promise<void>((r) => (release = r))
    const run = (job: { flowId: string; stretch: number }) => (job.stretch === 1 ? released : sleep(10))
    const ra = replica('A', run)
    const rb = replica('B', run)
    // Queued: three dispatches before any worker runs.
    await Promise.all([a.dispatch(f, 1), a.dispatch(f, 1), b.dispatch(f, 1)])
    expect(await admin.llen(`${prefix}:flows:wait`)).toBe(1)
    await Promise.all([a.start(ra.handlers), b.start(rb.handlers)])
    await waitFor(() => ra.runs.length + rb.runs.length === 1, 5000, 'the stretch to start')
    // Running: dispatched again from both replicas.
    await Promise.all([a.dispatch(f, 1), b.dispatch(f, 1)])
    await sleep(300)
    expect(ra.runs.length + rb.runs.length).toBe(1)
    expect(await admin.lrange(`${prefix}:flows:active`, 0, -1)).toEqual([stretchJobId(f, 1)])
    expect(await admin.llen(`${prefix}:flows:wait`)).toBe(0)
    release()
    await waitFor(async () => (await admin.exists(jobKey(f, 1))) === 0, 3000, 'the finished job to be removed')
    // The next stretch of the same flow runs.
    await a.dispatch(f, 2)
    await waitFor(() => counts([...ra.runs, ...rb.runs]).get(stretchJobId(f, 2)) === 1, 5000, 'stretch 2 to run')
    // A stretch that ran and was removed can be queued again (what the reconciler does).
    await b.dispatch(f, 1)
    await waitFor(() => counts([...ra.runs, ...rb.runs]).get(stretchJobId(f, 1)) === 2, 5000, 'stretch 1 to run again')
    await sleep(200)
    expect(Object.fromEntries(counts([...ra.runs, ...rb.runs]))).toEqual({ [stretchJobId(f, 1)]: 2, [stretchJobId(f, 2)]: 1 })
  }, 20_000)

  it('carries inbox and change notifications to every replica, this one included, and again after the subscriber reconnects', async () => {
    const errors: unknown[] = []
    const a = coordinator({ onError: (e) => errors.push(e) })
    const b = coordinator({ onError: (e) => errors.push(e) })
    const ra = replica('A')
    const rb = replica('B')
    await Promise.all([a.start(ra.handlers), b.start(rb.handlers)])
    const f = randomUUID()
    const t0 = Date.now()
    await a.notifyInbox(f)
    const change: FlowChange = {
      id: f,
      version: 7,
      appliedSeq: 2,
      view: { id: f, userId: 1, userType: 0, url: null, version: 7, updatedAt: new Date(0).toISOString(), state: 'pollingA', failure: null, result: null },
    }
    await b.notifyChange(change)
    await waitFor(() => ra.inbox.length === 1 && rb.inbox.length === 1 && ra.changes.length === 1 && rb.changes.length === 1, 3000, 'both replicas to hear both')
    log(`notifications reached both replicas in ${Date.now() - t0} ms`)
    expect(ra.inbox).toEqual([f])
    expect(rb.inbox).toEqual([f])
    expect(ra.changes).toEqual([change])
    expect(rb.changes).toEqual([change])

    // A malformed change is reported and ignored.
    await admin.publish(`${prefix}:notify:change`, '{"not":"a change"')
    await waitFor(() => errors.some((e) => /malformed/.test(String(e))), 3000, 'the malformed change to be reported')
    expect(ra.changes.length + rb.changes.length).toBe(2)

    // A replica that says which flows it listens to (`wants`) gets only their changes; the
    // others are not decoded. B listens to f only.
    const other = randomUUID()
    const listened = new Set([f])
    rb.handlers.wants = (id) => listened.has(id)
    await a.notifyChange({ ...change, id: other, version: 8, view: { ...change.view, id: other } })
    await a.notifyChange({ ...change, version: 9 })
    await waitFor(() => ra.changes.length === 3 && rb.changes.length === 2, 3000, 'A to hear both, B the one of f')
    expect(ra.changes.map((c) => c.version)).toEqual([7, 8, 9])
    expect(rb.changes.map((c) => [c.id, c.version])).toEqual([[f, 7], [f, 9]])
    delete rb.handlers.wants

    // Kill the subscribers' connections (only ours: they are named after this test's prefix).
    const list = await admin.client('LIST')
    const ids = String(list)
      .split('\n')
      .filter((l) => l.includes(` name=${prefix}:subscriber `))
      .map((l) => /(?:^|\s)id=(\d+)/.exec(l)?.[1])
    expect(ids.length).toBe(2)
    const t1 = Date.now()
    for (const id of ids) await admin.client('KILL', 'ID', id!)
    // Messages published while a subscriber is away are lost (pub/sub keeps nothing): publish until both hear one.
    await waitFor(
      async () => {
        await a.notifyInbox(`${f}-again`)
        return ra.inbox.includes(`${f}-again`) && rb.inbox.includes(`${f}-again`)
      },
      5000,
      'both replicas to hear again after their subscriber reconnected',
    )
    log(`subscribers killed: both replicas heard notifications again after ${Date.now() - t1} ms`)
  }, 20_000)

  it('aborts the run signal when the lock renewal fails (lock deleted in Redis); the stalled check queues the stretch again', async () => {
    const lockDurationMs = 2000
    const { f, ra, signal } = await firstRunWaitsForAbort(lockDurationMs)
    expect(await admin.del(`${jobKey(f, 1)}:lock`)).toBe(1)
    const t0 = Date.now()
    await waitFor(() => signal.aborted, lockDurationMs, 'the signal to be aborted')
    const abortMs = Date.now() - t0
    expect(String((signal.reason as Error).message)).toMatch(/lock/)
    log(`lock deleted: signal aborted after ${abortMs} ms (lockDurationMs ${lockDurationMs}, renewal every ${lockDurationMs / 2})`)
    expect(abortMs).toBeLessThanOrEqual(lockDurationMs / 2 + 500)
    // The job is still active without a lock: the stalled check puts it back and it runs again.
    await waitFor(() => ra.runs.length === 2, lockDurationMs * 2 + 1000, 'the stalled stretch to run again')
    log(`the stretch ran again ${ra.runs[1]!.at - t0} ms after the lock was deleted`)
    expect(ra.runs[1]!.key).toBe(stretchJobId(f, 1))
    await waitFor(async () => (await admin.exists(jobKey(f, 1))) === 0, 3000, 'the job to be removed')
  }, 20_000)

  it('aborts the run signal after the event loop was frozen for longer than the lock', async () => {
    const lockDurationMs = 1000
    const { signal } = await firstRunWaitsForAbort(lockDurationMs)
    let abortedAt = 0
    signal.addEventListener('abort', () => (abortedAt = Date.now()))
    const end = Date.now() + 1.5 * lockDurationMs
    while (Date.now() < end) {
      // frozen: no timer, no socket
    }
    const thawed = Date.now()
    await waitFor(() => signal.aborted, lockDurationMs, 'the signal to be aborted')
    log(`event loop frozen ${1.5 * lockDurationMs} ms (lock ${lockDurationMs} ms): signal aborted ${abortedAt - thawed} ms after it thawed`)
    expect(abortedAt - thawed).toBeLessThan(300)
  }, 20_000)

  it("resumes a SIGKILLed replica's stretch on the other replica within lockDurationMs + stalledIntervalMs", async () => {
    const lockDurationMs = 2000
    const stalledIntervalMs = lockDurationMs / 2
    const child = fork(FIXTURE, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, BULLMQ_TEST_PREFIX: prefix, BULLMQ_TEST_LOCK_MS: String(lockDurationMs), BULLMQ_TEST_REDIS_PORT: String(REDIS_PORT) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    children.push(child)
    const messages: { type: string; flowId?: string; stretch?: number }[] = []
    child.on('message', (m) => messages.push(m as (typeof messages)[number]))
    await waitFor(() => messages.some((m) => m.type === 'ready'), 20_000, 'the child replica to start')
    // B dispatches before it takes work, so the child runs the stretch.
    const b = coordinator({ lockDurationMs })
    const f = randomUUID()
    await b.dispatch(f, 1)
    await waitFor(() => messages.some((m) => m.type === 'running' && m.flowId === f), 5000, 'the child to run the stretch')
    const rb = replica('B', () => sleep(10))
    await b.start(rb.handlers)
    await sleep(Math.floor(Math.random() * lockDurationMs * 0.5)) // kill at some point of the renewal cycle
    const exited = new Promise((r) => child.once('exit', r))
    const killedAt = Date.now()
    child.kill('SIGKILL')
    await exited
    await waitFor(() => rb.runs.some((r) => r.key === stretchJobId(f, 1)), lockDurationMs + stalledIntervalMs + 3000, 'B to take the stretch over')
    const recoveryMs = rb.runs.find((r) => r.key === stretchJobId(f, 1))!.at - killedAt
    log(`SIGKILL mid-job: B ran the stretch ${recoveryMs} ms later (bound lockDurationMs ${lockDurationMs} + stalledIntervalMs ${stalledIntervalMs})`)
    expect(recoveryMs).toBeLessThanOrEqual(lockDurationMs + stalledIntervalMs + 500)
    expect(rb.runs.length).toBe(1)
  }, 40_000)

  it("dispatches again after every key of the prefix was deleted (a flushed Redis)", async () => {
    const a = coordinator()
    const ra = replica('A')
    await a.start(ra.handlers)
    const f = randomUUID()
    await a.dispatch(f, 1)
    await waitFor(() => ra.runs.length === 1, 5000, 'the stretch to run')
    await sleep(100)
    const keys = await keysUnder(prefix)
    expect(keys.length).toBeGreaterThan(0)
    await deleteKeysUnder(prefix)
    expect(await keysUnder(prefix)).toEqual([])
    await a.dispatch(f, 2)
    await a.dispatch(f, 1)
    await waitFor(() => ra.runs.length === 3, 5000, 'both stretches to run after the flush')
    expect(ra.runs.map((r) => r.key).sort()).toEqual([stretchJobId(f, 1), stretchJobId(f, 1), stretchJobId(f, 2)].sort())
    await a.ping()
  }, 20_000)

  it('close() aborts running stretches and hands them back to the queue, then leaves no open handle', async () => {
    const before = resources()
    const a = coordinator()
    const f = randomUUID()
    const ra = replica('A', (_job, signal) => aborted(signal))
    await a.start(ra.handlers)
    await a.dispatch(f, 1)
    await a.notifyInbox(f)
    await waitFor(() => ra.runs.length === 1 && ra.inbox.length === 1, 5000, 'the stretch to start')
    const t0 = Date.now()
    await a.close()
    log(`close() with a running stretch took ${Date.now() - t0} ms`)
    expect(ra.runs[0]!.signal.aborted).toBe(true)
    expect(await admin.lrange(`${prefix}:flows:wait`, 0, -1)).toEqual([stretchJobId(f, 1)])
    await expect(a.dispatch(f, 2)).rejects.toThrow(/after close/)
    expect(leaked(before)).toEqual([])
    // Another replica takes the handed-back stretch at once.
    const b = coordinator()
    const rb = replica('B')
    await b.start(rb.handlers)
    await waitFor(() => rb.runs.length === 1, 3000, 'B to run the handed-back stretch')
    await b.close()
    await a.close() // twice is fine
    expect(leaked(before)).toEqual([])
  }, 20_000)

  it('rejects promptly with an error naming Redis, without the password, when Redis refuses connections', async () => {
    const port = await freePort()
    const before = resources()
    const errors: unknown[] = []
    const c = coordinator({ connection: `redis://app:s3cret%2Fpw@127.0.0.1:${port}`, onError: (e) => errors.push(e) })
    const change = { id: 'f', version: 1, appliedSeq: 0, view: {} } as unknown as FlowChange
    for (const [what, p] of [
      ['ping', () => c.ping()],
      ['dispatch', () => c.dispatch('f', 1)],
      ['notifyInbox', () => c.notifyInbox('f')],
      ['notifyChange', () => c.notifyChange(change)],
    ] as const) {
      const t0 = Date.now()
      const err = await p().then(
        () => undefined,
        (e: unknown) => e,
      )
      const ms = Date.now() - t0
      log(`Redis refusing: ${what}() rejected in ${ms} ms: ${(err as Error).message}`)
      expect(err).toBeInstanceOf(Error)
      expect((err as Error).message).toMatch(/^Redis: /)
      expect(ms).toBeLessThan(1500) // the first call also loads bullmq
      for (const text of [String(err), inspect(err, { depth: 5 }), JSON.stringify((err as Error).cause)]) {
        expect(text).not.toContain('s3cret')
      }
    }
    const t1 = Date.now()
    await c.start(replica('A').handlers)
    log(`Redis refusing: start() resolved in ${Date.now() - t1} ms, reporting to onError`)
    expect(Date.now() - t1).toBeLessThan(1500)
    const t2 = Date.now()
    await c.close()
    expect(Date.now() - t2).toBeLessThan(1500)
    expect(errors.length).toBeGreaterThan(0)
    for (const e of errors) expect(inspect(e, { depth: 5 })).not.toContain('s3cret')
    expect(leaked(before)).toEqual([])
  }, 20_000)

  it('rejects within commandTimeoutMs when Redis accepts connections but never answers', async () => {
    const port = await silentServer()
    const before = resources()
    const c = coordinator({ connection: { host: '127.0.0.1', port, password: 'hunter2' }, commandTimeoutMs: 500 })
    for (const [what, p] of [
      ['ping', () => c.ping()],
      ['dispatch', () => c.dispatch('f', 1)],
    ] as const) {
      const t0 = Date.now()
      const err = await p().then(
        () => undefined,
        (e: unknown) => e,
      )
      const ms = Date.now() - t0
      log(`Redis silent: ${what}() rejected in ${ms} ms: ${(err as Error).message}`)
      expect((err as Error).message).toMatch(/^Redis: (ping|dispatch): .*(did not answer within 500 ms|unavailable \(Command timed out\))/)
      expect(inspect(err, { depth: 5 })).not.toContain('hunter2')
      expect(ms).toBeLessThan(1500)
    }
    const t1 = Date.now()
    await c.start(replica('A').handlers)
    expect(Date.now() - t1).toBeLessThan(1500)
    const t2 = Date.now()
    await c.close()
    log(`Redis silent: close() took ${Date.now() - t2} ms`)
    expect(Date.now() - t2).toBeLessThan(3000)
    // The hung server's own (accepted) sockets are this test's, closed in afterEach: every
    // other new socket would be the coordinator's.
    const accepted = servers.reduce((n, s) => n + s.sockets.size, 0)
    expect(accepted).toBeGreaterThan(0)
    expect(leaked(before)).toEqual([`TCPSocketWrap +${accepted}`])
  }, 20_000)

  it('fails fast while Redis is gone, aborts running stretches whose lock cannot be renewed, and works again once Redis is back', async () => {
    const lockDurationMs = 2000
    const proxy = await redisProxy()
    const errors: unknown[] = []
    const a = coordinator({ connection: { host: '127.0.0.1', port: proxy.port }, lockDurationMs, onError: (e) => errors.push(e) })
    const b = coordinator({ lockDurationMs }) // direct: sees the queue while A is cut off
    const f = randomUUID()
    const ra = replica('A', (job, signal) => (job.stretch === 1 && ra.runs.length === 1 ? aborted(signal) : sleep(10)))
    const rb = replica('B')
    await a.start(ra.handlers)
    await a.dispatch(f, 1)
    await waitFor(() => ra.runs.length === 1, 5000, 'A to run the stretch')
    const signal = ra.runs[0]!.signal

    await proxy.cut()
    const cutAt = Date.now()
    for (const [what, call] of [
      ['ping', () => a.ping()],
      ['dispatch', () => a.dispatch(f, 2)],
      ['notifyInbox', () => a.notifyInbox(f)],
    ] as const) {
      const t0 = Date.now()
      await expect(call()).rejects.toThrow(/^Redis: /)
      log(`Redis cut: ${what}() rejected in ${Date.now() - t0} ms`)
      expect(Date.now() - t0).toBeLessThan(1000)
    }
    // The lock cannot be renewed while Redis is gone: the run is aborted before the lock could run out.
    await waitFor(() => signal.aborted, lockDurationMs + 500, 'the run to be aborted')
    const abortMs = Date.now() - cutAt
    log(`Redis cut: the running stretch was aborted ${abortMs} ms after the cut (lock ${lockDurationMs} ms)`)
    expect(abortMs).toBeLessThan(lockDurationMs)
    expect(errors.some((e) => /^Redis: /.test((e as Error).message))).toBe(true)

    // Meanwhile another replica, with Redis, takes the stretch over once its lock has run out.
    await b.start(rb.handlers)
    await waitFor(() => rb.runs.some((r) => r.key === stretchJobId(f, 1)), lockDurationMs * 2 + 1000, 'B to take the stretch over')

    await proxy.restore()
    const restoredAt = Date.now()
    await waitFor(() => a.ping().then(() => true, () => false), 10_000, 'A to reach Redis again')
    log(`Redis back: A answered ${Date.now() - restoredAt} ms after the restore`)
    // A works again: dispatches, takes work, hears notifications.
    await b.close()
    await a.dispatch(f, 3)
    await waitFor(() => ra.runs.some((r) => r.key === stretchJobId(f, 3)), 10_000, 'A to run a new stretch after the restore')
    await waitFor(
      async () => {
        await a.notifyInbox(`${f}-back`)
        return ra.inbox.includes(`${f}-back`)
      },
      10_000,
      'A to hear notifications again',
    )
    log(`Redis back: A ran a stretch and heard a notification ${Date.now() - restoredAt} ms after the restore`)
    expect(counts(ra.runs).get(stretchJobId(f, 1))).toBe(1) // A did not run stretch 1 again: B did
  }, 40_000)

  it('never shows the password of a user Redis refuses (WRONGPASS)', async () => {
    const secret = `hunter2-${randomUUID()}`
    const errors: unknown[] = []
    const c = coordinator({ connection: `redis://no-such-user-${randomUUID().slice(0, 8)}:${secret}@127.0.0.1:${REDIS_PORT}`, onError: (e) => errors.push(e) })
    const err = await c.ping().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect((err as Error).message).toMatch(/^Redis: ping: .*WRONGPASS/)
    await c.start(replica('A').handlers)
    await c.close()
    expect(errors.length).toBeGreaterThan(0)
    for (const e of [err, ...errors]) {
      expect(inspect(e, { depth: 8 })).not.toContain(secret)
      expect(JSON.stringify((e as Error).cause ?? null)).not.toContain(secret)
    }
  }, 20_000)

  it('names the missing package and its install command when bullmq cannot be loaded', async () => {
    vi.resetModules()
    vi.doMock('bullmq', () => {
      throw new Error("Cannot find package 'bullmq'")
    })
    try {
      const mod = await import('../../src/adapters/bullmq/index.js')
      const c = mod.createBullMQCoordinator({ connection: { host: '127.0.0.1', port: REDIS_PORT }, prefix })
      coordinators.push(c)
      await expect(c.start(replica('A').handlers)).rejects.toThrow(/bullmq.*npm install bullmq/)
      await expect(c.dispatch('f', 1)).rejects.toThrow(/npm install bullmq/)
      await expect(c.ping()).rejects.toThrow(/npm install bullmq/)
    } finally {
      vi.doUnmock('bullmq')
      vi.resetModules()
    }
  }, 20_000)
})
