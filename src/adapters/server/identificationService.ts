import { createActor, fromCallback, type Snapshot } from 'xstate'
import { systemClock, type Clock } from '../../machine/clock.js'
import type { HostEvent, WorkerEvent } from '../../machine/events.js'
import { identificationMachine } from '../../machine/identificationMachine.js'
import { resolveInput } from '../../machine/input.js'
import { topState, type PersistedFlow } from '../../machine/persistence.js'
import type {
  FailurePhase,
  IdentificationApi,
  IdentificationInput,
  InitiateOptions,
  PollingOptions,
  UserType,
} from '../../machine/types.js'
import { assertIdentificationApi, createIdentificationWorkers, type RequestOperation, type RequestResult } from '../../machine/workers.js'
import { createFlowHost, restoreFlow, viewOf as stateView, type IdentificationSnapshot } from '../../host/flowHost.js'
import { DependencyError, FlowActionError, FlowNotFoundError, ServiceClosedError, UnfinishedFlowExistsError } from './errors.js'
import { createLocalCoordinator } from './localCoordinator.js'
import { settles } from './settles.js'
import type { PhaseTelemetry, ServiceTelemetry } from './telemetry.js'
import type {
  FlowChange,
  FlowCoordinator,
  FlowHistoryEntry,
  FlowRecord,
  FlowState,
  FlowStore,
  FlowView,
  FlowWrite,
  LeasedFlowRecord,
} from './types.js'

/** Options of {@link createIdentificationService}. */
export interface IdentificationServiceOptions {
  /** The provider's API (`createHttpApi(...)` with `createPasswordGrantTokenSource(...)`). */
  api: IdentificationApi
  /**
   * Where flows live: `createMemoryFlowStore()`, `createSqliteSnapshotStore(file)` (one
   * process), or `createPostgresFlowStore(...)` (many replicas, with a coordinator).
   */
  store: FlowStore
  /**
   * Spreads the flows' work over replicas (`createBullMQCoordinator(...)`). Without one, this
   * process runs every flow itself; the store must then serve one process only.
   * @default the in-process coordinator
   */
  coordinator?: FlowCoordinator
  /** The time source. @default the system clock */
  clock?: Clock
  /** Random numbers in `[0, 1)` for jitter. @default Math.random */
  random?: () => number
  /** Polling and deadlines for every flow. */
  polling?: PollingOptions
  /** Provider URLs must point at one of these hosts (see `isSafeUrl`). */
  allowedHosts?: string[]
  /** Extra status codes to treat as pending. */
  pendingStatuses?: string[]
  /** Called once, by the replica that stored it, when a flow reaches `finalized`. */
  onFinalized?: (view: FlowView) => void
  /** Called once, by the replica that stored it, when a flow reaches `failed`. */
  onFailed?: (view: FlowView) => void
  /** Errors of flows and dependencies that no caller is waiting for. */
  onError?: (error: unknown, flowId?: string) => void
  /**
   * How long a call waits for the store or the coordinator before it fails with a
   * `DependencyError` naming it.
   * @default 5000
   */
  dependencyTimeoutMs?: number
  /**
   * How long a replica's lease on a flow it drives lasts without renewal; a replica that stops
   * (killed, frozen) loses its flows to the others after this long.
   * @default 10000
   */
  leaseMs?: number
  /**
   * This replica's name in leases and histories. It must be unique among the running replicas
   * (a store gives a lease again to the owner that holds it: two processes with one id would
   * both drive a flow); a restarted replica may reuse its id. @default a random UUID
   */
  replicaId?: string
  /**
   * How many flows per second this replica resumes from the coordinator's queue: the flows
   * nobody drives (a killed or closing replica's). A replica that takes over hundreds of flows
   * at once spreads their first requests (to the store and the provider) over time instead of
   * sending them all in one burst. Flows it starts or wakes itself are not paced.
   * @default 400
   */
  resumePerSecond?: number
  /**
   * Traces and metrics: `createOpenTelemetry()` from `10npay-identification/otel` (or any
   * {@link ServiceTelemetry}). @default none
   */
  telemetry?: ServiceTelemetry
}

/** What `start` takes. */
export interface StartOptions {
  userId: number
  userType: UserType
  /** Audit fields for initiate (the user's browser, when the frontend sends them). */
  initiate?: InitiateOptions
  /** Start anew even when the user has an unfinished flow (cancels it; initiate with `isRestartIdentification`). */
  restart?: boolean
}

/** The backend driver of many flows, in one process or across replicas. */
export interface IdentificationService {
  /** Resolves once the service takes work (the flows its store lists as working run again). */
  readonly ready: Promise<void>
  /**
   * Starts a flow, or returns the user's unfinished one (on every replica), and resolves once
   * initiate answered: the view's `url` is the ID-capture URL (or `failure` says why there is none).
   */
  start(options: StartOptions): Promise<FlowView>
  /**
   * Reports the provider's Success/Fail redirect (a hint: the status endpoint decides). Where
   * the flow does not wait for one it changes nothing and the view comes back as it is.
   */
  redirect(flowId: string, options: { outcome: 'success' | 'fail'; bTrustAppCallBackId?: string | null }): Promise<FlowView>
  /** The flow's view, or `undefined`. */
  get(flowId: string): Promise<FlowView | undefined>
  /** The user's latest flow, or `undefined` (one Success/Fail URL for every flow: find the flow from the user's session). */
  findByUser(userType: UserType, userId: number): Promise<FlowView | undefined>
  /** In `phaseA`: on to `signing`. @throws FlowActionError when the state does not accept it */
  continue(flowId: string): Promise<FlowView>
  /** In `failed` with a retryable failure: the failed step again. @throws FlowActionError */
  retry(flowId: string): Promise<FlowView>
  /** Initiates again (`isRestartIdentification`); resolves once initiate answered, with the new URL. @throws FlowActionError */
  restart(flowId: string): Promise<FlowView>
  /** Ends the flow as `failed` (`cancelled`); a finalize the provider answered `200` keeps its result. @throws FlowActionError */
  cancel(flowId: string): Promise<FlowView>
  /** The flow's recent history (views, host events), oldest first. */
  history(flowId: string): Promise<FlowHistoryEntry[]>
  /**
   * Calls `fn` with the view after every change of the flow, whichever replica makes it;
   * returns the unsubscribe function.
   */
  subscribe(flowId: string, fn: (view: FlowView) => void): () => void
  /** How many flows this replica drives now. */
  readonly running: number
  /** This replica's id. */
  readonly replicaId: string
  /** Answers when the store and the coordinator answer; counts of flows. */
  health(): Promise<{ ok: boolean; store: string; coordinator: string; counts?: { working: number; parked: number; ended: number }; error?: string }>
  /**
   * Stops taking work, stops every actor, waits for its last writes and gives its leases back
   * (other replicas, or the next process, go on with the flows). A provider request already on
   * its way is answered and its answer written first (at most `dependencyTimeoutMs`), so that
   * whoever goes on with the flow does not send it again. Nothing runs after it.
   */
  close(): Promise<void>
}

/** How many provider requests a driver keeps for the history between two writes. */
const MAX_PENDING_REQUESTS = 20

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Whether a string has the form of a flow id (a UUID, any case). */
export const isFlowId = (id: unknown): id is string => typeof id === 'string' && UUID.test(id)

const inert = fromCallback<WorkerEvent, unknown>(() => () => {})
/** The chart with workers that do nothing: host events are applied to a parked flow without any request. */
const applyMachine = identificationMachine.provide({ actors: { initiator: inert, statusPoller: inert, finalizer: inert } })

/** What applying a parked flow's events wrote. */
interface Applied {
  /** The flow's view after the write. */
  view: FlowView
  /** The stretch to queue: the flow has work again. */
  stretch?: number
  /** The direct event was not taken by the flow's state (the caller answers 409). */
  rejected?: boolean
}

/** Whether a write with `release` gave the lease up (a store may ignore `release`). */
const leaseGivenUp = (r: FlowRecord) => !r.lease || r.lease.until <= 0

/** The part of a view subscribers hear about (not its time or version). */
const signature = (v: FlowView) => JSON.stringify([v.state, v.url, v.failure, v.result])

/** A flow this replica drives. */
interface Driver {
  id: string
  /** Driven for a coordinator's job (its signal aborts when the job is given up). */
  job: boolean
  /** `${userType}:${userId}`: the workers name the flow by its user. */
  userKey: string
  epoch: number
  record: FlowRecord
  /** Writes in order; each waits for the one before. */
  writes: Promise<void>
  /** The clock time until which the lease is surely held (renewed by the renewal loop). */
  validUntil: number
  /** Stops the actor; with `lost`, nothing more is written and the lease is not given back. */
  stop(why: 'parked' | 'ended' | 'lost' | 'closed' | 'failed'): void
  /** Applies the inbox events not applied yet. */
  drain(): void
  /** Throws (and stops the flow) unless the lease is surely still held: called before every request. */
  check(): void
  /** The stretch's last write, which gives the lease up, is on its way (a renewal then finds no lease). */
  releasing(): boolean
  /** Stopped by close() while the flow still had work, and its lease given back: someone must go on with it. */
  handedBack(): boolean
  /** A provider request starts: history and telemetry hear of it; the returned function of how it ended. */
  request(operation: RequestOperation): (result: RequestResult) => void
  done: Promise<void>
}

/**
 * Drives identification flows from a server: in one process (memory or SQLite store) or as one
 * of many replicas (`createPostgresFlowStore` + `createBullMQCoordinator`). Every flow lives in
 * the store; a replica holds a lease on a flow while it runs a working stretch (initiate,
 * polling, finalize) and every write is fenced by it. The replica that starts a flow, or applies
 * the event that wakes it, drives the stretch that follows; the coordinator hands the stretches
 * nobody drives (a killed or closing replica's) to any replica. Host events are applied once, in
 * order: at once by the receiving replica when nobody drives the flow, otherwise through the
 * flow's inbox by whoever holds the lease. Flows that wait for a person have no actor anywhere.
 *
 * @example
 * const service = createIdentificationService({ api, store: createSqliteSnapshotStore('flows.db') })
 * const { id, url } = await service.start({ userId: 42, userType: 0 })
 */
export function createIdentificationService(options: IdentificationServiceOptions): IdentificationService {
  if (!options || typeof options !== 'object') throw new TypeError('createIdentificationService: options are required')
  const { api, store, onFinalized, onFailed, onError } = options
  assertIdentificationApi(api, 'createIdentificationService')
  const storeMethods = ['create', 'get', 'findByUser', 'write', 'acquireLease', 'renewLeases', 'releaseLease', 'appendEvent', 'events', 'orphans', 'history', 'counts']
  if (!store || typeof store !== 'object' || storeMethods.some((m) => typeof (store as unknown as Record<string, unknown>)[m] !== 'function')) {
    throw new TypeError(
      'createIdentificationService: store must be a FlowStore (createMemoryFlowStore(), createSqliteSnapshotStore(file) or createPostgresFlowStore(...)); a SnapshotStore is for runIdentification',
    )
  }
  const coordinator = options.coordinator ?? createLocalCoordinator()
  if (typeof coordinator.dispatch !== 'function' || typeof coordinator.start !== 'function') {
    throw new TypeError('createIdentificationService: coordinator must be a FlowCoordinator (createBullMQCoordinator(...))')
  }
  if (store.exclusive && coordinator.distributed) {
    throw new TypeError(`createIdentificationService: a ${store.kind} store serves one process; use createPostgresFlowStore with a distributed coordinator`)
  }
  const clock = options.clock ?? systemClock
  const telemetry = options.telemetry
  const depTimeout = positive(options.dependencyTimeoutMs, 5000, 'dependencyTimeoutMs')
  const leaseMs = positive(options.leaseMs, 10_000, 'leaseMs')
  const resumeGapMs = 1000 / positive(options.resumePerSecond, 400, 'resumePerSecond')
  const owner = options.replicaId ?? globalThis.crypto.randomUUID()
  if (typeof owner !== 'string' || owner === '' || owner.length > 200) throw new TypeError('createIdentificationService: replicaId must be a non-empty string')
  const shared: Omit<IdentificationInput, 'userId' | 'userType'> = {
    ...(options.polling && { polling: options.polling }),
    ...(options.allowedHosts && { allowedHosts: options.allowedHosts }),
    ...(options.pendingStatuses && { pendingStatuses: options.pendingStatuses }),
  }
  const resolvedShared = resolveInput({ userId: 1, userType: 0, ...shared }) // validates the shared options now

  const drivers = new Map<string, Driver>()
  /** Flows whose lease this replica is taking right now (see `exclusive`). */
  const claiming = new Set<string>()
  /** The work of those claims (close() waits for it). */
  const claims = new Set<Promise<unknown>>()
  /**
   * Flows an event was announced for while they were held here (claimed, or their driver's last
   * write, which gives the lease up, on its way): looked at again once let go ({@link lookAgain}).
   */
  const recheck = new Set<string>()
  /**
   * Drivers stopped here whose last writes and lease release are still on their way, by flow:
   * the store gives the lease again to this replica, so a new driver must wait for them.
   */
  const leaving = new Map<string, Promise<void>>()
  /** The same drivers by user: one unfinished flow per user, so at most one driver each. */
  const driversByUser = new Map<string, Driver>()
  // One chart for every flow. Every request checks the lease first: a replica that lost it
  // (frozen, partitioned) sends nothing more for that flow.
  const machine = identificationMachine.provide({
    actors: createIdentificationWorkers({
      api,
      clock,
      ...(options.random && { random: options.random }),
      beforeRequest: ({ userId, userType }) => {
        const d = driversByUser.get(`${userType}:${userId}`)
        if (!d) throw new Error(`identification service: no lease on a flow of user ${userType}:${userId}`)
        d.check()
      },
      onRequest: ({ userId, userType }, operation) => driversByUser.get(`${userType}:${userId}`)?.request(operation),
    }),
  })
  const listeners = new Map<string, Set<(v: FlowView) => void>>()
  /** The last version each flow's local listeners heard, so that none hears an older view after a newer one. */
  const heard = new Map<string, number>()
  const waiters = new Map<string, Set<(c: FlowChange) => void>>()
  let closed = false
  let renewTimer: unknown
  let reconcileTimer: unknown

  const report = (err: unknown, id?: string) => {
    try {
      onError?.(err, id)
    } catch {
      /* ignore */
    }
  }
  const safe = (fn: () => void) => {
    try {
      fn()
    } catch (err) {
      report(err)
    }
  }

  /** A store or coordinator call, bounded in time; failures become a `DependencyError` naming it. */
  function dep<T>(what: string, call: () => Promise<T>, kind = store.kind): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new DependencyError(kind, `${what} did not answer within ${depTimeout} ms`)), depTimeout)
      let p: Promise<T>
      try {
        p = call()
      } catch (err) {
        p = Promise.reject(err)
      }
      p.then(
        (v) => {
          clearTimeout(timer)
          resolve(v)
        },
        (err: unknown) => {
          clearTimeout(timer)
          reject(err instanceof DependencyError || err instanceof UnfinishedFlowExistsError ? err : new DependencyError(kind, `${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }))
        },
      )
    })
  }
  const coord = <T>(what: string, call: () => Promise<T>) => dep(what, call, coordinator.kind)

  function viewOf(id: string, s: IdentificationSnapshot, version: number): FlowView {
    const state = topState(s.value) as FlowState
    const c = s.context
    const url = state === 'identifying' ? c.identificationUrl : state === 'signing' || state === 'phaseA' ? c.signingUrl : null
    return { id, userId: c.userId, userType: c.userType, url, version, updatedAt: new Date(clock.now()).toISOString(), ...stateView(s) }
  }

  /** What a write of `snapshot` stores. */
  function writeOf(id: string, s: IdentificationSnapshot, flow: PersistedFlow, version: number, stretch: number, appliedSeq: number, prevView: FlowView | undefined, extra: FlowHistoryEntry[] = []): FlowWrite {
    const view = viewOf(id, s, version + 1)
    const history = [...extra]
    if (!prevView || signature(prevView) !== signature(view)) history.push({ kind: 'view', at: clock.now(), version: version + 1, view })
    return {
      state: view.state,
      working: s.hasTag('working'),
      ended: s.hasTag('ended'),
      stretch,
      flow,
      view,
      appliedSeq,
      ...(history.length > 0 && { history }),
    }
  }

  /** Tells every replica (this one included) about a committed change whose view differs from the last. */
  function changed(record: FlowRecord, prevView: FlowView | undefined) {
    const change: FlowChange = { id: record.id, version: record.version, appliedSeq: record.appliedSeq, view: record.view }
    // Nothing a subscriber sees; waiters for applied events still hear of it here.
    if (prevView && signature(prevView) === signature(record.view)) return deliverLocal(change, false)
    if (coordinator.distributed) deliverLocal(change, false)
    coord('notifyChange', () => coordinator.notifyChange(change)).catch((err: unknown) => report(err, record.id))
  }

  /** Hands a change to this replica's waiters and (when `listen`) subscribers. */
  function deliverLocal(change: FlowChange, listen: boolean) {
    for (const w of waiters.get(change.id) ?? []) w(change)
    if (!listen) return
    const last = heard.get(change.id) ?? 0
    if (change.version <= last) return
    heard.set(change.id, change.version)
    for (const fn of listeners.get(change.id) ?? []) safe(() => fn(change.view))
  }

  /** The flow ended: the replica that stored it tells the app, once. */
  function ended(view: FlowView, trace: string | undefined) {
    safe(() => telemetry?.flowEnded(view, trace))
    if (view.state === 'finalized') safe(() => onFinalized?.(view))
    else if (view.state === 'failed') safe(() => onFailed?.(view))
  }

  // ——— driving a working stretch ———

  /**
   * Runs a queued stretch (a coordinator's job). Stretches are queued only when no replica drives
   * them already: a flow resumed after its replica died or closed, or one whose start could not
   * take the lease. A stretch that wakes a parked flow is driven by the replica that woke it.
   */
  async function run(job: { flowId: string; stretch: number }, signal: AbortSignal): Promise<void> {
    const d = closed || !(await resumeTurn(signal)) ? undefined : await begin(job, signal, false, true)
    if (d) return d.done
    // Taken while this replica closes (its worker still fetches): given back when the
    // coordinator aborts it on close, so that another replica runs it.
    if (closed) await pause(leaseMs, signal)
  }

  /** When the next queued stretch may begin here (real time, epoch ms): one per `resumeGapMs`. */
  let nextResume = 0
  /** Waits for this queued stretch's turn (see `resumePerSecond`); `false` when the job was given up meanwhile. */
  function resumeTurn(signal: AbortSignal): Promise<boolean> {
    const now = Date.now()
    const at = Math.max(now, nextResume)
    nextResume = at + resumeGapMs
    return at - now < 1 ? Promise.resolve(!signal.aborted) : pause(at - now, signal)
  }

  /**
   * Runs `fn` unless this replica drives the flow or is taking its lease already: a store gives
   * the lease again to the owner that holds it, so two takers here would both get it.
   */
  async function exclusive<T>(id: string, fn: () => Promise<T | undefined>): Promise<T | undefined> {
    // A driver stopped here a moment ago may still be writing: what it writes comes first.
    for (let left = leaving.get(id); left; left = leaving.get(id)) await left
    if (claiming.has(id) || drivers.has(id)) {
      // Looked at again once the claim is over: an event appended meanwhile is not left waiting
      // for the caller's next look.
      if (claiming.has(id)) recheck.add(id)
      return undefined
    }
    claiming.add(id)
    const work = fn()
    claims.add(work)
    try {
      return await work
    } finally {
      claims.delete(work)
      claiming.delete(id)
      lookAgain(id)
    }
  }

  /** A flow in `recheck` is let go: its inbox is applied now, not at the caller's next look. */
  function lookAgain(id: string) {
    if (!recheck.delete(id) || closed) return
    const d = drivers.get(id)
    if (d) d.drain()
    else applyParked(id).catch((err: unknown) => report(err, id))
  }

  /** Takes the flow's lease and starts driving its stretch; `undefined` when there is nothing to drive here. */
  function begin(job: { flowId: string; stretch: number }, signal: AbortSignal, force: boolean, fromJob: boolean): Promise<Driver | undefined> {
    return exclusive(job.flowId, () => beginExclusive(job, signal, force, fromJob))
  }

  async function beginExclusive(job: { flowId: string; stretch: number }, signal: AbortSignal, force: boolean, fromJob: boolean): Promise<Driver | undefined> {
    if (closed || signal.aborted) return undefined
    // The lease runs from when the store was asked, not from when its answer came back.
    let takenAt = clock.now()
    let record = await dep('acquireLease', () => store.acquireLease(job.flowId, owner, leaseMs, { force }))
    if (!record) {
      // Another replica holds the lease: a live one renews it, a dead one's runs out. A job waits
      // for it to run out (the job keeps this stretch here meanwhile) and tries once more, so that
      // a killed replica's flow goes on now rather than at the next reconcile.
      if (!fromJob) return undefined
      const held = await dep('get', () => store.get(job.flowId))
      const wait = held?.lease ? Math.min(leaseMs, held.lease.until - clock.now()) + 50 : 0
      if (!held?.working || wait <= 0 || !(await pause(wait, signal))) return undefined
      takenAt = clock.now()
      record = await dep('acquireLease', () => store.acquireLease(job.flowId, owner, leaseMs))
      if (!record) return undefined // it is alive: it drives the flow
    }
    const epoch = record.lease!.epoch
    if (!record.working && !closed && !signal.aborted && !drivers.has(job.flowId)) {
      // A waiting flow queued for the events in its inbox (a store that lists such flows among
      // its orphans without saying so): applied here, under this lease, then given up.
      const applied = await applyLeased(record, takenAt)
      if (applied?.stretch !== undefined) await coord('dispatch', () => coordinator.dispatch(job.flowId, applied.stretch!)).catch((e: unknown) => report(e, job.flowId))
      return undefined
    }
    if (closed || signal.aborted || !record.working || record.stretch !== job.stretch || drivers.has(job.flowId)) {
      if (!drivers.has(job.flowId)) await dep('releaseLease', () => store.releaseLease(job.flowId, owner, epoch)).catch((e: unknown) => report(e, job.flowId))
      if (record.working && record.stretch !== job.stretch && !closed) void coord('dispatch', () => coordinator.dispatch(record.id, record.stretch)).catch((e: unknown) => report(e, record.id))
      return undefined
    }
    return driveLeased(record, signal, takenAt, fromJob)
  }

  /** Restores a flow whose lease this replica holds and drives it; one that cannot be restored is reported and its lease given back. */
  async function driveLeased(record: LeasedFlowRecord, signal: AbortSignal, takenAt: number, job: boolean): Promise<Driver | undefined> {
    const epoch = record.lease!.epoch
    const restored = restoreFlow(record.flow, record.userId, record.userType)
    if ('snapshot' in restored) return drive(record, epoch, restored.snapshot, signal, takenAt, job)
    report(new Error(`flow ${record.id} cannot be restored: ${restored.rejected}`), record.id)
    await dep('releaseLease', () => store.releaseLease(record.id, owner, epoch)).catch(() => {})
    return undefined
  }

  function drive(leased: LeasedFlowRecord, epoch: number, snapshot: Snapshot<unknown>, signal: AbortSignal, takenAt: number, job = false): Driver {
    const { pending, ...record } = leased
    const id = record.id
    let resolveDone!: () => void
    const done = new Promise<void>((r) => (resolveDone = r))
    let stopped = false
    let stoppedAs: Parameters<Driver['stop']>[0] | undefined
    /** Stopped because the lease is lost or in doubt: writes still queued are dropped. */
    let fenced = false
    /** Provider requests on their way (started, not answered). */
    let inflight = 0
    /** Set while a hand-over waits for the request on its way; stops the driver at once. */
    let handOver: (() => void) | undefined
    let handOverTimer: ReturnType<typeof setTimeout> | undefined
    let applied = record.appliedSeq
    let draining = false
    /** The stretch's last write, which gives the lease up, is on its way: nothing new starts. */
    let releasing = false
    /** That write gave the lease up: no `releaseLease` when the driver stops. */
    let released = false
    let pendingHistory: FlowHistoryEntry[] = []
    /** Provider requests since the last write, written with the next one. */
    let pendingRequests: FlowHistoryEntry[] = []
    /** The phase running here, as telemetry sees it. */
    let phase: PhaseTelemetry | undefined
    let phaseName: string | null = null
    const followPhase = (step: FailurePhase | null) => {
      if (step === phaseName) return
      phase?.end('next')
      phaseName = step
      phase = undefined
      if (step !== null && telemetry) {
        try {
          phase = telemetry.phase({ id, userType: record.userType, trace: record.flow.trace }, step)
        } catch (err) {
          report(err, id)
        }
      }
    }
    let queued = 0
    /** The signature of the stored view (`d.record.view`): a poll compares against it, not a new stringify. */
    let shownSig = signature(record.view)
    /** The inbox sequence number the last queued write carries. */
    let writtenSeq = record.appliedSeq
    const write = (s: IdentificationSnapshot) => {
      const history = [...pendingRequests, ...pendingHistory]
      pendingHistory = []
      pendingRequests = []
      const persisted = withTrace(host.persisted(clock.now()), record.flow.trace)
      const seq = applied
      writtenSeq = seq
      queued++
      // A write counts as queued until the store answered: the flow parks (settle) only once its
      // last write is stored, never while that write is on its way.
      d.writes = d.writes.then(async () => {
        if (fenced) return void queued--
        const w = writeOf(id, s, persisted, d.record.version, d.record.stretch, seq, d.record.view, history)
        // The write after which the driver stops (the flow waits for a person, or ended, and no
        // other write or inbox read is on its way) gives the lease up in the same round trip.
        const last = queued === 1 && !draining && !s.hasTag('working')
        if (last) releasing = true
        let next: FlowRecord | null
        try {
          next = await dep('write', () => store.write(id, d.record.version, w, { owner, epoch, ...(last && { release: true }) }))
        } catch (err) {
          queued--
          report(err, id)
          return d.stop('failed') // the lease runs out; the flow resumes from its last stored state
        }
        queued--
        if (!next) return d.stop('lost') // fenced: another replica took the flow over
        if (last && leaseGivenUp(next)) released = true
        const before = d.record.view
        d.record = next
        shownSig = signature(next.view)
        // The last write of a flow that waits for a person, or ended: no actor any more.
        if (queued === 0 && !draining) settle()
        changed(next, before)
      })
    }
    const host = createFlowHost({
      machine,
      input: { userId: record.userId, userType: record.userType, ...shared },
      clock,
      autoContinue: true,
      snapshot,
      onSnapshot: (s, { entered }) => {
        if (stopped) return
        followPhase(s.context.step)
        // Only what matters is written: a change of state or view, an applied event. A worker's
        // deadline or a still-pending status is not worth a round trip to the store: after a
        // restore the worker arms its deadline again.
        if (entered || pendingHistory.length > 0 || applied !== writtenSeq || signature(viewOf(id, s, 0)) !== shownSig) write(s)
      },
      onError: (err) => {
        report(err, id)
        d.stop('failed')
      },
    })
    const d: Driver = {
      id,
      job,
      userKey: `${record.userType}:${record.userId}`,
      epoch,
      record,
      writes: Promise.resolve(),
      validUntil: takenAt + leaseMs * 0.9,
      done,
      request(operation) {
        const at = clock.now()
        const span = phase?.request(operation)
        inflight++
        return (result) => {
          inflight--
          // The worker hands the answer to the chart right after this, in the same turn, and its
          // write is queued then: the hand-over waits for that, and for no other request.
          if (handOver && inflight === 0) queueMicrotask(handOver)
          safe(() => span?.(result))
          // The history keeps the latest requests of a stretch (a long wait polls many times).
          if (pendingRequests.length >= MAX_PENDING_REQUESTS) pendingRequests.shift()
          pendingRequests.push({
            kind: 'request',
            at,
            operation,
            outcome: result.error ? result.error.kind : 'ok',
            durationMs: Math.round(result.durationMs),
            ...(result.error?.httpStatus !== undefined ? { httpStatus: result.error.httpStatus } : !result.error ? { httpStatus: 200 } : {}),
            ...(typeof result.providerStatus === 'string' && { providerStatus: result.providerStatus.slice(0, 64) }),
          })
        }
      },
      check() {
        if (handOver) {
          handOver()
          throw new Error(`identification service: flow ${id} is being handed over`)
        }
        // A request starts only while a good part of the lease is left: one still on its way when
        // the lease runs out elsewhere would overlap with the next owner's.
        if (stopped || releasing || clock.now() + leaseMs / 4 >= d.validUntil) {
          d.stop('lost')
          throw new Error(`identification service: the lease on flow ${id} is not held any more`)
        }
      },
      stop(why) {
        if (stopped) return
        if (why === 'closed') {
          if (handOver) return // waiting already
          if (inflight > 0) {
            // Handed over (closing, or the stretch's job given up) while a request is on its way:
            // it finishes and its answer is written first, or whoever drives the flow next sends
            // it again (a second initiate). Nothing new starts meanwhile (check); the wait ends at
            // the latest when the lease may (validUntil), and within dependencyTimeoutMs.
            handOver = () => halt('closed')
            handOverTimer = setTimeout(handOver, Math.min(depTimeout, Math.max(0, d.validUntil - clock.now())))
            return
          }
        }
        halt(why)
      },
      releasing: () => releasing,
      handedBack: () => stoppedAs === 'closed' && d.record.working && !d.record.ended,
      drain() {
        // Once the last write gives the lease up, an event that came meanwhile is not applied by
        // this driver: the flow is looked at again once the driver let go (lookAgain).
        if (releasing) recheck.add(id)
        if (stopped || draining || releasing) return
        draining = true
        void dep('events', () => store.events(id, applied))
          .then((entries) => {
            for (const e of entries) {
              if (stopped) return
              if (e.seq <= applied) continue
              applied = e.seq
              const ok = host.can(e.event)
              pendingHistory.push({ kind: 'event', at: e.at, event: e.event.type, receivedBy: e.receivedBy, applied: ok })
              if (ok) host.send(e.event)
              // Not accepted: no transition, so write the applied mark on its own.
              else write(host.getSnapshot())
            }
          })
          .catch((err: unknown) => report(err, id))
          .finally(() => {
            draining = false
            settle()
          })
      },
    }
    /** Stops the actor and lets go of the flow (see {@link Driver.stop}). */
    function halt(why: Parameters<Driver['stop']>[0]) {
      if (stopped) return
      clearTimeout(handOverTimer)
      handOver = undefined
      stopped = true
      stoppedAs = why
      fenced = why === 'lost' || why === 'failed'
      host.stop()
      phase?.end(why === 'parked' ? 'parked' : why === 'ended' ? 'ended' : 'handed-over')
      phase = undefined
      signal.removeEventListener('abort', onAbort)
      drivers.delete(id)
      if (driversByUser.get(d.userKey) === d) driversByUser.delete(d.userKey)
      const left: Promise<void> = d.writes
        .then(async () => {
          if (why !== 'lost' && why !== 'failed' && !released) await dep('releaseLease', () => store.releaseLease(id, owner, epoch)).catch((e: unknown) => report(e, id))
          if (why === 'ended') ended(d.record.view, d.record.flow.trace)
        })
        .catch((e: unknown) => report(e, id))
        .finally(() => {
          if (leaving.get(id) === left) leaving.delete(id)
          resolveDone()
          lookAgain(id)
        })
      leaving.set(id, left)
    }
    const onAbort = () => d.stop('closed')
    signal.addEventListener('abort', onAbort, { once: true })
    /** A flow that waits for a person, or ended, needs no actor (called when no write is queued). */
    const settle = () => {
      if (stopped || draining || queued > 0) return
      const s = host.getSnapshot()
      if (s.hasTag('ended')) d.stop('ended')
      else if (!s.hasTag('working')) d.stop('parked')
    }
    drivers.set(id, d)
    driversByUser.set(d.userKey, d)
    host.start()
    // A store that reads the inbox with the lease (`pending`) spares the round trip when it is empty.
    if (pending !== false) d.drain()
    settle()
    return d
  }

  /** One renewal round for every flow this replica drives; a lease not renewed is lost. */
  async function renewAll() {
    if (closed || drivers.size === 0) return
    const held = [...drivers.values()]
    const at = clock.now()
    let renewed: { id: string; pending: boolean }[]
    try {
      renewed = await dep('renewLeases', () => store.renewLeases(owner, held.map((d) => ({ id: d.id, epoch: d.epoch })), leaseMs))
    } catch (err) {
      report(err)
      return // validUntil runs out: requests stop by themselves
    }
    const ok = new Map(renewed.map((r) => [r.id, r.pending]))
    for (const d of held) {
      if (drivers.get(d.id) !== d) continue
      // A driver whose last write gave the lease up already is not lost: that write's answer
      // stops it (ended or parked), or, fenced, as lost.
      if (!ok.has(d.id)) {
        if (!d.releasing()) d.stop('lost')
      } else {
        d.validUntil = at + leaseMs * 0.9
        if (ok.get(d.id)) d.drain()
      }
    }
  }

  // ——— applying host events to a flow nobody drives ———

  /** Applies a parked flow's inbox here (takes its lease for the moment); a working one is driven here. */
  async function applyParked(id: string, force = false): Promise<void> {
    // The next stretch is queued once the lease is given back and the claim is over, so that
    // this replica's own worker may take it.
    const done = await exclusive(id, () => applyParkedExclusive(id, undefined, force))
    if (done?.stretch !== undefined) await coord('dispatch', () => coordinator.dispatch(id, done.stretch!))
  }

  /**
   * Applies a parked flow's inbox, and then `direct` (a host event this replica received): one
   * lease, one write. Resolves with what was written (and the stretch to queue when the flow has
   * work again); `undefined` when nothing was done here (driven elsewhere; working, then driven
   * here; or not restorable: a direct event then goes through the inbox).
   */
  async function applyParkedExclusive(id: string, direct?: HostEvent, force = false): Promise<Applied | undefined> {
    if (closed) return undefined
    const takenAt = clock.now()
    const record = await dep('acquireLease', () => store.acquireLease(id, owner, leaseMs, force ? { force } : undefined))
    if (!record) return // driven elsewhere: that replica applies it
    return applyLeased(record, takenAt, direct)
  }

  /** {@link applyParkedExclusive} once the flow's lease is held here (`record` came with it; given up or handed to a driver here). */
  async function applyLeased(record: LeasedFlowRecord, takenAt: number, direct?: HostEvent): Promise<Applied | undefined> {
    const id = record.id
    const epoch = record.lease!.epoch
    if (record.working) {
      // Working but nobody drives it (a job not taken yet, or lost): drive it here (a direct
      // event then goes through the inbox, which this driver reads; giving the lease back would
      // hold the stretch's job up until the lease ran out).
      const restored = restoreFlow(record.flow, record.userId, record.userType)
      if ('snapshot' in restored) {
        void drive(record, epoch, restored.snapshot, new AbortController().signal, takenAt)
        return
      }
    }
    let released = false
    try {
      const entries = record.pending === false ? [] : await dep('events', () => store.events(id, record.appliedSeq))
      if (entries.length === 0 && !direct) return
      const restored = restoreFlow(record.flow, record.userId, record.userType)
      if ('rejected' in restored) {
        if (direct) return undefined // the inbox path answers (a flow that cannot be restored takes no event: 409)
        throw new Error(`flow ${id} cannot be restored: ${restored.rejected}`)
      }
      const host = createFlowHost({ machine: applyMachine, input: { userId: record.userId, userType: record.userType, ...shared }, clock, autoContinue: true, snapshot: restored.snapshot })
      host.start()
      const history: FlowHistoryEntry[] = []
      let applied = record.appliedSeq
      for (const e of entries) {
        applied = e.seq
        const ok = host.send(e.event)
        history.push({ kind: 'event', at: e.at, event: e.event.type, receivedBy: e.receivedBy, applied: ok })
      }
      // The event received here comes after the inbox's; one the state does not take is not
      // written (the caller hears 409), nor one that would bring back an ended flow while the
      // user has another unfinished one.
      let accepted = false
      if (direct) {
        const before = host.getSnapshot()
        accepted = before.can(direct) && !(before.hasTag('ended') && !(await mayComeBack(record)))
        if (accepted) {
          host.send(direct)
          history.push({ kind: 'event', at: clock.now(), event: direct.type, receivedBy: owner, applied: true })
        } else if (entries.length === 0) {
          host.stop()
          return { view: record.view, rejected: true }
        }
      }
      const s = host.getSnapshot()
      const working = s.hasTag('working')
      const stretch = working ? record.stretch + 1 : record.stretch
      const w = writeOf(id, s, withTrace(host.persisted(clock.now()), record.flow.trace), record.version, stretch, applied, record.view, history)
      host.stop()
      // The flow has work again: this replica holds its lease already and drives the new stretch
      // itself (no job to queue and fetch, no second lease); otherwise the write gives the lease up.
      const keep = working && !closed
      let next: FlowRecord | null
      try {
        next = await dep('write', () => store.write(id, record.version, w, { owner, epoch, ...(!keep && { release: true }) }))
      } catch (err) {
        if (!(err instanceof UnfinishedFlowExistsError)) throw err
        // The flow cannot come back while the user has another unfinished one: the events are
        // used up without effect, and the flow stays as it was.
        const unchanged: FlowWrite = {
          state: record.state, working: record.working, ended: record.ended, stretch: record.stretch, flow: record.flow, view: record.view, appliedSeq: applied,
          history: history.map((h) => (h.kind === 'event' ? { ...h, applied: false } : h)),
        }
        next = await dep('write', () => store.write(id, record.version, unchanged, { owner, epoch, release: true }))
        if (!next) return
        released = leaseGivenUp(next)
        changed(next, record.view)
        // The event received here was not applied either: the caller hears so (409).
        return { view: next.view, ...(direct && { rejected: true }) }
      }
      if (!next) return
      const rejected = direct && !accepted ? { rejected: true } : {}
      const resumed = keep && !closed ? restoreFlow(next.flow, next.userId, next.userType) : undefined
      if (resumed && 'snapshot' in resumed) {
        released = true // the driver gives the lease up when the stretch ends
        changed(next, record.view)
        drive({ ...next, pending: false }, epoch, resumed.snapshot, new AbortController().signal, takenAt)
        return { view: next.view, ...rejected }
      }
      // Stored: a lease that cannot be given back now runs out by itself; what was stored is
      // announced, and its caller answered, either way.
      if (!leaseGivenUp(next)) await dep('releaseLease', () => store.releaseLease(id, owner, epoch)).catch((e: unknown) => report(e, id))
      released = true
      changed(next, record.view)
      if (next.ended && !record.ended) ended(next.view, next.flow.trace)
      return { view: next.view, ...(working && { stretch }), ...rejected }
    } finally {
      if (!released) await dep('releaseLease', () => store.releaseLease(id, owner, epoch)).catch((e: unknown) => report(e, id))
    }
  }

  // ——— calls ———

  /** Resolves with the first change of a flow that `done` accepts; re-reads the store now and then, and tries to apply its inbox. */
  function waitFor(id: string, done: (c: FlowChange) => boolean, limitMs: number, nudge?: () => void): Promise<FlowView> {
    return new Promise<FlowView>((resolve, reject) => {
      let finished = false
      const set = waiters.get(id) ?? new Set()
      const finish = (err: unknown, view?: FlowView) => {
        if (finished) return
        finished = true
        set.delete(onChange)
        if (set.size === 0 && waiters.get(id) === set) waiters.delete(id)
        clearInterval(poll)
        clearTimeout(limit)
        if (err) reject(err)
        else resolve(view!)
      }
      const onChange = (c: FlowChange) => {
        if (done(c)) finish(undefined, c.view)
      }
      set.add(onChange)
      waiters.set(id, set)
      // Notifications can be lost (a replica restarting, Redis reconnecting): the store decides.
      const look = () =>
        void dep('get', () => store.get(id)).then(
          (r) => {
            if (!r) return finish(new FlowNotFoundError(`No identification flow ${id}`))
            onChange({ id, version: r.version, appliedSeq: r.appliedSeq, view: r.view })
            if (!finished) nudge?.()
          },
          (err: unknown) => finish(err),
        )
      // The first look after a pause: a change that came before this waiter is what the caller
      // just read or wrote, and the next notification (or this look) brings the one it waits for.
      // Alone, this process hears of every change: the look is only a safety net.
      const poll = setInterval(look, coordinator.distributed ? 250 : 2000)
      const limit = setTimeout(() => finish(new Error(`identification service: flow ${id} did not get there within ${limitMs} ms`)), limitMs)
    })
  }

  /** How long `start` and `restart` wait for initiate (which retries until the phase deadline). */
  const initiateWaitMs = resolvedShared.polling.phaseTimeoutMs + 2 * leaseMs + depTimeout
  const pastInitiating = (c: FlowChange) => c.view.state !== 'idle' && c.view.state !== 'initiating'

  const open = async (call: string) => {
    if (closed) throw new ServiceClosedError(call)
    await ready
    if (closed) throw new ServiceClosedError(call)
  }

  /** Sends a host event to a flow through its inbox; resolves with the view once it is applied. */
  async function act(call: string, id: string, event: HostEvent, quiet = false): Promise<FlowView> {
    await open(call)
    if (!isFlowId(id)) throw new FlowNotFoundError(`No identification flow ${String(id)}`)
    id = id.toLowerCase()
    // A flow nobody drives (it waits for a person, or ended): applied here at once, under the
    // flow's lease, in one write. A driven one hears of it through its inbox.
    const here = await exclusive(id, () => applyParkedExclusive(id, event))
    if (here) {
      if (here.stretch !== undefined) await coord('dispatch', () => coordinator.dispatch(id, here.stretch!)).catch((err: unknown) => report(err, id))
      if (here.rejected && !quiet) throw new FlowActionError(call, here.view)
      return here.view
    }
    // Closing (close() began while this call ran): nothing is stored that this replica would then
    // leave unapplied.
    if (closed) throw new ServiceClosedError(call)
    const record = await dep('get', () => store.get(id))
    if (!record) throw new FlowNotFoundError(`No identification flow ${id}`)
    if (!accepts(record, event) || (record.ended && !(await mayComeBack(record)))) {
      if (quiet) return record.view
      throw new FlowActionError(call, record.view)
    }
    if (closed) throw new ServiceClosedError(call)
    // Stored from here on: applied by whoever holds the lease, by this replica right after, or —
    // should this replica stop first — by a reconciler, which applies waiting flows' inboxes.
    const seq = await dep('appendEvent', () => store.appendEvent(id, event, owner))
    const nudge = () => {
      const d = drivers.get(id)
      if (d) d.drain()
      else applyParked(id).catch((err: unknown) => report(err, id))
    }
    await coord('notifyInbox', () => coordinator.notifyInbox(id)).catch((err: unknown) => report(err, id))
    nudge()
    return waitFor(id, (c) => c.appliedSeq >= seq, Math.max(4 * depTimeout, 2 * leaseMs), nudge)
  }

  /** An ended flow may come back (RETRY, RESTART) only while the user has no other unfinished flow. */
  async function mayComeBack(record: FlowRecord): Promise<boolean> {
    const latest = await dep('findByUser', () => store.findByUser(record.userType, record.userId))
    return !latest || latest.id === record.id || latest.ended
  }

  /** Whether the flow's stored state accepts the event (the chart decides). */
  function accepts(record: FlowRecord, event: HostEvent): boolean {
    const restored = restoreFlow(record.flow, record.userId, record.userType)
    if ('rejected' in restored) return false
    return createActor(applyMachine, { input: { userId: record.userId, userType: record.userType }, snapshot: restored.snapshot as never }).getSnapshot().can(event)
  }

  async function startFlow(o: StartOptions): Promise<FlowView> {
    if (!o || typeof o !== 'object') throw new TypeError('start: options are required')
    const input: IdentificationInput = { userId: o.userId, userType: o.userType, ...shared, ...(o.initiate && { initiate: o.initiate }) }
    resolveInput(input) // TypeError naming the field
    if (o.restart !== undefined && typeof o.restart !== 'boolean') throw new TypeError('start: restart must be a boolean')
    await open('start')
    for (let attempt = 0; attempt < 3; attempt++) {
      const previous = await dep('findByUser', () => store.findByUser(o.userType, o.userId))
      if (previous && !previous.ended) {
        if (!o.restart) return waitFor(previous.id, pastInitiating, initiateWaitMs)
        await act('start', previous.id, { type: 'CANCEL' }, true)
      }
      const id = globalThis.crypto.randomUUID()
      const host = createFlowHost({ machine: applyMachine, input, clock })
      host.start()
      // A user who had a flow before gets a fresh provider session.
      host.send({ type: previous ? 'RESTART' : 'START' })
      const s = host.getSnapshot()
      const view = viewOf(id, s, 1)
      const trace = telemetry ? (() => { try { return telemetry.flowCreated({ id, userType: o.userType }) } catch (err) { report(err); return undefined } })() : undefined
      const flow = withTrace(host.persisted(clock.now()), trace)
      host.stop()
      // The new flow comes with this replica's lease (a store that cannot do that: taken next).
      // From the create until its driver runs, the start counts as a claim: close() waits for it.
      if (closed) throw new ServiceClosedError('start')
      const takenAt = clock.now()
      const creating = (async () => {
        const made = await dep('create', () =>
          store.create(
            { id, userId: o.userId, userType: o.userType, state: view.state, working: true, ended: false, stretch: 1, flow, view },
            [{ kind: 'view', at: clock.now(), version: 1, view }],
            { owner, ttlMs: leaseMs },
          ),
        )
        if (!made.created) return { ...made, here: false }
        const { record } = made
        changed(record, undefined)
        const leased = record.lease?.owner === owner && record.lease.until > takenAt ? record.lease : undefined
        if (closed) {
          // close() began meanwhile: nothing is driven here after it. The flow goes to another
          // replica (or, alone, to the next process); this call answers that the service closed.
          if (leased) await dep('releaseLease', () => store.releaseLease(id, owner, leased.epoch)).catch((err: unknown) => report(err, id))
          if (coordinator.distributed) await coord('dispatch', () => coordinator.dispatch(id, 1)).catch((err: unknown) => report(err, id))
          throw new ServiceClosedError('start')
        }
        // This replica drives the new flow's first stretch itself (a job only when it cannot take
        // the lease: another replica's reconciler was quicker, and drives it).
        const signal = new AbortController().signal
        const driving = leased
          ? exclusive(id, () => driveLeased({ ...record, pending: false }, signal, takenAt, false))
          : begin({ flowId: id, stretch: 1 }, signal, false, false)
        const here = await driving.then(
          () => true,
          (err: unknown) => (report(err, id), false),
        )
        return { ...made, here }
      })()
      claims.add(creating)
      const made = await creating.finally(() => claims.delete(creating))
      if (!made.created) {
        if (o.restart && !made.record.ended) continue // another start won the race: cancel that one too
        return waitFor(made.record.id, pastInitiating, initiateWaitMs)
      }
      if (!made.here) await coord('dispatch', () => coordinator.dispatch(id, 1))
      return waitFor(id, pastInitiating, initiateWaitMs, () => {
        if (!drivers.has(id)) applyParked(id).catch((err: unknown) => report(err, id))
      })
    }
    throw new Error(`start: user ${o.userType}:${o.userId} keeps getting new flows from elsewhere; try again`)
  }

  // ——— start-up ———

  const ready = (async () => {
    await coord('start', () =>
      coordinator.start({
        run: (job, signal) => run(job, signal),
        inbox: (flowId) => {
          const d = drivers.get(flowId)
          if (d) d.drain()
          // Being taken here (a stretch about to be driven): its driver reads the inbox once it runs.
          else if (claiming.has(flowId)) recheck.add(flowId)
        },
        change: (c) => deliverLocal(c, true),
        wants: (flowId) => listeners.has(flowId) || waiters.has(flowId),
      }),
    )
    if (store.exclusive) {
      // One process: leases left by an earlier process of this store are ours to take over.
      const left = await dep('orphans', () => store.orphans(10_000, { includeHeld: true }))
      await Promise.all(
        left.map((o) =>
          (o.working === false ? applyParked(o.id, true) : begin({ flowId: o.id, stretch: o.stretch }, new AbortController().signal, true, false)).catch((err: unknown) => report(err, o.id)),
        ),
      )
    }
    if (telemetry?.observeCounts) safe(() => telemetry.observeCounts!(() => dep('counts', () => store.counts())))
    scheduleRenew()
    scheduleReconcile(store.exclusive ? leaseMs : 0)
  })()
  ready.catch((err: unknown) => report(err))

  function scheduleRenew() {
    renewTimer = clock.setTimeout(() => {
      void renewAll().finally(() => !closed && scheduleRenew())
    }, leaseMs / 3)
  }
  /**
   * Dispatches working flows whose lease ran out (a killed replica's, a lost job's), and applies
   * the stored events of waiting flows whose receiver stopped before applying them.
   */
  function scheduleReconcile(delay: number) {
    reconcileTimer = clock.setTimeout(() => {
      void dep('orphans', () => store.orphans(1000))
        .then(async (list) => {
          for (const o of list) {
            if (drivers.has(o.id) || closed) continue
            // A waiting flow with events its receiver stored but did not apply (it stopped first): applied here.
            if (o.working === false) await applyParked(o.id).catch((err: unknown) => report(err, o.id))
            else await coord('dispatch', () => coordinator.dispatch(o.id, o.stretch))
          }
        })
        .catch((err: unknown) => report(err))
        .finally(() => !closed && scheduleReconcile(leaseMs / 8))
    }, delay)
  }

  /** Resolves once every driver is done, or after twice the dependency timeout (a hand-over and its last write). */
  async function handedOver(list: Driver[]): Promise<void> {
    await settles(Promise.all(list.map((d) => d.done)), 2 * depTimeout + 100)
  }

  return {
    ready,
    get running() {
      return drivers.size
    },
    replicaId: owner,
    start: startFlow,
    async redirect(id, o) {
      if (!o || (o.outcome !== 'success' && o.outcome !== 'fail')) throw new TypeError("redirect: outcome must be 'success' or 'fail'")
      const cb = o.bTrustAppCallBackId
      if (cb != null && typeof cb !== 'string') throw new TypeError('redirect: bTrustAppCallBackId must be a string')
      return act('redirect', id, { type: 'REDIRECT', outcome: o.outcome, ...(cb != null && cb !== '' && { bTrustAppCallBackId: cb.slice(0, 512) }) }, true)
    },
    async get(id) {
      await open('get')
      if (!isFlowId(id)) return undefined
      return (await dep('get', () => store.get(id.toLowerCase())))?.view
    },
    async findByUser(userType, userId) {
      await open('findByUser')
      return (await dep('findByUser', () => store.findByUser(userType, userId)))?.view
    },
    continue: (id) => act('continue', id, { type: 'CONTINUE' }),
    retry: (id) => act('retry', id, { type: 'RETRY' }),
    async restart(id) {
      const view = await act('restart', id, { type: 'RESTART' })
      return pastInitiating({ id: view.id, version: view.version, appliedSeq: 0, view }) ? view : waitFor(view.id, pastInitiating, initiateWaitMs)
    },
    cancel: (id) => act('cancel', id, { type: 'CANCEL' }),
    async history(id) {
      await open('history')
      if (!isFlowId(id)) throw new FlowNotFoundError(`No identification flow ${String(id)}`)
      return dep('history', () => store.history(id.toLowerCase()))
    },
    subscribe(id, fn) {
      if (typeof fn !== 'function') throw new TypeError('subscribe: fn must be a function')
      const key = String(id).toLowerCase()
      const set = listeners.get(key) ?? new Set()
      set.add(fn)
      listeners.set(key, set)
      return () => {
        set.delete(fn)
        if (set.size === 0 && listeners.get(key) === set) {
          listeners.delete(key)
          heard.delete(key)
        }
      }
    },
    async health() {
      const result = { ok: true, store: store.kind, coordinator: coordinator.kind } as Awaited<ReturnType<IdentificationService['health']>>
      try {
        result.counts = await dep('counts', () => store.counts())
        await coord('ping', () => coordinator.ping())
      } catch (err) {
        result.ok = false
        result.error = err instanceof Error ? err.message : String(err)
      }
      return result
    },
    async close() {
      if (closed) return
      closed = true
      clock.clearTimeout(renewTimer)
      clock.clearTimeout(reconcileTimer)
      await ready.catch(() => {})
      // Events being applied here (a lease taken, the write on its way) are stored first.
      await settles(Promise.allSettled([...claims]), 2 * depTimeout + 100)
      // Each driver hands its flow over: a request on its way is answered and written first (at
      // most dependencyTimeoutMs), then the lease is given back. The flows driven here outside a
      // job go first, while the coordinator can still announce their last change; then the
      // coordinator aborts the stretches it runs, waits for them and hands them back.
      const own = [...drivers.values()].filter((d) => !d.job)
      for (const d of own) d.stop('closed')
      await handedOver(own)
      // Their stretches go to the queue, so that another replica goes on with them now rather
      // than at its next reconcile (one that was lost meanwhile is driven elsewhere already: its
      // job finds the lease held and ends).
      if (coordinator.distributed) {
        const handed = own.filter((d) => d.handedBack())
        await settles(Promise.allSettled(handed.map((d) => coord('dispatch', () => coordinator.dispatch(d.id, d.record.stretch)).catch((err: unknown) => report(err, d.id)))), depTimeout + 100)
      }
      await coordinator.close().catch((err: unknown) => report(err))
      const rest = [...drivers.values()]
      for (const d of rest) d.stop('closed')
      await handedOver(rest)
    },
  }
}

/** Waits `ms` on real time unless `signal` aborts first; resolves whether the wait ran out. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false)
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve(true)
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      resolve(false)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** The envelope with the flow's trace context kept (every write carries it on). */
const withTrace = (flow: PersistedFlow, trace: string | undefined): PersistedFlow => (trace === undefined ? flow : { ...flow, trace })

function positive(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt
  if (!Number.isFinite(v) || v <= 0) throw new TypeError(`createIdentificationService: ${name} must be a positive number (got ${String(v)})`)
  return v
}
