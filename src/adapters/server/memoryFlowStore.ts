import type { HostEvent } from '../../machine/events.js'
import type { UserType } from '../../machine/types.js'
import {
  HISTORY_LIMIT,
  type FlowCounts,
  type FlowHistoryEntry,
  type FlowRecord,
  type FlowStore,
  type FlowWrite,
  type InboxEntry,
  type NewFlow,
} from './types.js'
import { UnfinishedFlowExistsError } from './errors.js'

/** Options of {@link createMemoryFlowStore}. */
export interface MemoryFlowStoreOptions {
  /** The store's clock for leases and times (epoch ms). @default Date.now */
  now?: () => number
}

const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T

/**
 * A {@link FlowStore} in this process's memory: for tests, demos and a single process that may
 * lose its flows on exit. Records are kept as copies, so a caller can never change a stored
 * flow through a reference it holds.
 *
 * @example
 * const service = createIdentificationService({ api, store: createMemoryFlowStore() })
 */
export function createMemoryFlowStore(options: MemoryFlowStoreOptions = {}): FlowStore & {
  /** Every flow id, for tests. */
  ids(): string[]
} {
  const now = options.now ?? Date.now
  const flows = new Map<string, FlowRecord>()
  const inbox = new Map<string, InboxEntry[]>()
  const histories = new Map<string, FlowHistoryEntry[]>()
  let seq = 0

  const addHistory = (id: string, entries: FlowHistoryEntry[] | undefined) => {
    if (!entries?.length) return
    const h = histories.get(id) ?? []
    h.push(...copy(entries))
    if (h.length > HISTORY_LIMIT) h.splice(0, h.length - HISTORY_LIMIT)
    histories.set(id, h)
  }
  const unfinished = (userType: UserType, userId: number) =>
    [...flows.values()].find((r) => r.userType === userType && r.userId === userId && !r.ended)
  const held = (r: FlowRecord, t: number) => r.lease !== null && r.lease.until > t

  return {
    exclusive: true,
    kind: 'memory',
    async create(flow: NewFlow, history) {
      const existing = unfinished(flow.userType, flow.userId)
      if (existing) return { created: false, record: copy(existing) }
      if (flows.has(flow.id)) throw new Error(`memory flow store: flow ${flow.id} exists`)
      const t = now()
      const record: FlowRecord = { ...copy(flow), version: 1, appliedSeq: 0, lease: null, createdAt: t, updatedAt: t }
      flows.set(flow.id, record)
      addHistory(flow.id, history)
      return { created: true, record: copy(record) }
    },
    async get(id) {
      const r = flows.get(id)
      return r && copy(r)
    },
    async findByUser(userType, userId) {
      let latest: FlowRecord | undefined
      for (const r of flows.values()) {
        if (r.userType === userType && r.userId === userId && (!latest || r.createdAt >= latest.createdAt)) latest = r
      }
      return latest && copy(latest)
    },
    async write(id, expectedVersion, changes: FlowWrite, fence) {
      const r = flows.get(id)
      if (!r || r.version !== expectedVersion) return null
      if (fence && (r.lease?.owner !== fence.owner || r.lease.epoch !== fence.epoch)) return null
      if (!changes.ended && r.ended) {
        // A flow that ended and comes back (RETRY, RESTART) is the user's unfinished one again.
        const other = unfinished(r.userType, r.userId)
        if (other && other.id !== id) throw new UnfinishedFlowExistsError(r.userType, r.userId, other.id)
      }
      const { history, ...rest } = copy(changes)
      const next: FlowRecord = { ...r, ...rest, version: r.version + 1, updatedAt: now() }
      flows.set(id, next)
      addHistory(id, history)
      // Applied events are in the history now; the inbox keeps only what is still to apply.
      const pending = inbox.get(id)
      if (pending) inbox.set(id, pending.filter((e) => e.seq > next.appliedSeq))
      return copy(next)
    },
    async acquireLease(id, owner, ttlMs, o) {
      const r = flows.get(id)
      if (!r) return null
      const t = now()
      if (!o?.force && held(r, t) && r.lease!.owner !== owner) return null
      r.lease = { owner, epoch: (r.lease?.epoch ?? 0) + 1, until: t + ttlMs }
      return copy(r)
    },
    async renewLeases(owner, leases, ttlMs) {
      const t = now()
      const out: { id: string; pending: boolean }[] = []
      for (const { id, epoch } of leases) {
        const r = flows.get(id)
        if (!r || r.lease?.owner !== owner || r.lease.epoch !== epoch || r.lease.until <= t) continue
        r.lease.until = t + ttlMs
        out.push({ id, pending: (inbox.get(id) ?? []).some((e) => e.seq > r.appliedSeq) })
      }
      return out
    },
    async releaseLease(id, owner, epoch) {
      const r = flows.get(id)
      if (r?.lease?.owner === owner && r.lease.epoch === epoch) r.lease = { ...r.lease, until: 0 }
    },
    async appendEvent(id, event: HostEvent, receivedBy) {
      if (!flows.has(id)) throw new Error(`memory flow store: no flow ${id}`)
      const entry: InboxEntry = { seq: ++seq, event: copy(event), receivedBy, at: now() }
      const list = inbox.get(id) ?? []
      list.push(entry)
      inbox.set(id, list)
      return entry.seq
    },
    async events(id, afterSeq) {
      return copy((inbox.get(id) ?? []).filter((e) => e.seq > afterSeq))
    },
    async orphans(limit, o) {
      const t = now()
      return [...flows.values()]
        .filter((r) => r.working && (o?.includeHeld || !held(r, t)))
        .sort((a, b) => a.updatedAt - b.updatedAt)
        .slice(0, limit)
        .map((r) => ({ id: r.id, stretch: r.stretch }))
    },
    async history(id) {
      return copy(histories.get(id) ?? [])
    },
    async counts(): Promise<FlowCounts> {
      const c = { working: 0, parked: 0, ended: 0 }
      for (const r of flows.values()) c[r.ended ? 'ended' : r.working ? 'working' : 'parked']++
      return c
    },
    ids: () => [...flows.keys()],
  }
}
