import type { HostEvent } from '../../machine/events.js'
import type { PersistedFlow } from '../../machine/persistence.js'
import type { Failure, IdentificationResult, IdentificationState, UserType } from '../../machine/types.js'

/** The chart's top-level states, as a view names them. */
export type FlowState = IdentificationState

interface FlowViewBase {
  /** The flow id (a UUID, lower case). */
  id: string
  userId: number
  userType: UserType
  /** The URL the user must open now (`identifying`: ID capture; `phaseA`, `signing`: signing), or `null`. */
  url: string | null
  /** Bumped by every stored change of the flow; the SSE event id. */
  version: number
  /** When the flow last changed (ISO 8601). */
  updatedAt: string
}

/**
 * A flow as the backend shows it: plain JSON, safe to send to the browser. A discriminated
 * union on `state`, so that a `switch` over it is checked for completeness.
 */
export type FlowView =
  | (FlowViewBase & { state: 'finalized'; result: IdentificationResult; failure: null })
  | (FlowViewBase & { state: 'failed'; failure: Failure; result: null })
  | (FlowViewBase & { state: Exclude<FlowState, 'finalized' | 'failed'>; failure: null; result: null })

/** Who drives a flow now: a replica (`owner`), fenced by `epoch`, until `until` (epoch ms of the store's clock). */
export interface FlowLease {
  owner: string
  /** Bumped by every acquisition: a write that names an older epoch is refused. */
  epoch: number
  until: number
}

/** A flow as a {@link FlowStore} keeps it. Plain JSON. */
export interface FlowRecord {
  id: string
  userId: number
  userType: UserType
  /** Bumped by every write; writes are compare-and-set on it. */
  version: number
  /** The chart's top-level state. */
  state: FlowState
  /** The flow has work for a replica (chart tag `working`): initiate, polling or finalize. */
  working: boolean
  /** `finalized` or `failed` (tag `ended`): not the user's unfinished flow any more. */
  ended: boolean
  /** Counts the working stretches of the flow: a stretch is queued once (the BullMQ job id is `${id}.${stretch}`). */
  stretch: number
  /** The persisted chart snapshot, in its envelope. */
  flow: PersistedFlow
  /** The view. */
  view: FlowView
  /** The last inbox sequence number applied to the flow. */
  appliedSeq: number
  /** The lease, or `null` when no replica holds one. */
  lease: FlowLease | null
  /** Epoch ms. */
  createdAt: number
  /** Epoch ms. */
  updatedAt: number
}

/** What a write changes. */
export interface FlowWrite {
  state: FlowState
  working: boolean
  ended: boolean
  stretch: number
  flow: PersistedFlow
  view: FlowView
  appliedSeq: number
  /** Entries appended to the flow's history (the store keeps the most recent ones). */
  history?: FlowHistoryEntry[]
}

/** The fence of a {@link FlowStore.write}: the lease the writer holds. */
export interface WriteFence {
  owner: string
  epoch: number
  /** Give the lease up in the same write (the stretch's last one). A store may ignore it. */
  release?: boolean
}

/** A flow whose lease was just taken ({@link FlowStore.acquireLease}). */
export interface LeasedFlowRecord extends FlowRecord {
  /**
   * Whether the inbox holds events after `appliedSeq`, read in the same round trip. A store that
   * leaves it out makes the service read the inbox ({@link FlowStore.events}) every time.
   */
  pending?: boolean
}

/** What a new flow starts with. */
export type NewFlow = Omit<FlowRecord, 'version' | 'lease' | 'createdAt' | 'updatedAt' | 'appliedSeq'>

/** A host event waiting in a flow's inbox (applied once, in `seq` order, by whoever drives the flow). */
export interface InboxEntry {
  seq: number
  event: HostEvent
  /** The replica that received it. */
  receivedBy: string
  /** Epoch ms. */
  at: number
}

/** One line of a flow's history: a view the flow showed (for SSE replay), a host event, a provider request. */
export type FlowHistoryEntry =
  | { kind: 'view'; at: number; version: number; view: FlowView }
  | { kind: 'event'; at: number; event: HostEvent['type']; receivedBy: string; applied: boolean }
  | { kind: 'request'; at: number; operation: 'initiate' | 'status' | 'finalize'; httpStatus?: number; outcome: string; providerStatus?: string; durationMs: number }

/** Which flows {@link FlowStore.listFlows} gives. Every field narrows; none: the latest flows. */
export interface FlowListFilter {
  state?: FlowState
  /** The failure's reason (flows in `failed`). */
  reason?: string
  userType?: UserType
  userId?: number
  /** Only flows whose last change is older than this (epoch ms): the stuck ones. */
  updatedBefore?: number
  /** @default 50 */
  limit?: number
}

/** The flows of a store, counted. */
export interface FlowCounts {
  /** Flows with work for a replica. */
  working: number
  /** Flows waiting for a person. */
  parked: number
  /** Finalized or failed. */
  ended: number
}

/**
 * Where the identification service keeps flows: each flow a versioned record with a lease, the
 * user → flow index ("one unfinished flow per user", enforced by the store), each flow's inbox
 * of host events and its recent history. Memory, SQLite (one process) and PostgreSQL (many
 * replicas) implement it; every method may reject when the store is unreachable.
 */
export interface FlowStore {
  /**
   * Creates a flow, unless the user has an unfinished one: then that one comes back (`created: false`).
   * With `lease`, a created flow comes with that owner's lease (epoch 1, for `ttlMs`), so that its
   * creator drives it without taking the lease in a second round trip. Optional for a store: one
   * that creates the flow without a lease makes the service call `acquireLease`.
   */
  create(flow: NewFlow, history?: FlowHistoryEntry[], lease?: { owner: string; ttlMs: number }): Promise<{ created: boolean; record: FlowRecord }>
  /** A flow by id. */
  get(id: string): Promise<FlowRecord | undefined>
  /** The user's most recent flow. */
  findByUser(userType: UserType, userId: number): Promise<FlowRecord | undefined>
  /**
   * Compare-and-set: writes when the stored version is `expectedVersion` and, with `fence`, the
   * stored lease is that owner's and epoch's. Returns the new record, or `null` (nothing written).
   * With `fence.release`, the same write gives the lease up, as {@link FlowStore.releaseLease}
   * would (the record comes back with `lease.until` 0): one round trip instead of two for a
   * stretch's last write. Optional for a store: one that keeps the lease makes the service call
   * `releaseLease` after the write.
   */
  write(id: string, expectedVersion: number, changes: FlowWrite, fence?: WriteFence): Promise<FlowRecord | null>
  /**
   * Takes the flow's lease for `ttlMs` when it is free or has expired (`force`: whatever it is;
   * for a store that serves one process, on start). The epoch goes up by one.
   * @returns the record with the new lease (and, optionally, whether its inbox has events to
   *   apply: `pending`), or `null` when another owner holds it
   */
  acquireLease(id: string, owner: string, ttlMs: number, options?: { force?: boolean }): Promise<LeasedFlowRecord | null>
  /** Extends the leases `owner` holds (with these epochs); returns the ids still held, and whether their inbox has events to apply. */
  renewLeases(owner: string, leases: { id: string; epoch: number }[], ttlMs: number): Promise<{ id: string; pending: boolean }[]>
  /** Gives a lease up (no error when it is not held any more). */
  releaseLease(id: string, owner: string, epoch: number): Promise<void>
  /** Appends a host event to the flow's inbox; returns its sequence number. */
  appendEvent(id: string, event: HostEvent, receivedBy: string): Promise<number>
  /** The inbox events after `afterSeq`, in order. */
  events(id: string, afterSeq: number): Promise<InboxEntry[]>
  /**
   * Flows with work whose lease is free or expired, oldest first: working flows, and flows that
   * wait (or ended) with host events in their inbox not applied yet (`working: false`; their
   * receiver stopped before it applied them). The reconciler queues the first and applies the
   * second. `includeHeld`: every flow with work (a store that serves one process, on start). A
   * store of one's own may leave `working` out: its flows are then queued, and the replica that
   * takes a waiting one applies its inbox. (One that lists working flows only, as stores did
   * before, leaves an event whose receiver stopped before applying it for the flow's next event.)
   */
  orphans(limit: number, options?: { includeHeld?: boolean }): Promise<{ id: string; stretch: number; working?: boolean }[]>
  /** The flow's recent history, oldest first (at most {@link HISTORY_LIMIT} entries). */
  history(id: string): Promise<FlowHistoryEntry[]>
  /** Counts of working, parked and ended flows. */
  counts(): Promise<FlowCounts>
  /** Flows that match a filter, most recently changed first (for support tools: `10npay-id flows list`). */
  listFlows?(filter?: FlowListFilter): Promise<FlowRecord[]>
  /**
   * The store serves one process (memory, SQLite): its leases can be taken over when the service
   * starts, and no coordinator is needed.
   */
  readonly exclusive: boolean
  /** What to call the store in errors and health answers, e.g. `PostgreSQL`. */
  readonly kind: string
  /** Releases connections (a pool passed in by the caller stays open). */
  close?(): Promise<void>
}

/** The handlers a {@link FlowCoordinator} calls on its replica. */
export interface CoordinatorHandlers {
  /** Runs one working stretch of a flow; resolves when it parks, ends or is given up. Abort `signal` to give up (a lost lock). */
  run(job: { flowId: string; stretch: number }, signal: AbortSignal): Promise<void>
  /** A host event was put in a flow's inbox (on any replica). */
  inbox(flowId: string): void
  /** A flow changed (on any replica). */
  change(change: FlowChange): void
  /**
   * Whether this replica listens to a flow's changes now (a subscriber, a waiting call). A
   * coordinator that can read a change's flow id before decoding it skips the others: every
   * replica receives every change, most of them of flows nobody on it listens to.
   */
  wants?(flowId: string): boolean
}

/** A committed change of a flow's view, as replicas tell each other. */
export interface FlowChange {
  id: string
  /** The record's version after the write. */
  version: number
  /** The last inbox event applied by then. */
  appliedSeq: number
  view: FlowView
}

/**
 * Dispatches the flows' working stretches and carries notifications between replicas. The
 * service's default runs everything in its own process; `createBullMQCoordinator` spreads the
 * work over replicas through Redis.
 */
export interface FlowCoordinator {
  /** `true` when several processes share the work (the store must not be `exclusive`). */
  readonly distributed: boolean
  /** What to call it in errors and health answers, e.g. `Redis`. */
  readonly kind: string
  /** Starts taking work and notifications for this replica. */
  start(handlers: CoordinatorHandlers): Promise<void>
  /**
   * Queues a flow's working stretch for whichever replica takes it, once: a stretch already
   * queued or running is not queued again. The service queues only stretches nobody drives (a
   * flow whose replica died or closed, or whose start could not take the lease); a replica that
   * starts a flow or wakes it with an event drives the stretch itself.
   */
  dispatch(flowId: string, stretch: number): Promise<void>
  /** Tells every replica that a flow's inbox has a new event. */
  notifyInbox(flowId: string): Promise<void>
  /** Tells every replica that a flow changed. */
  notifyChange(change: FlowChange): Promise<void>
  /** Resolves when the coordinator's backend answers (health). */
  ping(): Promise<void>
  /** Stops taking work; running stretches are aborted (their flows resume elsewhere). */
  close(): Promise<void>
}

/** How many history entries a store keeps per flow (the oldest go first). */
export const HISTORY_LIMIT = 200
