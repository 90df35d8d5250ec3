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

/** A stored flow: the fields the store looks at, and the rest as JSON text (parsed on read: copies for free). */
interface Stored {
  meta: Omit<FlowRecord, 'flow' | 'view'>
  body: string
}
const pack = (r: FlowRecord): Stored => {
  const { flow, view, ...meta } = r
  return { meta, body: JSON.stringify({ flow, view }) }
}
const unpack = (s: Stored): FlowRecord => ({ ...s.meta, ...(s.meta.lease && { lease: { ...s.meta.lease } }), ...(JSON.parse(s.body) as Pick<FlowRecord, 'flow' | 'view'>) })

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
  const flows = new Map<string, Stored>()
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
  /** user → the unfinished flow's id, and user → the newest flow's id (the indexes a database would keep). */
  const unfinishedByUser = new Map<string, string>()
  const newestByUser = new Map<string, string>()
  const userKey = (userType: UserType, userId: number) => `${userType}:${userId}`
  const unfinished = (userType: UserType, userId: number) => {
    const id = unfinishedByUser.get(userKey(userType, userId))
    return id === undefined ? undefined : flows.get(id)
  }
  const held = (r: Stored['meta'], t: number) => r.lease !== null && r.lease.until > t

  return {
    exclusive: true,
    kind: 'memory',
    async create(flow: NewFlow, history, lease) {
      const existing = unfinished(flow.userType, flow.userId)
      if (existing) return { created: false, record: unpack(existing) }
      if (flows.has(flow.id)) throw new Error(`memory flow store: flow ${flow.id} exists`)
      const t = now()
      const held = lease ? { owner: lease.owner, epoch: 1, until: t + lease.ttlMs } : null
      const stored = pack({ ...flow, version: 1, appliedSeq: 0, lease: held, createdAt: t, updatedAt: t })
      flows.set(flow.id, stored)
      newestByUser.set(userKey(flow.userType, flow.userId), flow.id)
      if (!stored.meta.ended) unfinishedByUser.set(userKey(flow.userType, flow.userId), flow.id)
      addHistory(flow.id, history)
      return { created: true, record: unpack(stored) }
    },
    async get(id) {
      const r = flows.get(id)
      return r && unpack(r)
    },
    async findByUser(userType, userId) {
      const id = newestByUser.get(userKey(userType, userId))
      const latest = id === undefined ? undefined : flows.get(id)
      return latest && unpack(latest)
    },
    async write(id, expectedVersion, changes: FlowWrite, fence) {
      const stored = flows.get(id)
      const r = stored?.meta
      if (!stored || !r || r.version !== expectedVersion) return null
      if (fence && (r.lease?.owner !== fence.owner || r.lease.epoch !== fence.epoch)) return null
      if (!changes.ended && r.ended) {
        // A flow that ended and comes back (RETRY, RESTART) is the user's unfinished one again.
        const other = unfinished(r.userType, r.userId)
        if (other && other.meta.id !== id) throw new UnfinishedFlowExistsError(r.userType, r.userId, other.meta.id)
      }
      const { history, flow, view, ...rest } = changes
      const next: Stored = {
        meta: { ...r, ...rest, version: r.version + 1, updatedAt: now(), ...(fence?.release && r.lease && { lease: { ...r.lease, until: 0 } }) },
        body: JSON.stringify({ flow, view }),
      }
      flows.set(id, next)
      const key = userKey(r.userType, r.userId)
      if (!next.meta.ended) unfinishedByUser.set(key, id)
      else if (unfinishedByUser.get(key) === id) unfinishedByUser.delete(key)
      addHistory(id, history)
      // Applied events are in the history now; the inbox keeps only what is still to apply.
      const pending = inbox.get(id)
      if (pending) inbox.set(id, pending.filter((e) => e.seq > next.meta.appliedSeq))
      return unpack(next)
    },
    async acquireLease(id, owner, ttlMs, o) {
      const stored = flows.get(id)
      if (!stored) return null
      const r = stored.meta
      const t = now()
      if (!o?.force && held(r, t) && r.lease!.owner !== owner) return null
      r.lease = { owner, epoch: (r.lease?.epoch ?? 0) + 1, until: t + ttlMs }
      return { ...unpack(stored), pending: (inbox.get(id) ?? []).some((e) => e.seq > r.appliedSeq) }
    },
    async renewLeases(owner, leases, ttlMs) {
      const t = now()
      const out: { id: string; pending: boolean }[] = []
      for (const { id, epoch } of leases) {
        const r = flows.get(id)?.meta
        if (!r || r.lease?.owner !== owner || r.lease.epoch !== epoch || r.lease.until <= t) continue
        r.lease.until = t + ttlMs
        out.push({ id, pending: (inbox.get(id) ?? []).some((e) => e.seq > r.appliedSeq) })
      }
      return out
    },
    async releaseLease(id, owner, epoch) {
      const r = flows.get(id)?.meta
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
        .map((f) => f.meta)
        .filter((r) => (r.working || (inbox.get(r.id) ?? []).some((e) => e.seq > r.appliedSeq)) && (o?.includeHeld || !held(r, t)))
        .sort((a, b) => a.updatedAt - b.updatedAt)
        .slice(0, limit)
        .map((r) => ({ id: r.id, stretch: r.stretch, working: r.working }))
    },
    async history(id) {
      return copy(histories.get(id) ?? [])
    },
    async counts(): Promise<FlowCounts> {
      const c = { working: 0, parked: 0, ended: 0 }
      for (const { meta: r } of flows.values()) c[r.ended ? 'ended' : r.working ? 'working' : 'parked']++
      return c
    },
    async listFlows(filter = {}) {
      return [...flows.values()]
        .filter(({ meta: r }) => {
          if (filter.state !== undefined && r.state !== filter.state) return false
          if (filter.userType !== undefined && r.userType !== filter.userType) return false
          if (filter.userId !== undefined && r.userId !== filter.userId) return false
          if (filter.updatedBefore !== undefined && r.updatedAt >= filter.updatedBefore) return false
          return true
        })
        .map(unpack)
        .filter((r) => filter.reason === undefined || (r.view.state === 'failed' && r.view.failure.reason === filter.reason))
        .sort((a, b) => b.updatedAt - a.updatedAt)
        .slice(0, filter.limit ?? 50)
    },
    ids: () => [...flows.keys()],
  }
}
