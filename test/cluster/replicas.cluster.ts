/**
 * Replicas as separate processes on one PostgreSQL database and one Redis prefix, all on
 * loopback: the invariants of DESIGN "Server: one process or many replicas", each tested.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { createPostgresFlowStore } from '../../src/adapters/postgres/index.js'
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

  it('a signing redirect on B and a cancel on C at once, for a flow that waits at signing: both answer, each is applied once, in one order', async () => {
    cluster = await startCluster({ replicas: 3 })
    const [a, b, c] = cluster.replicas as [Replica, Replica, Replica]
    const { json } = await call(a.base, '', { body: { userId: 504, userType: 0 } })
    await userFinishes(cluster, b, json.id, 504, 'identification')
    await waitUntil('signing', () => view(a, json.id), (v) => v.state === 'signing')
    cluster.sim.sim.act(504, 'signing', 'success')
    const [redirected, cancelled] = await Promise.all([call(b.base, `/${json.id}/success`), call(c.base, `/${json.id}/cancel`, { method: 'POST' })])
    expect(redirected.status).toBe(303) // a redirect always sends the browser on
    expect([200, 409]).toContain(cancelled.status)
    const end = await waitUntil('ended', () => view(a, json.id), (v) => v.state === 'failed' || v.state === 'finalized')
    // Each event is in the flow's history at most once (the capture redirect is the other
    // REDIRECT); a cancel that answered 200 is there (applied, or recorded as not applied when
    // finalize had answered).
    const history = (await call(a.base, `/${json.id}/history`)).json as { kind: string; event?: string }[]
    const hostEvents = history.filter((e) => e.kind === 'event' && (e.event === 'REDIRECT' || e.event === 'CANCEL')).map((e) => e.event)
    expect(hostEvents.filter((e) => e === 'REDIRECT').length).toBeLessThanOrEqual(2)
    expect(hostEvents.filter((e) => e === 'CANCEL').length).toBe(cancelled.status === 200 ? 1 : 0)
    if (cancelled.status === 409) {
      // The redirect came first and the flow finalized before the cancel could apply.
      expect(end.state).toBe('finalized')
    } else if (end.state === 'failed') {
      expect(end.failure).toMatchObject({ reason: 'cancelled' })
    }
    expect(cluster.sim.log.filter((l) => l.userId === 504 && l.endpoint === 'finalize').length).toBeLessThanOrEqual(1)
    expect(cluster.sim.overlaps).toBe(0)
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

describe('a cluster of replicas under failure', () => {
  it('a replica frozen (SIGSTOP) past its lock, then SIGCONT: it sends nothing more for a flow it lost, and overwrites nothing', async () => {
    cluster = await startCluster({ replicas: 2, env: { LOCK_MS: '2000', INTERVAL_MS: '200' } })
    const [a, b] = cluster.replicas as [Replica, Replica]
    cluster.sim.sim.setBehaviour(511, { phaseA: 'timeout' })
    const { json } = await call(a.base, '', { body: { userId: 511, userType: 0 } })
    await userFinishes(cluster, a, json.id, 511, 'identification')
    const polls = (name: string) => cluster!.sim.log.filter((l) => l.userId === 511 && l.replica === name && l.endpoint === 'status').length
    await waitUntil('a replica polls', async () => polls('A') + polls('B'), (n) => n >= 2)
    // Freeze whichever replica drives the flow; the other must take it over.
    const [x, y] = polls('A') > 0 ? [a, b] : [b, a]
    x.child.kill('SIGSTOP')
    const yBefore = polls(y.name)
    await waitUntil(`${y.name} takes the flow over`, async () => polls(y.name), (n) => n >= yBefore + 2, 30_000)
    const xBefore = polls(x.name)
    x.child.kill('SIGCONT')
    await new Promise((r) => setTimeout(r, 2500))
    expect(polls(x.name)).toBe(xBefore) // it found its lease gone before its next request
    expect(polls(y.name)).toBeGreaterThan(yBefore + 2) // the other goes on
    // The flow is the other replica's now, under a newer epoch.
    const row = await cluster.db.pool(1).query('SELECT lease_owner, lease_epoch FROM tenpay_identification.flows WHERE id = $1', [json.id])
    expect(row.rows[0]).toMatchObject({ lease_owner: y.name })
    expect(Number(row.rows[0].lease_epoch)).toBeGreaterThanOrEqual(3) // initiate, the frozen one's polling, the new owner's
    // The flow goes on under it to the next step.
    cluster.sim.sim.setBehaviour(511, {})
    await waitUntil('signing', () => view(b, json.id), (v) => v.state === 'signing')
    expect(cluster.sim.overlaps).toBe(0)
  })

  it('SSE on C while A drives; a reconnect with Last-Event-ID misses nothing', async () => {
    cluster = await startCluster({ replicas: 3 })
    const [a, b, c] = cluster.replicas as [Replica, Replica, Replica]
    const { json } = await call(a.base, '', { body: { userId: 512, userType: 0 } })
    const ac = new AbortController()
    const first = await fetch(`${c.base}/${json.id}/events`, { signal: ac.signal })
    const reader = first.body!.getReader()
    let text = ''
    const firstEvent = (async () => {
      while (!/^data: .*identifying/m.test(text)) text += new TextDecoder().decode((await reader.read()).value)
    })()
    await firstEvent
    ac.abort() // the client goes away…
    const lastId = Math.max(...[...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])))
    await userFinishes(cluster, b, json.id, 512, 'identification')
    await waitUntil('signing', () => view(a, json.id), (v) => v.state === 'signing')
    // …and comes back with what it saw last.
    const again = await (await fetch(`${c.base}/${json.id}/events`, { headers: { 'last-event-id': String(lastId) } })).body!.getReader()
    let rest = ''
    for (let i = 0; i < 50 && !/signing/.test(rest); i++) rest += new TextDecoder().decode((await again.read()).value)
    await again.cancel()
    const states = [...rest.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!).state)
    expect(states).toEqual(['pollingA', 'phaseA', 'signing'])
  })

  it('Redis flushed mid-run: the reconciler resumes every working flow', async () => {
    cluster = await startCluster({ replicas: 2, env: { LOCK_MS: '2000' } })
    const [a, b] = cluster.replicas as [Replica, Replica]
    const users = [521, 522, 523, 524, 525]
    for (const u of users) cluster.sim.sim.setBehaviour(u, { phaseA: 'timeout' })
    const flows = await Promise.all(users.map((u, i) => call((i % 2 ? a : b).base, '', { body: { userId: u, userType: 0 } })))
    for (const [i, f] of flows.entries()) await userFinishes(cluster, i % 2 ? b : a, f.json.id, users[i]!, 'identification')
    await waitUntil('every flow polls', async () => users.every((u) => cluster!.sim.log.some((l) => l.userId === u && l.endpoint === 'status')), (x) => x)
    expect(await cluster.flushRedis()).toBeGreaterThan(0)
    for (const u of users) cluster.sim.sim.setBehaviour(u, {})
    for (const f of flows) await waitUntil('signing after the flush', () => view(a, f.json.id), (v) => v.state === 'signing', 40_000)
    expect(cluster.sim.overlaps).toBe(0)
  })
})

describe('a cluster under load', () => {
  it('3 replicas, 500 flows, every redirect to another replica than the start, one replica SIGKILLed mid phase B and restarted: all finalize, no overlapping polls, one initiate per flow, identical finalize payloads', async () => {
    cluster = await startCluster({ replicas: 3, latencyMs: 20, env: { LOCK_MS: '3000', INTERVAL_MS: '400', PG_POOL: '20' } })
    const N = 500
    const users = Array.from({ length: N }, (_, i) => 10_000 + i)
    const rs = () => cluster!.replicas
    const flows = new Map<number, { id: string; home: Replica }>()
    // Starts, a few at a time per replica.
    for (let i = 0; i < N; i += 30) {
      await Promise.all(
        users.slice(i, i + 30).map(async (u, j) => {
          const home = rs()[(i + j) % 3]!
          const res = await call(home.base, '', { body: { userId: u, userType: 0 } })
          expect(res.status).toBe(201)
          flows.set(u, { id: res.json.id, home })
        }),
      )
    }
    const redirectAll = async (step: 'identification' | 'signing', k: number) => {
      const list = [...flows]
      for (let i = 0; i < list.length; i += 50) {
        await Promise.all(
          list.slice(i, i + 50).map(async ([u, f]) => {
            cluster!.sim.sim.act(u, step, 'success')
            const res = await call(other(cluster!, f.home, k).base, `/${f.id}/success`)
            expect(res.status).toBe(303)
          }),
        )
      }
    }
    const states = async () => {
      const counts: Record<string, number> = {}
      const list = [...flows.values()]
      for (let i = 0; i < list.length; i += 100) {
        const views = await Promise.all(list.slice(i, i + 100).map((f) => view(rs()[i % rs().length]!, f.id)))
        for (const v of views) counts[v.state] = (counts[v.state] ?? 0) + 1
      }
      return counts
    }
    await redirectAll('identification', 1)
    await waitUntil('every flow at signing', states, (c) => c['signing'] === N, 120_000, 1000)
    // The signing redirect goes to yet another replica; while phase B polls, one replica dies.
    await redirectAll('signing', 2)
    const victim = rs()[1]!
    await waitUntil('phase B polling', async () => cluster!.sim.log.filter((l) => l.endpoint === 'status' && l.replica === victim.name).length, (n) => n > 20, 60_000, 200)
    await cluster.kill(victim)
    await new Promise((r) => setTimeout(r, 1000))
    await cluster.start(`${victim.name}2`)
    const final = await waitUntil('every flow finalized', states, (c) => c['finalized'] === N, 180_000, 1000)
    expect(final).toEqual({ finalized: N })
    expect(cluster.sim.overlaps).toBe(0)
    const { log } = cluster.sim
    for (const u of users) {
      const mine = log.filter((l) => l.userId === u)
      // On failure: the user's requests as the provider saw them (endpoint, replica, ms after the
      // first, answer), the flow's history in the store, and what every replica reported.
      if (mine.filter((l) => l.endpoint === 'initiate').length !== 1) {
        const id = flows.get(u)!.id
        const store = createPostgresFlowStore({ connectionString: cluster!.db.url, migrate: false })
        const history = await store.history(id).finally(() => store.close())
        const requests = mine.map((l) => [l.endpoint, l.replica, l.at - mine[0]!.at, l.status])
        const reported = cluster!.all.map((r) => `${r.name}: ${r.stderr().split('\n').filter((l) => l.includes(id)).join('\n').slice(-3000)}`).join('\n')
        expect.fail(`user ${u}: ${JSON.stringify(requests)}\n${JSON.stringify(history)}\n${reported}`)
      }
      const payloads = new Set(mine.filter((l) => l.endpoint === 'finalize').map((l) => JSON.stringify(l.body)))
      expect(payloads.size).toBe(1)
    }
  }, 600_000)
})

describe('a cluster when PostgreSQL restarts', () => {
  it('calls fail fast with an error naming PostgreSQL while it is down, then everything goes on', async () => {
    cluster = await startCluster({ replicas: 2, env: { LOCK_MS: '3000', DEP_TIMEOUT_MS: '2000' } })
    const [a, b] = cluster.replicas as [Replica, Replica]
    const users = [531, 532, 533]
    for (const u of users) cluster.sim.sim.setBehaviour(u, { phaseA: 'timeout' })
    const flows = await Promise.all(users.map((u) => call(a.base, '', { body: { userId: u, userType: 0 } })))
    for (const [i, f] of flows.entries()) await userFinishes(cluster, b, f.json.id, users[i]!, 'identification')
    await waitUntil('polling', async () => users.every((u) => cluster!.sim.log.some((l) => l.userId === u && l.endpoint === 'status')), (x) => x)
    const version = readdirSync('/etc/postgresql')[0]!
    const ctl = (what: string) => execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', what], { stdio: 'pipe' })
    ctl('stop')
    try {
      const t0 = Date.now()
      const down = await call(a.base, '', { body: { userId: 534, userType: 0 } })
      expect(Date.now() - t0).toBeLessThan(5000)
      expect(down.status).toBe(503)
      expect(JSON.stringify(down.json)).toMatch(/PostgreSQL/)
      expect(JSON.stringify(down.json)).not.toMatch(/postgres:\/\//)
      const health = await call(b.base, '/health')
      expect(health.status).toBe(503)
    } finally {
      ctl('start')
    }
    // Back: the flows go on, new calls succeed.
    for (const u of users) cluster.sim.sim.setBehaviour(u, {})
    for (const f of flows) await waitUntil('signing after the restart', () => view(b, f.json.id), (v) => v?.state === 'signing', 60_000, 250)
    const again = await waitUntil('a new flow', () => call(a.base, '', { body: { userId: 534, userType: 0 } }), (r) => r.status === 201, 30_000, 500)
    expect(again.json.state).toBe('identifying')
    expect((await call(a.base, '/health')).status).toBe(200)
  })
})
