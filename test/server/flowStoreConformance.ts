/**
 * What every FlowStore must do, as a suite each implementation runs (memory, SQLite,
 * PostgreSQL): versioned compare-and-set writes, leases with epochs and fencing, one
 * unfinished flow per user enforced by the store, inbox order, bounded history, orphans, counts.
 */
import { describe, expect, it } from 'vitest'
import { UnfinishedFlowExistsError } from '../../src/adapters/server/errors.js'
import { HISTORY_LIMIT, type FlowStore, type FlowView, type FlowWrite, type NewFlow } from '../../src/adapters/server/types.js'
import { wrapSnapshot } from '../../src/machine/persistence.js'

/** A store under test, with a clock the suite can move (epoch ms). */
export interface StoreUnderTest {
  store: FlowStore
  /** Moves the store's clock forward (a store on real time may sleep instead). */
  advance(ms: number): Promise<void>
  close(): Promise<void>
}

let n = 0
const uuid = () => {
  n++
  const hex = (n + Math.floor(Math.random() * 1e9)).toString(16).padStart(12, '0').slice(-12)
  return `00000000-0000-4000-8000-${hex}`
}

const view = (id: string, userId: number, state: FlowView['state'], version = 1): FlowView =>
  ({ id, userId, userType: 0, state, url: null, version, updatedAt: new Date(0).toISOString(), failure: state === 'failed' ? { reason: 'cancelled', retryable: false, message: 'x' } : null, result: state === 'finalized' ? { correlationId: 'c', individualId: 1 } : null }) as FlowView

export function newFlow(userId: number, state: FlowView['state'] = 'initiating', id = uuid()): NewFlow {
  const ended = state === 'finalized' || state === 'failed'
  return {
    id,
    userId,
    userType: 0,
    state,
    working: state === 'initiating' || state === 'pollingA' || state === 'pollingB' || state === 'phaseB',
    ended,
    stretch: 1,
    flow: wrapSnapshot({ status: 'active', value: state, context: { userId, userType: 0 } } as never, userId, 0, 0),
    view: view(id, userId, state),
  }
}

export function change(flow: NewFlow, state: FlowView['state'], patch: Partial<FlowWrite> = {}): FlowWrite {
  const f = newFlow(flow.userId, state, flow.id)
  return { state, working: f.working, ended: f.ended, stretch: flow.stretch, flow: f.flow, view: f.view, appliedSeq: 0, ...patch }
}

/** Runs the conformance suite against stores made by `make` (each test gets a fresh one). */
export function describeFlowStore(name: string, make: () => Promise<StoreUnderTest>) {
  describe(`FlowStore conformance: ${name}`, () => {
    const withStore = (fn: (t: StoreUnderTest) => Promise<void>) => async () => {
      const t = await make()
      try {
        await fn(t)
      } finally {
        await t.close()
      }
    }

    it('creates a flow, reads it back by id and by user, and keeps one unfinished flow per user', withStore(async ({ store }) => {
      const a = newFlow(101)
      const created = await store.create(a, [{ kind: 'view', at: 1, version: 1, view: a.view }])
      expect(created.created).toBe(true)
      expect(created.record).toMatchObject({ id: a.id, userId: 101, version: 1, appliedSeq: 0, lease: null, state: 'initiating', working: true, ended: false })
      expect((await store.get(a.id))?.view).toEqual(a.view)
      expect((await store.findByUser(0, 101))?.id).toBe(a.id)
      const b = newFlow(101)
      const second = await store.create(b)
      expect(second.created).toBe(false)
      expect(second.record.id).toBe(a.id)
      expect(await store.get(b.id)).toBeUndefined()
      expect(await store.get('00000000-0000-4000-8000-ffffffffffff')).toBeUndefined()
      expect(await store.findByUser(1, 101)).toBeUndefined()
    }))

    it('lets a user have a new flow once the old one ended; findByUser gives the newest', withStore(async ({ store, advance }) => {
      const a = newFlow(102)
      await store.create(a)
      expect(await store.write(a.id, 1, change(a, 'failed'))).toMatchObject({ version: 2, ended: true })
      await advance(5)
      const b = newFlow(102)
      expect((await store.create(b)).created).toBe(true)
      expect((await store.findByUser(0, 102))?.id).toBe(b.id)
      // The old flow cannot come back while the new one is unfinished.
      await expect(store.write(a.id, 2, change(a, 'initiating'))).rejects.toBeInstanceOf(UnfinishedFlowExistsError)
      expect((await store.get(a.id))?.version).toBe(2)
    }))

    it('concurrent creates for one user make exactly one flow', withStore(async ({ store }) => {
      const results = await Promise.all(Array.from({ length: 20 }, () => store.create(newFlow(103))))
      expect(results.filter((r) => r.created)).toHaveLength(1)
      expect(new Set(results.map((r) => r.record.id)).size).toBe(1)
    }))

    it('writes are compare-and-set on the version', withStore(async ({ store }) => {
      const a = newFlow(104)
      await store.create(a)
      const w = change(a, 'identifying')
      expect(await store.write(a.id, 1, w)).toMatchObject({ version: 2, state: 'identifying', working: false })
      expect(await store.write(a.id, 1, change(a, 'failed'))).toBeNull()
      expect((await store.get(a.id))?.state).toBe('identifying')
      const both = await Promise.all([store.write(a.id, 2, change(a, 'pollingA')), store.write(a.id, 2, change(a, 'failed'))])
      expect(both.filter((r) => r !== null)).toHaveLength(1)
      expect((await store.get(a.id))?.version).toBe(3)
      expect(await store.write('00000000-0000-4000-8000-fffffffffffe', 1, w)).toBeNull()
    }))

    it('leases: one owner at a time, epochs go up, writes are fenced, an expired lease can be taken', withStore(async ({ store, advance }) => {
      const a = newFlow(105)
      await store.create(a)
      const l1 = await store.acquireLease(a.id, 'r1', 1000)
      expect(l1?.lease).toMatchObject({ owner: 'r1', epoch: 1 })
      expect(await store.acquireLease(a.id, 'r2', 1000)).toBeNull()
      // The holder writes under its lease; another owner, or an old epoch, writes nothing.
      expect(await store.write(a.id, 1, change(a, 'pollingA'), { owner: 'r1', epoch: 1 })).toMatchObject({ version: 2 })
      expect(await store.write(a.id, 2, change(a, 'failed'), { owner: 'r2', epoch: 1 })).toBeNull()
      await advance(1500)
      const l2 = await store.acquireLease(a.id, 'r2', 1000)
      expect(l2?.lease).toMatchObject({ owner: 'r2', epoch: 2 })
      expect(await store.write(a.id, 2, change(a, 'failed'), { owner: 'r1', epoch: 1 })).toBeNull() // the paused replica overwrites nothing
      expect(await store.renewLeases('r1', [{ id: a.id, epoch: 1 }], 1000)).toEqual([])
      expect(await store.renewLeases('r2', [{ id: a.id, epoch: 2 }], 1000)).toEqual([{ id: a.id, pending: false }])
      await store.releaseLease(a.id, 'r1', 1) // not its lease: nothing happens
      expect(await store.acquireLease(a.id, 'r3', 1000)).toBeNull()
      await store.releaseLease(a.id, 'r2', 2)
      expect((await store.acquireLease(a.id, 'r3', 1000))?.lease).toMatchObject({ owner: 'r3', epoch: 3 })
      expect((await store.acquireLease(a.id, 'r4', 1000, { force: true }))?.lease).toMatchObject({ owner: 'r4', epoch: 4 })
    }))

    it('a fenced write with `release` gives the lease up in the same write; acquireLease tells whether events wait', withStore(async ({ store }) => {
      const a = newFlow(115)
      await store.create(a)
      const l1 = await store.acquireLease(a.id, 'r1', 60_000)
      expect(l1).toMatchObject({ lease: { owner: 'r1', epoch: 1 }, pending: false })
      // A writer that does not hold the lease releases nothing (and writes nothing).
      expect(await store.write(a.id, 1, change(a, 'identifying'), { owner: 'r2', epoch: 1, release: true })).toBeNull()
      expect(await store.acquireLease(a.id, 'r2', 60_000)).toBeNull()
      // The holder's last write of a stretch: written, and the lease is free at once.
      const w = await store.write(a.id, 1, change(a, 'identifying'), { owner: 'r1', epoch: 1, release: true })
      expect(w).toMatchObject({ version: 2, state: 'identifying', lease: { owner: 'r1', epoch: 1, until: 0 } })
      expect(await store.renewLeases('r1', [{ id: a.id, epoch: 1 }], 60_000)).toEqual([])
      const seq = await store.appendEvent(a.id, { type: 'REDIRECT', outcome: 'success' }, 'r2')
      const l2 = await store.acquireLease(a.id, 'r2', 60_000)
      expect(l2).toMatchObject({ lease: { owner: 'r2', epoch: 2 }, pending: true })
      // The old holder's late write is fenced; without `release` the lease stays.
      expect(await store.write(a.id, 2, change(a, 'failed'), { owner: 'r1', epoch: 1, release: true })).toBeNull()
      const w2 = await store.write(a.id, 2, change(a, 'pollingA', { appliedSeq: seq }), { owner: 'r2', epoch: 2 })
      expect(w2?.lease?.until).toBeGreaterThan(0)
      expect(await store.acquireLease(a.id, 'r3', 60_000)).toBeNull()
      await store.releaseLease(a.id, 'r2', 2)
      expect(await store.acquireLease(a.id, 'r3', 60_000)).toMatchObject({ lease: { owner: 'r3', epoch: 3 }, pending: false })
    }))

    it('create with `lease`: the new flow comes with its creator\'s lease (epoch 1), fenced and renewed like one acquired; no orphan; an existing flow comes back as it is', withStore(async ({ store, advance }) => {
      const a = newFlow(116)
      const { created, record } = await store.create(a, [], { owner: 'r1', ttlMs: 1000 })
      expect(created).toBe(true)
      expect(record.lease).toMatchObject({ owner: 'r1', epoch: 1 })
      expect(record.lease!.until).toBeGreaterThan(0)
      // Held: nobody else takes it, the reconciler does not see it, a write of another owner is fenced.
      expect(await store.acquireLease(a.id, 'r2', 5000)).toBeNull()
      expect((await store.orphans(100)).map((o) => o.id)).not.toContain(a.id)
      expect(await store.write(a.id, 1, change(a, 'identifying'), { owner: 'r2', epoch: 1 })).toBeNull()
      expect(await store.renewLeases('r1', [{ id: a.id, epoch: 1 }], 1000)).toEqual([{ id: a.id, pending: false }])
      // The same user again: the unfinished flow comes back, its lease untouched.
      const again = await store.create(newFlow(116), [], { owner: 'r2', ttlMs: 1000 })
      expect(again).toMatchObject({ created: false, record: { id: a.id, lease: { owner: 'r1', epoch: 1 } } })
      // Run out: the lease goes to the next taker with the next epoch.
      await advance(1500)
      expect((await store.orphans(100)).map((o) => o.id)).toContain(a.id)
      expect((await store.acquireLease(a.id, 'r2', 5000))?.lease).toMatchObject({ owner: 'r2', epoch: 2 })
      // Without `lease`, as before: no lease.
      const b = newFlow(117)
      expect((await store.create(b)).record.lease).toBeNull()
      expect((await store.orphans(100)).map((o) => o.id)).toContain(b.id)
    }))

    it('concurrent lease acquisitions: exactly one wins', withStore(async ({ store }) => {
      const a = newFlow(106)
      await store.create(a)
      const got = await Promise.all(Array.from({ length: 10 }, (_, i) => store.acquireLease(a.id, `r${i}`, 5000)))
      expect(got.filter((r) => r !== null)).toHaveLength(1)
    }))

    it('the inbox keeps events in order and tells a renewal that events wait', withStore(async ({ store }) => {
      const a = newFlow(107)
      await store.create(a)
      const s1 = await store.appendEvent(a.id, { type: 'REDIRECT', outcome: 'success' }, 'r1')
      const s2 = await store.appendEvent(a.id, { type: 'CANCEL' }, 'r2')
      expect(s2).toBeGreaterThan(s1)
      const all = await store.events(a.id, 0)
      expect(all.map((e) => [e.seq, e.event.type, e.receivedBy])).toEqual([[s1, 'REDIRECT', 'r1'], [s2, 'CANCEL', 'r2']])
      expect((await store.events(a.id, s1)).map((e) => e.seq)).toEqual([s2])
      await store.acquireLease(a.id, 'r1', 5000)
      expect(await store.renewLeases('r1', [{ id: a.id, epoch: 1 }], 5000)).toEqual([{ id: a.id, pending: true }])
      await store.write(a.id, 1, change(a, 'failed', { appliedSeq: s2 }), { owner: 'r1', epoch: 1 })
      expect(await store.renewLeases('r1', [{ id: a.id, epoch: 1 }], 5000)).toEqual([{ id: a.id, pending: false }])
      expect(await store.events(a.id, s2)).toEqual([])
      expect((await store.get(a.id))?.appliedSeq).toBe(s2)
    }))

    it('keeps a bounded history, oldest first', withStore(async ({ store }) => {
      const a = newFlow(108)
      await store.create(a, [{ kind: 'view', at: 0, version: 1, view: a.view }])
      let v = 1
      for (let i = 0; i < HISTORY_LIMIT + 20; i++) {
        const r = await store.write(a.id, v, change(a, 'pollingA', { history: [{ kind: 'event', at: i, event: 'CONTINUE', receivedBy: 'r', applied: true }] }))
        v = r!.version
      }
      const h = await store.history(a.id)
      expect(h).toHaveLength(HISTORY_LIMIT)
      expect(h.at(-1)).toMatchObject({ kind: 'event', at: HISTORY_LIMIT + 19 })
      expect(h[0]).toMatchObject({ at: 20 })
    }))

    it('lists orphans (working flows without a live lease) and counts flows', withStore(async ({ store, advance }) => {
      const working = newFlow(109, 'pollingA')
      const parked = newFlow(110, 'identifying')
      const done = newFlow(111, 'finalized')
      const held = newFlow(112, 'pollingB')
      for (const f of [working, parked, done, held]) await store.create(f)
      await store.acquireLease(held.id, 'r1', 1000)
      const ids = (await store.orphans(100)).map((o) => o.id)
      expect(ids).toContain(working.id)
      expect(ids).not.toContain(parked.id)
      expect(ids).not.toContain(done.id)
      expect(ids).not.toContain(held.id)
      expect((await store.orphans(100, { includeHeld: true })).map((o) => o.id)).toContain(held.id)
      await advance(1500)
      expect((await store.orphans(100)).map((o) => o.id)).toContain(held.id)
      expect(await store.orphans(100)).toContainEqual({ id: working.id, stretch: 1, working: true })
      const c = await store.counts()
      expect(c.working).toBeGreaterThanOrEqual(2)
      expect(c.parked).toBeGreaterThanOrEqual(1)
      expect(c.ended).toBeGreaterThanOrEqual(1)
    }))

    it('lists a waiting or ended flow among orphans while its inbox holds events not applied and nobody holds its lease (working: false)', withStore(async ({ store, advance }) => {
      const parked = newFlow(118, 'identifying')
      const ended = newFlow(119, 'failed')
      const quiet = newFlow(120, 'signing')
      for (const f of [parked, ended, quiet]) await store.create(f)
      const seq = await store.appendEvent(parked.id, { type: 'REDIRECT', outcome: 'success' }, 'r9')
      await store.appendEvent(ended.id, { type: 'RETRY' }, 'r9')
      const listed = await store.orphans(100)
      expect(listed).toContainEqual({ id: parked.id, stretch: 1, working: false })
      expect(listed).toContainEqual({ id: ended.id, stretch: 1, working: false })
      expect(listed.map((o) => o.id)).not.toContain(quiet.id)
      // Held (someone applies it): not listed, unless includeHeld; listed again once the lease ran out.
      const l = await store.acquireLease(parked.id, 'r1', 1000)
      expect((await store.orphans(100)).map((o) => o.id)).not.toContain(parked.id)
      expect((await store.orphans(100, { includeHeld: true })).map((o) => o.id)).toContain(parked.id)
      await advance(1500)
      expect((await store.orphans(100)).map((o) => o.id)).toContain(parked.id)
      // Applied: not listed any more.
      const l2 = await store.acquireLease(parked.id, 'r2', 1000)
      expect(l2?.lease?.epoch).toBe(l!.lease!.epoch + 1)
      await store.write(parked.id, 1, change(parked, 'pollingA', { appliedSeq: seq }), { owner: 'r2', epoch: l2!.lease!.epoch, release: true })
      const after = await store.orphans(100)
      // Working now, lease free: listed as a working flow.
      expect(after).toContainEqual({ id: parked.id, stretch: 1, working: true })
      await store.write(parked.id, 2, change(parked, 'signing', { appliedSeq: seq }))
      expect((await store.orphans(100)).map((o) => o.id)).not.toContain(parked.id)
    }))

    it('stored values are copies: changing what came back changes nothing stored', withStore(async ({ store }) => {
      const a = newFlow(113)
      const { record } = await store.create(a)
      ;(record.view as { state: string }).state = 'finalized'
      expect((await store.get(a.id))?.view.state).toBe('initiating')
    }))

    it('listFlows (where the store has it): by state, failure reason, user and age, newest change first', withStore(async ({ store, advance }) => {
      if (!store.listFlows) return
      const a = newFlow(130, 'pollingA')
      const b = newFlow(131, 'failed')
      const c = newFlow(132, 'identifying')
      for (const f of [a, b, c]) {
        await store.create(f)
        await advance(10)
      }
      await store.write(c.id, 1, change(c, 'signing'))
      const all = await store.listFlows({})
      expect(all.map((r) => r.id).slice(0, 3)).toEqual([c.id, b.id, a.id])
      expect((await store.listFlows({ state: 'pollingA' })).map((r) => r.id)).toEqual([a.id])
      expect((await store.listFlows({ reason: 'cancelled' })).map((r) => r.id)).toEqual([b.id])
      expect((await store.listFlows({ userType: 0, userId: 132 })).map((r) => r.id)).toEqual([c.id])
      expect((await store.listFlows({ limit: 1 })).length).toBe(1)
      const latest = all[0]!.updatedAt
      expect((await store.listFlows({ updatedBefore: latest })).map((r) => r.id)).not.toContain(c.id)
    }))
  })
}
