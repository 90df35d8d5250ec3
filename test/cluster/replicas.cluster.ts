/**
 * Replicas as separate processes on one PostgreSQL database and one Redis prefix, all on
 * loopback: the invariants of DESIGN "Server: one process or many replicas", each tested.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { call, startCluster, waitUntil, type Cluster, type Replica } from './fixtures/cluster.js'

let cluster: Cluster | undefined
afterEach(async () => {
  await cluster?.close()
  cluster = undefined
})

const view = (r: Replica, id: string) => call(r.base, `/${id}`).then((x) => x.json)
const other = (c: Cluster, not: Replica, k = 1) => c.replicas[(c.replicas.indexOf(not) + k) % c.replicas.length]!

/** The simulated user finishes a step at the provider, and the browser comes back to another replica. */
async function userFinishes(c: Cluster, r: Replica, id: string, userId: number, step: 'identification' | 'signing') {
  c.sim.sim.act(userId, step, 'success')
  const res = await call(r.base, `/${id}/success`)
  expect(res.status).toBe(303)
}

describe('a cluster of replicas', () => {
  it('one flow: started on A, redirects on B and C, finalized once; SSE on C saw every state in order', async () => {
    cluster = await startCluster({ replicas: 3 })
    const [a, b, c] = cluster.replicas as [Replica, Replica, Replica]
    const started = await call(a.base, '', { body: { userId: 501, userType: 0 } })
    expect(started.status).toBe(201)
    expect(started.json.state).toBe('identifying')
    const id = started.json.id
    const sse = fetch(`${c.base}/${id}/events`).then((r) => r.text())
    await userFinishes(cluster, b, id, 501, 'identification')
    await waitUntil('signing', () => view(c, id), (v) => v.state === 'signing')
    await userFinishes(cluster, c, id, 501, 'signing')
    const done = await waitUntil('finalized', () => view(b, id), (v) => v.state === 'finalized')
    expect(done.result).toMatchObject({ individualId: expect.any(Number) })
    const text = await sse
    const states = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!).state)
    expect(states).toEqual(['identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB', 'finalized'])
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))
    expect([...ids].sort((x, y) => x - y)).toEqual(ids)
    const finalizedBy = cluster.replicas.flatMap((r) => r.finalized.filter((f) => f === id))
    await waitUntil('onFinalized', async () => cluster!.replicas.flatMap((r) => r.finalized.filter((f) => f === id)).length, (n) => n >= 1)
    expect(finalizedBy.length).toBeLessThanOrEqual(1)
    expect(cluster.sim.overlaps).toBe(0)
    expect(cluster.sim.log.filter((l) => l.userId === 501 && l.endpoint === 'initiate')).toHaveLength(1)
  })

  it('50 concurrent start() for one user across 3 replicas: one flow, one initiate', async () => {
    cluster = await startCluster({ replicas: 3 })
    const rs = cluster.replicas
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => call(rs[i % 3]!.base, '', { body: { userId: 502, userType: 0 } })))
    expect(results.map((r) => r.status).every((s) => s === 201)).toBe(true)
    expect(new Set(results.map((r) => r.json.id)).size).toBe(1)
    expect(results.every((r) => r.json.state === 'identifying')).toBe(true)
    expect(cluster.sim.log.filter((l) => l.userId === 502 && l.endpoint === 'initiate')).toHaveLength(1)
  })

  it('cancel through C while A polls: polling stops within one interval, and the flow stays cancelled', async () => {
    cluster = await startCluster({ replicas: 3, env: { INTERVAL_MS: '300' } })
    const [a, b, c] = cluster.replicas as [Replica, Replica, Replica]
    cluster.sim.sim.setBehaviour(503, { phaseA: 'timeout' }) // PROCESSING for ever
    const { json } = await call(a.base, '', { body: { userId: 503, userType: 0 } })
    await userFinishes(cluster, b, json.id, 503, 'identification')
    const polls = () => cluster!.sim.log.filter((l) => l.userId === 503 && l.endpoint === 'status').length
    await waitUntil('polling', async () => polls(), (n) => n >= 3)
    const cancelled = await call(c.base, `/${json.id}/cancel`, { method: 'POST' })
    expect(cancelled.status).toBe(200)
    expect(cancelled.json.failure).toMatchObject({ reason: 'cancelled' })
    const at = polls()
    await new Promise((r) => setTimeout(r, 1500))
    expect(polls()).toBeLessThanOrEqual(at + 1) // one request may have been on its way
    expect((await view(a, json.id)).state).toBe('failed')
    expect((await view(b, json.id)).failure).toMatchObject({ reason: 'cancelled' })
  })
})
