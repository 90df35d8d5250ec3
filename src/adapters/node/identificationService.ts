import { randomUUID } from 'node:crypto'
import { createActor, type Actor, type Snapshot } from 'xstate'
import { systemClock, type Clock } from '../../machine/clock.js'
import { identificationMachine, type IdentificationMachine } from '../../machine/identificationMachine.js'
import { resolveInput } from '../../machine/input.js'
import { topState, unwrapSnapshot, wrapSnapshot, type PersistedFlow } from '../../machine/persistence.js'
import type {
  Failure,
  IdentificationApi,
  IdentificationInput,
  IdentificationResult,
  InitiateOptions,
  PollingOptions,
  UserType,
} from '../../machine/types.js'
import { assertIdentificationApi, createIdentificationWorkers } from '../../machine/workers.js'
import type { IdentificationSnapshot } from './runIdentification.js'
import type { SnapshotStore } from './snapshotStore.js'

/** A flow as the backend shows it: plain JSON, safe to send to the browser. */
export interface FlowView {
  /** The flow id (a UUID). */
  id: string
  userId: number
  userType: UserType
  /** The top-level chart state: `initiating`, `identifying`, `pollingA`, … `finalized`, `failed`. */
  state: string
  /** The URL the user must open now, or `null`. */
  url: string | null
  /** Why the flow failed, or `null`. */
  failure: Failure | null
  /** The ids after `finalized`, or `null`. */
  result: IdentificationResult | null
  /** When the flow last changed (ISO 8601). */
  updatedAt: string
}

/** Options of {@link createIdentificationService}. */
export interface IdentificationServiceOptions {
  /** The provider's API (`createHttpApi(...)` with `createPasswordGrantTokenSource(...)`). */
  api: IdentificationApi
  /** Where flows live; needs `list` (memory, file and SQLite stores have it). */
  store: SnapshotStore
  /** The time source. @default the system clock */
  clock?: Clock
  /** Random numbers in `[0, 1)` for jitter. @default Math.random */
  random?: () => number
  /** Polling and deadlines for every flow. */
  polling?: PollingOptions
  /** Provider URLs must point at one of these hosts. */
  allowedHosts?: string[]
  /** Extra status codes to treat as pending. */
  pendingStatuses?: string[]
  /** Called once when a flow reaches `finalized` (after it is stored). */
  onFinalized?: (view: FlowView) => void
  /** Called when a flow reaches `failed` (after it is stored). */
  onFailed?: (view: FlowView) => void
  /** Store failures and flows that could not be resumed. */
  onError?: (error: unknown, flowId?: string) => void
  /**
   * Prefix of every key the service writes.
   * @default '10npay:'
   */
  keyPrefix?: string
}

/** What `start` takes. */
export interface StartOptions {
  userId: number
  userType: UserType
  /** Audit fields for initiate (the user's browser, when the frontend sends them). */
  initiate?: InitiateOptions
  /** Start anew even when the user has an unfinished flow (initiate with `isRestartIdentification`). */
  restart?: boolean
}

/** The backend driver of many flows. */
export interface IdentificationService {
  /** Resolves once the flows that were unfinished in the store are running again. */
  readonly ready: Promise<void>
  /**
   * Starts a flow (or returns the user's unfinished one) and resolves once initiate answered:
   * the view's `url` is the ID-capture URL (or `failure` says why there is none).
   */
  start(options: StartOptions): Promise<FlowView>
  /** Reports the provider's Success/Fail redirect; ignored (the view is returned) when the flow does not wait for one. */
  redirect(flowId: string, options: { outcome: 'success' | 'fail'; bTrustAppCallBackId?: string | null }): Promise<FlowView>
  /** The flow's view, or `undefined`. */
  get(flowId: string): Promise<FlowView | undefined>
  /**
   * The user's latest flow, or `undefined`: for a Success/Fail URL that is the same for every
   * flow (as configured in the provider's portal), find the flow from the user's session.
   */
  findByUser(userType: UserType, userId: number): Promise<FlowView | undefined>
  continue(flowId: string): Promise<FlowView>
  retry(flowId: string): Promise<FlowView>
  restart(flowId: string): Promise<FlowView>
  cancel(flowId: string): Promise<FlowView>
  /** Calls `fn` with the view after every change of the flow; returns the unsubscribe function. */
  subscribe(flowId: string, fn: (view: FlowView) => void): () => void
  /** How many flows have an actor in memory (the ones being polled or finalized). */
  readonly running: number
  /** Stops every actor and waits for the last writes; stored flows resume in the next process. */
  close(): Promise<void>
}

/** What the store holds per flow. */
interface FlowRecord {
  view: FlowView
  flow: PersistedFlow
}

/** States in which a flow has work for the process; the others wait for a person. */
const WORKING = new Set(['idle', 'initiating', 'pollingA', 'phaseA', 'pollingB', 'phaseB'])
const FINISHED = new Set(['finalized', 'failed'])
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Whether a string has the form of a flow id. */
export const isFlowId = (id: unknown): id is string => typeof id === 'string' && ID.test(id)

/** Thrown for an unknown flow id. */
export class FlowNotFoundError extends Error {
  override readonly name = 'FlowNotFoundError'
}

interface Running {
  actor: Actor<IdentificationMachine>
  view: FlowView
  writes: Promise<void>
  lastState: string
  /** What subscribers last saw (the view without its time), so that they hear only of changes. */
  seen: string
}

const signature = (v: FlowView) => JSON.stringify([v.state, v.url, v.failure, v.result])

/**
 * Drives many identification flows from a server. Flows that wait for a person
 * (`identifying`, `signing`, `failed`, `finalized`) live in the store only; an actor exists
 * only while a flow is being initiated, polled or finalized. Every transition is stored; on
 * start the service resumes every flow the store lists as working, with its deadlines counting
 * from the stored times. One flow per `(userType, userId)` at a time.
 *
 * @example
 * const service = createIdentificationService({ api, store: createSqliteSnapshotStore('flows.db') })
 * const { id, url } = await service.start({ userId: 42, userType: 0 })
 */
export function createIdentificationService(options: IdentificationServiceOptions): IdentificationService {
  if (!options || typeof options !== 'object') throw new TypeError('createIdentificationService: options are required')
  const { api, store, onFinalized, onFailed, onError } = options
  assertIdentificationApi(api, 'createIdentificationService')
  if (!store || ['get', 'set', 'delete', 'list'].some((m) => typeof (store as never)[m] !== 'function')) {
    throw new TypeError('createIdentificationService: store must have get, set, delete and list (memory, file and SQLite stores do)')
  }
  const clock = options.clock ?? systemClock
  const prefix = options.keyPrefix ?? '10npay:'
  const shared: Omit<IdentificationInput, 'userId' | 'userType'> = {
    ...(options.polling && { polling: options.polling }),
    ...(options.allowedHosts && { allowedHosts: options.allowedHosts }),
    ...(options.pendingStatuses && { pendingStatuses: options.pendingStatuses }),
  }
  resolveInput({ userId: 1, userType: 0, ...shared }) // validates the shared options now
  const machine = identificationMachine.provide({
    actors: createIdentificationWorkers({ api, clock, ...(options.random && { random: options.random }) }),
  })
  const flowKey = (id: string) => `${prefix}flow:${id}`
  const userKey = (userType: number, userId: number) => `${prefix}user:${userType}:${userId}`
  const activeKey = (id: string) => `${prefix}active:${id}`

  const running = new Map<string, Running>()
  const listeners = new Map<string, Set<(v: FlowView) => void>>()
  const queues = new Map<string, Promise<unknown>>()
  const waiters = new Map<string, Set<() => void>>()
  /** The last store write of each flow whose actor is gone, so that a read never sees an older record. */
  const parkedWrites = new Map<string, Promise<void>>()
  let closed = false

  const report = (err: unknown, id?: string) => {
    try {
      onError?.(err, id)
    } catch {
      /* ignore */
    }
  }

  /** Runs `fn` after every earlier operation on the same key (a flow or a user). */
  function serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = queues.get(key) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    const tail = next.catch(() => {})
    queues.set(key, tail)
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key)
    })
    return next
  }

  function viewOf(id: string, s: IdentificationSnapshot): FlowView {
    const top = topState(s.value)
    const c = s.context
    const url = top === 'identifying' ? c.identificationUrl : top === 'signing' || top === 'phaseA' ? c.signingUrl : null
    return {
      id,
      userId: c.userId,
      userType: c.userType,
      state: top,
      url,
      failure: c.failure,
      result: c.result,
      updatedAt: new Date(clock.now()).toISOString(),
    }
  }

  function notify(view: FlowView) {
    for (const fn of listeners.get(view.id) ?? []) {
      try {
        fn(view)
      } catch {
        /* a throwing subscriber must not break the flow */
      }
    }
    for (const w of waiters.get(view.id) ?? []) w()
  }

  /** Creates and starts the actor of a flow, from its stored snapshot when there is one. */
  function run(id: string, input: IdentificationInput, snapshot?: Snapshot<unknown>): Running {
    const actor = createActor(machine, { input, clock, ...(snapshot && { snapshot: snapshot as never }) })
    const view = viewOf(id, actor.getSnapshot())
    const r: Running = { actor, view, writes: Promise.resolve(), lastState: view.state, seen: snapshot ? signature(view) : '' }
    running.set(id, r)
    actor.subscribe({
      next: (s) => onTransition(id, r, s),
      error: (err) => report(err, id),
    })
    actor.start()
    return r
  }

  function onTransition(id: string, r: Running, s: IdentificationSnapshot) {
    const view = viewOf(id, s)
    const entered = view.state !== r.lastState
    r.lastState = view.state
    r.view = view
    const record: FlowRecord = {
      view,
      flow: wrapSnapshot(r.actor.getPersistedSnapshot() as Snapshot<unknown>, view.userId, view.userType, clock.now()),
    }
    const working = WORKING.has(view.state)
    r.writes = r.writes
      .then(async () => {
        await store.set(flowKey(id), record)
        if (entered) {
          if (working) await store.set(activeKey(id), 1)
          else await store.delete(activeKey(id))
        }
      })
      .catch((err: unknown) => report(err, id))
    if (!working && entered) park(id, r)
    const sig = signature(view)
    const changed = sig !== r.seen
    r.seen = sig
    const written = r.writes
    void written.then(() => {
      if (changed) notify(view)
      if (entered && view.state === 'finalized') safe(() => onFinalized?.(view))
      if (entered && view.state === 'failed') safe(() => onFailed?.(view))
    })
    if (entered && view.state === 'phaseA') queueMicrotask(() => r.actor.send({ type: 'CONTINUE' }))
  }

  /** The flow waits for a person, or ended: the actor goes, the store keeps the flow. */
  function park(id: string, r: Running) {
    if (running.get(id) !== r) return
    running.delete(id)
    const w = r.writes
    parkedWrites.set(id, w)
    void w.then(() => parkedWrites.get(id) === w && parkedWrites.delete(id))
    queueMicrotask(() => r.actor.stop())
  }

  const safe = (fn: () => void) => {
    try {
      fn()
    } catch (err) {
      report(err)
    }
  }

  async function load(id: string): Promise<FlowRecord | undefined> {
    await parkedWrites.get(id)
    const v = (await store.get(flowKey(id))) as FlowRecord | undefined
    return v && typeof v === 'object' && v.view && v.flow ? v : undefined
  }

  /** The running actor of a flow, woken from the store when it was parked. */
  async function wake(id: string): Promise<Running> {
    const r = running.get(id)
    if (r) return r
    const rec = await load(id)
    if (!rec) throw new FlowNotFoundError(`No identification flow ${id}`)
    const snapshot = unwrapSnapshot(rec.flow, rec.view.userId, rec.view.userType)
    return run(id, { userId: rec.view.userId, userType: rec.view.userType, ...shared }, snapshot)
  }

  /** Sends an event to a flow and resolves with its view once the change is stored. */
  function act(id: string, event: Parameters<Actor<IdentificationMachine>['send']>[0], accepted: (state: string) => boolean): Promise<FlowView> {
    if (!isFlowId(id)) return Promise.reject(new FlowNotFoundError(`No identification flow ${String(id)}`))
    return serial(id, async () => {
      await ready
      const current = running.get(id)?.view ?? (await load(id))?.view
      if (!current) throw new FlowNotFoundError(`No identification flow ${id}`)
      if (!accepted(current.state)) return current
      const r = await wake(id)
      r.actor.send(event)
      // An event the state did not take leaves a woken flow where it was: park it again.
      if (!WORKING.has(r.view.state)) park(id, r)
      await r.writes
      return r.view
    })
  }

  /** Resolves once the flow is out of `states` (or closed). */
  function leave(id: string, states: Set<string>): Promise<FlowView> {
    return new Promise((resolve) => {
      const check = () => {
        const v = running.get(id)?.view
        if (v && !states.has(v.state)) done(v)
        else if (!v) void load(id).then((rec) => rec && !states.has(rec.view.state) && done(rec.view))
      }
      const set = waiters.get(id) ?? new Set()
      const done = (v: FlowView) => {
        set.delete(check)
        if (set.size === 0 && waiters.get(id) === set) waiters.delete(id)
        resolve(v)
      }
      set.add(check)
      waiters.set(id, set)
      check()
    })
  }

  async function getView(id: string): Promise<FlowView | undefined> {
    if (!isFlowId(id)) return undefined
    return running.get(id)?.view ?? (await load(id))?.view
  }

  const ready = (async () => {
    const ids = (await store.list!(`${prefix}active:`)).map((k) => k.slice(`${prefix}active:`.length))
    for (const id of ids) {
      try {
        const rec = await load(id)
        if (!rec || !WORKING.has(rec.view.state)) {
          await store.delete(activeKey(id))
          continue
        }
        await wake(id)
      } catch (err) {
        report(err, id)
      }
    }
  })()

  return {
    ready,
    get running() {
      return running.size
    },
    async start(o) {
      if (closed) throw new Error('identification service: closed')
      if (!o || typeof o !== 'object') throw new TypeError('start: options are required')
      const input: IdentificationInput = {
        userId: o.userId,
        userType: o.userType,
        ...shared,
        ...(o.initiate && { initiate: o.initiate }),
      }
      resolveInput(input) // TypeError naming the field
      await ready
      const id = await serial(`user:${o.userType}:${o.userId}`, async () => {
        const prev = (await store.get(userKey(o.userType, o.userId))) as { id?: string } | undefined
        const prevView = prev?.id ? (running.get(prev.id)?.view ?? (await load(prev.id))?.view) : undefined
        if (prevView && !FINISHED.has(prevView.state) && !o.restart) return prevView.id
        if (prevView && !FINISHED.has(prevView.state)) await act(prevView.id, { type: 'CANCEL' }, (s) => !FINISHED.has(s))
        const newId = randomUUID()
        await store.set(userKey(o.userType, o.userId), { id: newId })
        await serial(newId, async () => {
          const r = run(newId, input)
          // A user who had a flow before gets a fresh provider session.
          r.actor.send({ type: prevView ? 'RESTART' : 'START' })
          await r.writes
        })
        return newId
      })
      return leave(id, new Set(['idle', 'initiating']))
    },
    redirect(id, { outcome, bTrustAppCallBackId }) {
      if (outcome !== 'success' && outcome !== 'fail') return Promise.reject(new TypeError("redirect: outcome must be 'success' or 'fail'"))
      return act(
        id,
        { type: 'REDIRECT', outcome, ...(bTrustAppCallBackId != null && { bTrustAppCallBackId }) },
        // pollingA/pollingB: a Success redirect while a Fail redirect is being confirmed.
        (s) => s === 'identifying' || s === 'signing' || s === 'pollingA' || s === 'pollingB',
      )
    },
    get: getView,
    async findByUser(userType, userId) {
      const ref = (await store.get(userKey(userType, userId))) as { id?: string } | undefined
      return ref?.id ? getView(ref.id) : undefined
    },
    continue: (id) => act(id, { type: 'CONTINUE' }, (s) => s === 'phaseA'),
    retry: (id) => act(id, { type: 'RETRY' }, (s) => s === 'failed'),
    restart: (id) => act(id, { type: 'RESTART' }, (s) => s !== 'finalized' && s !== 'phaseB' && s !== 'initiating'),
    cancel: (id) => act(id, { type: 'CANCEL' }, (s) => !FINISHED.has(s) && s !== 'idle'),
    subscribe(id, fn) {
      const set = listeners.get(id) ?? new Set()
      set.add(fn)
      listeners.set(id, set)
      return () => {
        set.delete(fn)
        if (set.size === 0) listeners.delete(id)
      }
    },
    async close() {
      closed = true
      await ready.catch(() => {})
      const all = [...running.values()]
      running.clear()
      for (const r of all) r.actor.stop()
      await Promise.all(all.map((r) => r.writes))
      await Promise.all([...queues.values()])
    },
  }
}
