/**
 * The PostgreSQL FlowStore against a real PostgreSQL: the FlowStore conformance suite (on the
 * database's clock, with real sleeps), then what only a shared database shows: versioned
 * migrations from empty and from every earlier version, replicas migrating at once, one
 * unfinished flow per user under 50 concurrent creates, fencing across pools, a database that
 * is unreachable, hangs, cuts connections or comes back. One database per file
 * (`tenpay_<random>`, dropped at the end), one schema per test.
 */
import { inspect } from 'node:util'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createPostgresFlowStore, SCHEMA_VERSION, SchemaTooNewError, type PgPool, type PostgresFlowStore, type PostgresFlowStoreOptions } from '../../src/adapters/postgres/index.js'
import { MIGRATIONS, migratePostgresSchema, migrationLockKey } from '../../src/adapters/postgres/migrations.js'
import { DependencyError, UnfinishedFlowExistsError } from '../../src/adapters/server/errors.js'
import { HISTORY_LIMIT, type FlowStore } from '../../src/adapters/server/types.js'
import { change, describeFlowStore, newFlow } from '../server/flowStoreConformance.js'
import { closedPort, createTestDatabase, sleep, startTcpProxy, type TestDatabase } from './pgHelpers.js'

let db: TestDatabase
let admin: pg.Pool
let schemas = 0
const nextSchema = (tag = 's') => `${tag}_${process.pid}_${++schemas}`
const stores: PostgresFlowStore[] = []
const open = (options: Partial<PostgresFlowStoreOptions> & { schema: string }) => {
  const store = createPostgresFlowStore(options.pool ? options : { connectionString: db.url, ...options })
  stores.push(store)
  return store
}

beforeAll(async () => {
  db = await createTestDatabase()
  admin = db.pool(5)
})

// Each test's stores are closed after it: the server's connections are shared with other suites.
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close().catch(() => {})))
})

afterAll(async () => {
  await db?.drop()
})

/** Settles within `ms` or fails the test (nothing may hang). */
async function settles<T>(p: Promise<T>, ms: number): Promise<{ ok: true; value: T } | { ok: false; error: unknown; elapsed: number }> {
  const t0 = Date.now()
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms)
  })
  try {
    return { ok: true, value: await Promise.race([p, timeout]) }
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('did not settle')) throw error
    return { ok: false, error, elapsed: Date.now() - t0 }
  } finally {
    clearTimeout(timer)
  }
}

/** Every call of the FlowStore interface, for "every method rejects" checks. */
const everyMethod = (store: FlowStore): [string, () => Promise<unknown>][] => {
  const f = newFlow(1)
  return [
    ['create', () => store.create(f)],
    ['get', () => store.get(f.id)],
    ['findByUser', () => store.findByUser(0, 1)],
    ['write', () => store.write(f.id, 1, change(f, 'failed'))],
    ['acquireLease', () => store.acquireLease(f.id, 'r', 1000)],
    ['renewLeases', () => store.renewLeases('r', [{ id: f.id, epoch: 1 }], 1000)],
    ['releaseLease', () => store.releaseLease(f.id, 'r', 1)],
    ['appendEvent', () => store.appendEvent(f.id, { type: 'CANCEL' }, 'r')],
    ['events', () => store.events(f.id, 0)],
    ['orphans', () => store.orphans(10)],
    ['history', () => store.history(f.id)],
    ['counts', () => store.counts()],
  ]
}

// The shared suite, on the database's clock: `advance` sleeps for real (1.5 s twice in all).
describeFlowStore('PostgreSQL', async () => {
  const store = open({ schema: nextSchema('conf') })
  return { store, advance: sleep, close: () => store.close() }
})

describe('PostgreSQL flow store: migrations', () => {
  const tables = async (schema: string) =>
    (await admin.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1', [schema])).rows.map((r) => r.table_name)
  const versions = async (schema: string) =>
    (await admin.query<{ version: number }>(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`)).rows.map((r) => r.version)

  it('the history is real: versions 1, 2, 3 …, each with a description', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1))
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(3)
  })

  it('creates the schema from empty on first use, every migration recorded once', async () => {
    const schema = nextSchema('empty')
    const store = open({ schema })
    expect(await tables(schema)).toEqual([])
    expect(await store.get('00000000-0000-4000-8000-000000000000')).toBeUndefined()
    expect(await tables(schema)).toEqual(['flows', 'history', 'inbox', 'schema_migrations'])
    expect(await versions(schema)).toEqual(MIGRATIONS.map((m) => m.version))
    // A second store on the migrated schema changes nothing.
    await open({ schema }).ready()
    expect(await versions(schema)).toEqual(MIGRATIONS.map((m) => m.version))
  })

  /** Rows as a store at version `k` would have written them (raw SQL of that version's tables). */
  async function seed(schema: string, k: number) {
    const s = `"${schema}"`
    const parked = newFlow(7001, 'pollingA')
    const ended = newFlow(7001, 'failed')
    for (const [f, age] of [[ended, '2 hours'], [parked, '1 hour']] as const) {
      await admin.query(
        `INSERT INTO ${s}.flows (id, user_type, user_id, version, state, working, ended, stretch, snapshot, view, lease_owner, lease_epoch, lease_until, created_at, updated_at)
         VALUES ($1, 0, $2, 3, $3, $4, $5, 2, $6, $7, 'old-replica', 4, now() - interval '1 minute', now() - $8::interval, now() - interval '1 minute')`,
        [f.id, f.userId, f.state, f.working, f.ended, JSON.stringify(f.flow), JSON.stringify(f.view), age],
      )
    }
    const seqs: number[] = []
    if (k >= 2) {
      for (const type of ['REDIRECT', 'CANCEL']) {
        const r = await admin.query<{ seq: string }>(`INSERT INTO ${s}.inbox (flow_id, event, received_by) VALUES ($1, $2, 'old-replica') RETURNING seq`, [
          parked.id,
          JSON.stringify(type === 'REDIRECT' ? { type, outcome: 'success' } : { type }),
        ])
        seqs.push(Number(r.rows[0]!.seq))
      }
      await admin.query(`UPDATE ${s}.flows SET applied_seq = $2 WHERE id = $1`, [parked.id, seqs[0]])
    }
    if (k >= 3) {
      await admin.query(`INSERT INTO ${s}.history (flow_id, n, entry) VALUES ($1, 1, $2)`, [parked.id, JSON.stringify({ kind: 'view', at: 1, version: 1, view: parked.view })])
      await admin.query(`UPDATE ${s}.flows SET history_n = 1 WHERE id = $1`, [parked.id])
    }
    return { parked, ended, seqs }
  }

  it.each(Array.from({ length: SCHEMA_VERSION - 1 }, (_, i) => i + 1))('migrates from version %i to the latest, keeping the data', async (k) => {
    const schema = nextSchema(`from${k}`)
    expect(await migratePostgresSchema(admin, { schema, target: k })).toEqual({ from: 0, to: k })
    expect(await versions(schema)).toEqual(Array.from({ length: k }, (_, i) => i + 1))
    const { parked, ended, seqs } = await seed(schema, k)

    const store = open({ schema })
    const got = await store.get(parked.id)
    expect(await versions(schema)).toEqual(MIGRATIONS.map((m) => m.version))
    expect(got).toMatchObject({ id: parked.id, userId: 7001, userType: 0, version: 3, state: 'pollingA', working: true, ended: false, stretch: 2 })
    expect(got?.view).toEqual(parked.view)
    expect(got?.flow).toEqual(parked.flow)
    expect(got?.lease).toMatchObject({ owner: 'old-replica', epoch: 4 })
    expect(got!.lease!.until).toBeLessThan(Date.now())
    expect(got?.appliedSeq).toBe(k >= 2 ? seqs[0] : 0)
    expect((await store.get(ended.id))?.ended).toBe(true)
    expect((await store.findByUser(0, 7001))?.id).toBe(parked.id)
    // The old rows behave like new ones: one unfinished flow per user, leases, inbox, history.
    const again = await store.create(newFlow(7001))
    expect(again).toMatchObject({ created: false, record: { id: parked.id } })
    expect(await store.orphans(10)).toEqual([{ id: parked.id, stretch: 2, working: true }])
    const leased = await store.acquireLease(parked.id, 'new-replica', 5000)
    expect(leased?.lease).toMatchObject({ owner: 'new-replica', epoch: 5 })
    expect((await store.events(parked.id, got!.appliedSeq)).map((e) => e.event.type)).toEqual(k >= 2 ? ['CANCEL'] : [])
    expect(await store.renewLeases('new-replica', [{ id: parked.id, epoch: 5 }], 5000)).toEqual([{ id: parked.id, pending: k >= 2 }])
    const seq = await store.appendEvent(parked.id, { type: 'CANCEL' }, 'new-replica')
    const written = await store.write(parked.id, 3, change(parked, 'failed', { appliedSeq: seq, history: [{ kind: 'event', at: 5, event: 'CANCEL', receivedBy: 'new-replica', applied: true }] }), {
      owner: 'new-replica',
      epoch: 5,
    })
    expect(written).toMatchObject({ version: 4, state: 'failed', ended: true, appliedSeq: seq })
    expect(await store.history(parked.id)).toEqual([{ kind: 'event', at: 5, event: 'CANCEL', receivedBy: 'new-replica', applied: true }])
    expect(await store.events(parked.id, 0)).toEqual([])
    expect(await store.counts()).toEqual({ working: 0, parked: 0, ended: 2 })
  })

  it('a schema at the latest version is left as it is, data included', async () => {
    const schema = nextSchema('latest')
    await migratePostgresSchema(admin, { schema })
    const { parked } = await seed(schema, SCHEMA_VERSION)
    const store = open({ schema })
    expect(await store.history(parked.id)).toEqual([{ kind: 'view', at: 1, version: 1, view: parked.view }])
    expect(await versions(schema)).toEqual(MIGRATIONS.map((m) => m.version))
  })

  it('refuses a schema at a newer version than the code knows, and changes nothing', async () => {
    const schema = nextSchema('newer')
    await migratePostgresSchema(admin, { schema })
    await admin.query(`INSERT INTO "${schema}".schema_migrations (version, description) VALUES ($1, 'from the future')`, [SCHEMA_VERSION + 1])
    const store = open({ schema })
    for (const [name, call] of everyMethod(store)) {
      const error = await call().then(() => undefined, (e: unknown) => e)
      expect(error, name).toBeInstanceOf(SchemaTooNewError)
      expect(String(error)).toMatch(new RegExp(`version ${SCHEMA_VERSION + 1}, newer than .* knows \\(${SCHEMA_VERSION}\\)`))
    }
    expect(await versions(schema)).toEqual([...MIGRATIONS.map((m) => m.version), SCHEMA_VERSION + 1])
    await expect(migratePostgresSchema(admin, { schema })).rejects.toBeInstanceOf(SchemaTooNewError)
  })

  it('migrate: false uses a schema at the latest version and refuses an older one', async () => {
    const schema = nextSchema('nomigrate')
    await migratePostgresSchema(admin, { schema, target: SCHEMA_VERSION - 1 })
    const store = open({ schema, migrate: false })
    await expect(store.counts()).rejects.toThrow(`schema "${schema}" is at version ${SCHEMA_VERSION - 1}, this code needs ${SCHEMA_VERSION}`)
    expect(await versions(schema)).toHaveLength(SCHEMA_VERSION - 1)
    await migratePostgresSchema(admin, { schema })
    expect(await store.counts()).toEqual({ working: 0, parked: 0, ended: 0 })
  })

  it('a replica waits for another one\'s migration (longer than its statement timeout), bounded by migrationTimeoutMs', async () => {
    const schema = nextSchema('lockwait')
    const holder = await admin.connect()
    try {
      await holder.query('BEGIN')
      await holder.query('SELECT pg_advisory_xact_lock($1::int, $2::int)', migrationLockKey(schema))
      // Gives up after migrationTimeoutMs (lock_timeout and statement_timeout of the migration)…
      const impatient = open({ schema, migrationTimeoutMs: 300 })
      const t0 = Date.now()
      const error = await impatient.ready().catch((e: unknown) => e)
      expect(Date.now() - t0).toBeLessThan(1500)
      expect(String(error)).toMatch(/PostgreSQL: setting up the store failed: canceling statement due to (lock|statement) timeout \((55P03|57014)\)/)
      // …a patient one waits past its own statement and read timeouts, and goes on once the lock is free.
      const patient = open({ schema, statementTimeoutMs: 200 })
      const waiting = patient.ready()
      await sleep(1500)
      await holder.query('COMMIT')
      await waiting
      expect(await patient.counts()).toEqual({ working: 0, parked: 0, ended: 0 })
    } finally {
      await holder.query('ROLLBACK').catch(() => {})
      holder.release()
    }
  })

  it('replicas starting at once (separate pools) migrate an empty schema without a race, five times over', async () => {
    for (let round = 0; round < 5; round++) {
      const schema = nextSchema('race')
      const replicas = Array.from({ length: 4 }, () => open({ schema, maxConnections: 2 }))
      await Promise.all(replicas.map((r) => r.ready()))
      expect(await versions(schema)).toEqual(MIGRATIONS.map((m) => m.version))
      // …and from an older version too.
      const older = nextSchema('race')
      await migratePostgresSchema(admin, { schema: older, target: 1 })
      await Promise.all(Array.from({ length: 4 }, () => open({ schema: older, maxConnections: 2 }).ready()))
      expect(await versions(older)).toEqual(MIGRATIONS.map((m) => m.version))
    }
  })
})

describe('PostgreSQL flow store: shared by replicas', () => {
  it('50 concurrent creates for one user through two pools (10 connections each) make one flow', async () => {
    const schema = nextSchema('creates')
    const a = open({ schema })
    const b = open({ schema })
    await Promise.all([a.ready(), b.ready()])
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).create(newFlow(9001))))
    expect(results.filter((r) => r.created)).toHaveLength(1)
    expect(new Set(results.map((r) => r.record.id)).size).toBe(1)
    const rows = await admin.query(`SELECT id FROM "${schema}".flows WHERE user_id = 9001`)
    expect(rows.rowCount).toBe(1)
    // Once it ended, exactly one of 50 new creates wins again.
    const first = results[0]!.record
    const ended = await a.write(first.id, first.version, change({ ...newFlow(9001), id: first.id }, 'failed'))
    expect(ended?.ended).toBe(true)
    const again = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).create(newFlow(9001))))
    expect(again.filter((r) => r.created)).toHaveLength(1)
    expect(new Set(again.map((r) => r.record.id)).size).toBe(1)
    expect((await admin.query(`SELECT id FROM "${schema}".flows WHERE user_id = 9001 AND NOT ended`)).rowCount).toBe(1)
  })

  it('fencing across pools: a paused owner writes nothing once another replica took the lease', async () => {
    const schema = nextSchema('fence')
    const a = open({ schema })
    const b = open({ schema })
    const f = newFlow(9002, 'pollingB')
    await a.create(f)
    const leaseA = await a.acquireLease(f.id, 'replica-a', 300)
    expect(leaseA?.lease).toMatchObject({ owner: 'replica-a', epoch: 1 })
    // Lease times are the database's: until = now() + ttl on the server's clock.
    const dbNow = Number((await admin.query<{ t: string }>('SELECT floor(extract(epoch FROM now()) * 1000)::bigint AS t')).rows[0]!.t)
    expect(leaseA!.lease!.until).toBeGreaterThan(dbNow + 100)
    expect(leaseA!.lease!.until).toBeLessThanOrEqual(dbNow + 300)
    expect(await b.acquireLease(f.id, 'replica-b', 5000)).toBeNull()
    const w1 = await a.write(f.id, 1, change(f, 'pollingB', { stretch: 2 }), { owner: 'replica-a', epoch: 1 })
    expect(w1?.version).toBe(2)

    await sleep(400) // replica A is paused (GC, SIGSTOP, a partition) past its lease
    const leaseB = await b.acquireLease(f.id, 'replica-b', 5000)
    expect(leaseB?.lease).toMatchObject({ owner: 'replica-b', epoch: 2 })

    // A wakes up: whatever version it names, its epoch is old; it renews nothing, releases nothing.
    expect(await a.write(f.id, 2, change(f, 'failed'), { owner: 'replica-a', epoch: 1 })).toBeNull()
    expect(await a.renewLeases('replica-a', [{ id: f.id, epoch: 1 }], 5000)).toEqual([])
    await a.releaseLease(f.id, 'replica-a', 1)
    expect(await a.acquireLease(f.id, 'replica-a', 5000)).toBeNull()
    const w2 = await b.write(f.id, 2, change(f, 'finalized'), { owner: 'replica-b', epoch: 2 })
    expect(w2).toMatchObject({ version: 3, state: 'finalized' })
    expect(await a.write(f.id, 3, change(f, 'failed'), { owner: 'replica-a', epoch: 1 })).toBeNull()
    expect(await a.get(f.id)).toMatchObject({ version: 3, state: 'finalized', lease: { owner: 'replica-b', epoch: 2 } })
  })

  it('a takeover racing the old owner\'s writes: no write of the old epoch lands after the new lease', async () => {
    const schema = nextSchema('race_fence')
    const a = open({ schema, maxConnections: 4 })
    const b = open({ schema, maxConnections: 4 })
    const f = newFlow(9003, 'pollingA')
    await a.create(f)
    await a.acquireLease(f.id, 'replica-a', 1)
    await sleep(20)
    let version = 1
    let stop = false
    const writer = (async () => {
      let landed = 0
      while (!stop) {
        const r = await a.write(f.id, version, change(f, 'pollingA', { history: [{ kind: 'event', at: landed, event: 'CONTINUE', receivedBy: 'replica-a', applied: true }] }), { owner: 'replica-a', epoch: 1 })
        if (!r) break
        version = r.version
        landed++
      }
      return landed
    })()
    await sleep(30)
    const taken = await b.acquireLease(f.id, 'replica-b', 5000)
    stop = true
    await writer
    expect(taken?.lease).toMatchObject({ owner: 'replica-b', epoch: 2 })
    const after = await b.get(f.id)
    // B's lease came with the version it saw; nothing of A's landed after it.
    expect(after!.version).toBe(taken!.version)
    expect(await b.write(f.id, taken!.version, change(f, 'failed'), { owner: 'replica-b', epoch: 2 })).toMatchObject({ version: taken!.version + 1 })
  })

  it('inbox: events appended at once through two pools are all applied, once, in order, by a driver reading as they come', async () => {
    const schema = nextSchema('inbox')
    const a = open({ schema, maxConnections: 10 })
    const b = open({ schema, maxConnections: 10 })
    const f = newFlow(9016, 'pollingA')
    await a.create(f)
    const appended: number[] = []
    let appending = true
    const appenders = Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        for (let k = 0; k < 15; k++) appended.push(await (i % 2 ? a : b).appendEvent(f.id, { type: 'CONTINUE' }, `r${i}`))
      }),
    ).then(() => {
      appending = false
    })
    // The driver: reads what follows appliedSeq, "applies" it and moves appliedSeq in its write.
    const applied: number[] = []
    let record = (await a.get(f.id))!
    for (;;) {
      const stillAppending = appending
      const events = await a.events(f.id, record.appliedSeq)
      if (events.length > 0) {
        applied.push(...events.map((e) => e.seq))
        record = (await a.write(f.id, record.version, change(f, 'pollingA', { appliedSeq: events.at(-1)!.seq })))!
      } else if (!stillAppending) break
    }
    await appenders
    expect(appended).toHaveLength(300)
    expect(applied).toEqual([...appended].sort((x, y) => x - y)) // none skipped, none twice, in order
    expect(await a.events(f.id, 0)).toEqual([]) // applied events left with the writes
  })

  it('an ended flow cannot come back while the user has another unfinished one (two pools)', async () => {
    const schema = nextSchema('comeback')
    const a = open({ schema })
    const b = open({ schema })
    const old = newFlow(9004)
    await a.create(old)
    await a.write(old.id, 1, change(old, 'failed'))
    const next = newFlow(9004)
    expect((await b.create(next)).created).toBe(true)
    const error = await a.write(old.id, 2, change(old, 'initiating')).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UnfinishedFlowExistsError)
    expect(error).toMatchObject({ userType: 0, userId: 9004, flowId: next.id })
    // Once the new one ended, the old one may come back (RETRY).
    await b.write(next.id, 1, change(next, 'finalized'))
    expect(await a.write(old.id, 2, change(old, 'initiating'))).toMatchObject({ version: 3, ended: false })
  })

  it('the partial unique index exists, and PostgreSQL itself refuses a second unfinished flow', async () => {
    const schema = nextSchema('index')
    await open({ schema }).ready()
    const idx = new Map(
      (await admin.query<{ indexname: string; indexdef: string }>('SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1', [schema])).rows.map((r) => [r.indexname, r.indexdef]),
    )
    expect(idx.get('flows_one_unfinished_per_user')).toBe(`CREATE UNIQUE INDEX flows_one_unfinished_per_user ON ${schema}.flows USING btree (user_type, user_id) WHERE (NOT ended)`)
    expect(idx.get('flows_by_user')).toMatch(/\(user_type, user_id, created_at DESC\)$/)
    expect(idx.get('flows_working')).toMatch(/WHERE working$/)
    expect(idx.get('inbox_by_flow')).toMatch(/\(flow_id, seq\)$/)
    expect(idx.get('history_pkey')).toMatch(/UNIQUE .*\(flow_id, n\)$/)
    const insert = (id: string, ended: boolean) =>
      admin.query(`INSERT INTO "${schema}".flows (id, user_type, user_id, version, state, working, ended, stretch, snapshot, view) VALUES ($1, 0, 9005, 1, 'initiating', true, $2, 1, '{}', '{}')`, [id, ended])
    await insert('a', false)
    await insert('b', true)
    await expect(insert('c', false)).rejects.toMatchObject({ code: '23505', constraint: 'flows_one_unfinished_per_user' })
  })

  it('the store\'s statements use the indexes (orphans, findByUser, history, events)', async () => {
    const schema = nextSchema('plans')
    const store = open({ schema })
    await store.ready()
    // Many ended flows, a few working ones.
    await admin.query(
      `INSERT INTO "${schema}".flows (id, user_type, user_id, version, state, working, ended, stretch, snapshot, view)
       SELECT 'x' || g, 0, g, 1, 'finalized', false, true, 1, '{}', '{}' FROM generate_series(1, 5000) AS g`,
    )
    for (let i = 0; i < 5; i++) await store.create(newFlow(20_000 + i, 'pollingA'))
    await admin.query(`ANALYZE "${schema}".flows`)
    const scans = async () =>
      new Map(
        (await admin.query<{ indexrelname: string; idx_scan: string }>('SELECT indexrelname, idx_scan FROM pg_stat_user_indexes WHERE schemaname = $1', [schema])).rows.map((r) => [
          r.indexrelname,
          Number(r.idx_scan),
        ]),
      )
    const before = await scans()
    expect(await store.orphans(100)).toHaveLength(5)
    await store.findByUser(0, 42)
    await store.history('x42')
    await store.events('x42', 0)
    // Statistics reach pg_stat_user_indexes when a backend exits (or, idle, within ten seconds).
    await store.close()
    const grew = (name: string, m: Map<string, number>) => (m.get(name) ?? 0) > (before.get(name) ?? 0)
    let after = await scans()
    for (let i = 0; i < 40 && !['flows_working', 'flows_by_user', 'history_pkey', 'inbox_by_flow'].every((n) => grew(n, after)); i++) {
      await sleep(100)
      after = await scans()
    }
    for (const name of ['flows_working', 'flows_by_user', 'history_pkey', 'inbox_by_flow']) expect(grew(name, after), name).toBe(true)
  })

  it('every call is one statement, one round trip (counted at the pool)', async () => {
    const schema = nextSchema('trips')
    const real = db.pool(5)
    const calls = { query: 0, connect: 0 }
    const counting: PgPool = {
      query: (q) => {
        calls.query++
        return real.query(q)
      },
      connect: () => {
        calls.connect++
        return real.connect()
      },
      end: () => real.end(),
    }
    const store = open({ schema, pool: counting })
    await store.ready()
    const f = newFlow(9006, 'pollingA')
    const g = newFlow(9007, 'pollingB')
    await store.create(g)
    const count = async (call: () => Promise<unknown>) => {
      calls.query = 0
      calls.connect = 0
      await call()
      return { ...calls }
    }
    const one = { query: 1, connect: 0 }
    expect(await count(() => store.create(f, [{ kind: 'view', at: 1, version: 1, view: f.view }]))).toEqual(one)
    expect(await count(() => store.acquireLease(f.id, 'r', 5000))).toEqual(one)
    await store.acquireLease(g.id, 'r', 5000)
    const seq = await store.appendEvent(f.id, { type: 'CANCEL' }, 'r')
    expect(await count(() => store.appendEvent(f.id, { type: 'CANCEL' }, 'r'))).toEqual(one)
    expect(await count(() => store.write(f.id, 1, change(f, 'pollingA', { appliedSeq: seq, history: [{ kind: 'event', at: 2, event: 'CANCEL', receivedBy: 'r', applied: true }] }), { owner: 'r', epoch: 1 }))).toEqual(one)
    let renewed: unknown
    expect(await count(async () => (renewed = await store.renewLeases('r', [{ id: f.id, epoch: 1 }, { id: g.id, epoch: 1 }, { id: 'gone', epoch: 1 }], 5000)))).toEqual(one)
    expect(renewed).toEqual([{ id: f.id, pending: true }, { id: g.id, pending: false }])
    for (const call of [() => store.get(f.id), () => store.findByUser(0, 9006), () => store.events(f.id, 0), () => store.history(f.id), () => store.orphans(10), () => store.counts(), () => store.releaseLease(f.id, 'r', 1)]) {
      expect(await count(call)).toEqual(one)
    }
    // A create that finds the user's unfinished flow reads it: two.
    expect(await count(() => store.create(newFlow(9006)))).toEqual({ query: 2, connect: 0 })
    await store.close()
    expect(await real.query('SELECT 1 AS one')).toMatchObject({ rows: [{ one: 1 }] }) // the caller's pool stays open
  })

  it('the inbox and the history do not grow: applied events go with the write, history keeps the last HISTORY_LIMIT', async () => {
    const schema = nextSchema('bounded')
    const store = open({ schema })
    const f = newFlow(9008, 'pollingA')
    const many = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ kind: 'event' as const, at: from + i, event: 'CONTINUE' as const, receivedBy: 'r', applied: true }))
    await store.create(f, many(0, HISTORY_LIMIT + 30))
    expect((await store.history(f.id)).map((h) => h.at)).toEqual(Array.from({ length: HISTORY_LIMIT }, (_, i) => 30 + i))
    let version = 1
    let applied = 0
    for (let i = 0; i < 30; i++) {
      const s1 = await store.appendEvent(f.id, { type: 'CONTINUE' }, 'r')
      await store.appendEvent(f.id, { type: 'CONTINUE' }, 'r')
      applied = s1
      const r = await store.write(f.id, version, change(f, 'pollingA', { appliedSeq: applied, history: many(1000 + i * 20, 20) }))
      version = r!.version
    }
    const rows = async (table: string) => Number((await admin.query(`SELECT count(*) AS n FROM "${schema}".${table} WHERE flow_id = $1`, [f.id])).rows[0].n)
    expect(await rows('history')).toBe(HISTORY_LIMIT)
    expect(await rows('inbox')).toBe(1) // the one event after appliedSeq
    const h = await store.history(f.id)
    expect(h[0]!.at).toBe(1000 + 30 * 20 - HISTORY_LIMIT)
    expect(h.at(-1)!.at).toBe(1000 + 30 * 20 - 1)
    // One write with more entries than the limit keeps the newest.
    await store.write(f.id, version, change(f, 'pollingA', { appliedSeq: applied, history: many(5000, HISTORY_LIMIT + 1) }))
    expect((await store.history(f.id)).map((e) => e.at)).toEqual(Array.from({ length: HISTORY_LIMIT }, (_, i) => 5001 + i))
    expect(await rows('history')).toBe(HISTORY_LIMIT)
  })

  it('numbers come back as numbers (bigint columns, epoch ms) and JSON the way it went in', async () => {
    const schema = nextSchema('numbers')
    const store = open({ schema })
    await store.ready()
    await admin.query(`SELECT setval(pg_get_serial_sequence('"${schema}".inbox', 'seq'), $1)`, [2 ** 40])
    const big = 2 ** 45 + 7
    const f = { ...newFlow(big), view: { ...newFlow(big).view, userId: big, url: 'https://x.test/a?b=c&d="e"' } }
    const t0 = Date.now()
    const { record } = await store.create(f)
    expect(record.userId).toBe(big)
    expect(record.createdAt).toBe(record.updatedAt)
    expect(Number.isInteger(record.createdAt)).toBe(true)
    expect(Math.abs(record.createdAt - t0)).toBeLessThan(5_000)
    expect(record.view).toEqual(f.view)
    const seq = await store.appendEvent(f.id, { type: 'REDIRECT', outcome: 'fail' }, 'r')
    expect(seq).toBe(2 ** 40 + 1)
    const [e] = await store.events(f.id, 2 ** 40)
    expect(e).toEqual({ seq: 2 ** 40 + 1, event: { type: 'REDIRECT', outcome: 'fail' }, receivedBy: 'r', at: expect.any(Number) })
    const leased = await store.acquireLease(f.id, 'r', 1000)
    expect(leased?.lease).toEqual({ owner: 'r', epoch: 1, until: expect.any(Number) })
    const w = await store.write(f.id, 1, change(f, 'pollingA', { appliedSeq: seq }), { owner: 'r', epoch: 1 })
    expect(w?.appliedSeq).toBe(2 ** 40 + 1)
    await store.releaseLease(f.id, 'r', 1)
    expect((await store.get(f.id))?.lease).toEqual({ owner: 'r', epoch: 1, until: 0 }) // as the memory store: until 0
    expect(await store.counts()).toEqual({ working: 1, parked: 0, ended: 0 })
  })

  it('documents come back exactly as they went in: key order, NUL, lone surrogates (json, not jsonb)', async () => {
    const schema = nextSchema('exact')
    const store = open({ schema })
    const f = newFlow(9009, 'failed')
    // Key order matters to whoever compares JSON.stringify of a stored view with a fresh one.
    const view = { ...f.view, url: 'https://x.test/\u0000a\ud800b\udc00c\ud83d\ude00', failure: { reason: 'cancelled', retryable: false, message: 'x' } } as typeof f.view
    const history = [{ kind: 'view' as const, at: 1, version: 1, view }]
    await store.create({ ...f, view }, history)
    const got = await store.get(f.id)
    expect(JSON.stringify(got?.view)).toBe(JSON.stringify(view))
    expect(JSON.stringify(got?.flow)).toBe(JSON.stringify(f.flow))
    expect(JSON.stringify(await store.history(f.id))).toBe(JSON.stringify(history))
    const event = { type: 'REDIRECT', outcome: 'fail' } as const
    const seq = await store.appendEvent(f.id, event, 'r')
    expect(JSON.stringify((await store.events(f.id, 0))[0])).toBe(JSON.stringify({ seq, event, receivedBy: 'r', at: (await store.events(f.id, 0))[0]!.at }))
  })

  it('values are parameters: quotes and SQL in ids, owners and event sources are plain data', async () => {
    const schema = nextSchema('params')
    const store = open({ schema })
    const evil = `x'); DROP TABLE "${schema}".flows; --`
    const f = { ...newFlow(9010), id: `id-${evil}` }
    await store.create(f)
    expect((await store.acquireLease(f.id, evil, 1000))?.lease?.owner).toBe(evil)
    await store.appendEvent(f.id, { type: 'CANCEL' }, evil)
    expect((await store.events(f.id, 0))[0]?.receivedBy).toBe(evil)
    expect(await store.get(`' OR '1'='1`)).toBeUndefined()
    expect((await store.get(f.id))?.id).toBe(f.id)
  })
})

describe('PostgreSQL flow store: failures', () => {
  const password = 's3cr3t-Pa55w0rd'
  const clean = (error: unknown) => {
    for (const text of [String(error), (error as Error).stack ?? '', inspect(error, { depth: 10 }), JSON.stringify(error), JSON.stringify((error as Error).cause ?? null)]) {
      expect(text).not.toContain(password)
      expect(text).not.toContain('postgres://')
    }
  }

  it('PostgreSQL unreachable (closed port): every method rejects promptly, naming PostgreSQL, holding no password', async () => {
    const port = await closedPort()
    const store = open({ schema: nextSchema('down'), connectionString: `postgres://postgres:${password}@127.0.0.1:${port}/app`, connectTimeoutMs: 1000 })
    for (const [name, call] of everyMethod(store)) {
      const r = await settles(call(), 3000)
      expect(r.ok, name).toBe(false)
      if (r.ok) continue
      expect(r.elapsed, name).toBeLessThan(1500)
      expect(r.error, name).toBeInstanceOf(DependencyError)
      expect(String(r.error)).toMatch(/^DependencyError: PostgreSQL: setting up the store failed: connect ECONNREFUSED/)
      clean(r.error)
    }
    // A pool of the caller's, same story.
    const pool = db.pool(2, { connectionString: `postgres://postgres:${password}@127.0.0.1:${port}/app`, connectionTimeoutMillis: 1000 })
    const viaPool = open({ schema: nextSchema('down'), pool })
    const r = await settles(viaPool.get('x'), 3000)
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(String(r.error)).toMatch(/PostgreSQL/)
      clean(r.error)
    }
  })

  it('a host that never answers: calls fail after connectTimeoutMs, not hang', async () => {
    const proxy = await startTcpProxy()
    try {
      proxy.blackhole(true)
      const store = open({ schema: nextSchema('hang'), connectionString: `postgres://postgres:${password}@127.0.0.1:${proxy.port}/${db.name}`, connectTimeoutMs: 400 })
      const r = await settles(store.counts(), 3000)
      expect(r.ok).toBe(false)
      if (!r.ok) {
        expect(r.elapsed).toBeGreaterThanOrEqual(350)
        expect(r.elapsed).toBeLessThan(1500)
        expect(String(r.error)).toMatch(/PostgreSQL: .*timeout/i)
        clean(r.error)
      }
      // …and the same store works once the host answers.
      proxy.blackhole(false)
      expect(await store.counts()).toEqual({ working: 0, parked: 0, ended: 0 })
    } finally {
      await proxy.close()
    }
  })

  it('a connection string that does not parse leaks nothing either', async () => {
    const store = open({ schema: nextSchema('bad'), connectionString: `postgres://postgres:${password}@127.0.0.1:notaport/%zz`, connectTimeoutMs: 500 })
    const r = await settles(store.get('x'), 3000)
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(String(r.error)).toMatch(/PostgreSQL/)
      clean(r.error)
    }
  })

  it('recovers when the database comes back: down before the first call, then down mid-run; nothing half-written', async () => {
    const proxy = await startTcpProxy()
    try {
      await proxy.down()
      const schema = nextSchema('back')
      const store = open({ schema, connectionString: `postgres://postgres:${password}@127.0.0.1:${proxy.port}/${db.name}`, connectTimeoutMs: 1000, statementTimeoutMs: 2000 })
      const first = await settles(store.counts(), 3000)
      expect(first.ok).toBe(false)
      if (!first.ok) expect(String(first.error)).toMatch(/PostgreSQL/)
      await proxy.up()
      const f = newFlow(9011, 'pollingA')
      expect((await store.create(f)).created).toBe(true) // set-up tried again, schema migrated

      // Writes in a loop; the database goes away for 500 ms in the middle.
      let version = 1
      let ok = 0
      let failed = 0
      let i = 0
      const loop = (async () => {
        const end = Date.now() + 2000
        while (Date.now() < end) {
          const r = await settles(store.write(f.id, version, change(f, 'pollingA', { history: [{ kind: 'event', at: i++, event: 'CONTINUE', receivedBy: 'r', applied: true }] })), 5000)
          if (r.ok && r.value) {
            version = r.value.version
            ok++
          } else if (r.ok) {
            version = (await settles(store.get(f.id), 5000).then((g) => (g.ok ? g.value!.version : version)))
          } else {
            failed++
            expect(r.elapsed).toBeLessThan(3000)
            expect(r.error).toBeInstanceOf(DependencyError)
            clean(r.error)
            await sleep(20)
          }
        }
      })()
      await sleep(500)
      await proxy.down()
      await sleep(500)
      await proxy.up()
      await loop
      expect(failed).toBeGreaterThan(0)
      expect(ok).toBeGreaterThan(10)
      // Every committed write bumped the version and appended its one history entry, atomically
      // (history_n counts the entries ever appended; the table keeps the last HISTORY_LIMIT).
      const stored = await store.get(f.id)
      const row = (await admin.query(`SELECT version, history_n::int AS n FROM "${schema}".flows WHERE id = $1`, [f.id])).rows[0]
      expect(row).toEqual({ version: stored!.version, n: stored!.version - 1 })
      const ats = (await store.history(f.id)).map((h) => h.at)
      expect(ats).toHaveLength(Math.min(HISTORY_LIMIT, stored!.version - 1))
      expect(ats).toEqual([...ats].sort((x, y) => x - y))
    } finally {
      await proxy.close()
    }
  })

  it('pg_terminate_backend of the store\'s connections mid-run: calls fail fast, then succeed again', async () => {
    const app = `tenpay-terminate-${process.pid}`
    const store = open({ schema: nextSchema('terminate'), applicationName: app, maxConnections: 4 })
    const f = newFlow(9012, 'pollingA')
    await store.create(f)
    const results: { ok: boolean; at: number }[] = []
    const end = Date.now() + 1500
    let killed = 0
    const workers = Array.from({ length: 4 }, async () => {
      while (Date.now() < end) {
        const r = await settles(store.get(f.id), 5000)
        results.push({ ok: r.ok, at: Date.now() })
        if (!r.ok) {
          expect(r.error).toBeInstanceOf(DependencyError)
          expect(String(r.error)).toMatch(/PostgreSQL/)
        }
      }
    })
    await sleep(300)
    const t = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [app])
    killed = t.rowCount ?? 0
    const killedAt = Date.now()
    await Promise.all(workers)
    expect(killed).toBeGreaterThan(0)
    expect(results.filter((r) => r.ok && r.at > killedAt + 100).length).toBeGreaterThan(0)
    expect((await store.get(f.id))?.id).toBe(f.id)
  })

  it('a statement blocked past statementTimeoutMs fails with a PostgreSQL error; the write goes through once unblocked', async () => {
    const schema = nextSchema('timeout')
    const store = open({ schema, statementTimeoutMs: 300 })
    const f = newFlow(9013, 'pollingA')
    await store.create(f)
    const locker = await admin.connect()
    try {
      await locker.query('BEGIN')
      await locker.query(`SELECT 1 FROM "${schema}".flows WHERE id = $1 FOR UPDATE`, [f.id])
      const r = await settles(store.write(f.id, 1, change(f, 'failed')), 3000)
      expect(r.ok).toBe(false)
      if (!r.ok) {
        expect(r.elapsed).toBeLessThan(1500)
        expect(String(r.error)).toMatch(/PostgreSQL: write failed: canceling statement due to statement timeout \(57014\)/)
      }
    } finally {
      await locker.query('ROLLBACK')
      locker.release()
    }
    expect(await store.write(f.id, 1, change(f, 'failed'))).toMatchObject({ version: 2, state: 'failed' })
  })
})

describe('PostgreSQL flow store: options and lifecycle', () => {
  it('validates its options with TypeErrors naming the option', () => {
    const url = 'postgres://127.0.0.1/x'
    const bad: [unknown, RegExp][] = [
      [undefined, /options/],
      [{}, /pool or connectionString/],
      [{ connectionString: url, pool: {} }, /pool/],
      [{ connectionString: url, pool: { query() {}, connect() {}, end() {} } }, /exactly one/],
      [{ connectionString: '' }, /connectionString/],
      [{ connectionString: url, schema: 'Bad-Name' }, /schema/],
      [{ connectionString: url, schema: 'x"; DROP SCHEMA public; --' }, /schema/],
      [{ connectionString: url, schema: 'pg_mine' }, /schema/],
      [{ connectionString: url, schema: 'a'.repeat(64) }, /schema/],
      [{ connectionString: url, maxConnections: 0 }, /maxConnections/],
      [{ connectionString: url, connectTimeoutMs: -1 }, /connectTimeoutMs/],
      [{ connectionString: url, statementTimeoutMs: Number.NaN }, /statementTimeoutMs/],
      [{ connectionString: url, migrationTimeoutMs: '5' }, /migrationTimeoutMs/],
      [{ connectionString: url, migrate: 'yes' }, /migrate/],
      [{ connectionString: url, preparedStatements: 1 }, /preparedStatements/],
    ]
    for (const [options, message] of bad) {
      expect(() => createPostgresFlowStore(options as PostgresFlowStoreOptions), JSON.stringify(options)).toThrow(TypeError)
      expect(() => createPostgresFlowStore(options as PostgresFlowStoreOptions)).toThrow(message)
    }
    const store = createPostgresFlowStore({ connectionString: url })
    expect(store).toMatchObject({ kind: 'PostgreSQL', exclusive: false, schema: 'tenpay_identification' })
  })

  it('the factory does no I/O; close() ends its own pool, and later calls reject', async () => {
    const app = `tenpay-close-${process.pid}`
    const connections = async () => Number((await admin.query('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [app])).rows[0].n)
    const store = createPostgresFlowStore({ connectionString: db.url, schema: nextSchema('close'), applicationName: app })
    await sleep(50)
    expect(await connections()).toBe(0)
    expect(await store.counts()).toEqual({ working: 0, parked: 0, ended: 0 })
    expect(await connections()).toBeGreaterThan(0)
    await store.close()
    await store.close() // twice is fine
    for (let i = 0; i < 20 && (await connections()) > 0; i++) await sleep(50)
    expect(await connections()).toBe(0)
    await expect(store.get('x')).rejects.toThrow('PostgreSQL flow store: closed')
  })

  it('without preparedStatements (PgBouncer in transaction mode) it works the same', async () => {
    const store = open({ schema: nextSchema('unnamed'), preparedStatements: false })
    const f = newFlow(9014)
    expect((await store.create(f)).created).toBe(true)
    expect((await store.acquireLease(f.id, 'r', 1000))?.lease?.epoch).toBe(1)
    expect(await store.write(f.id, 1, change(f, 'identifying'), { owner: 'r', epoch: 1 })).toMatchObject({ version: 2 })
  })

  it('two stores with different schemas share one pool (prepared statement names do not clash)', async () => {
    const pool = db.pool(1) // one connection: both stores' statements are prepared on it
    const a = open({ schema: nextSchema('share'), pool })
    const b = open({ schema: nextSchema('share'), pool })
    await a.create(newFlow(9015))
    await b.create(newFlow(9015))
    expect((await a.counts()).working).toBe(1)
    expect((await b.counts()).working).toBe(1)
  })

  it('when pg cannot be loaded, every method rejects naming the package and the install command', async () => {
    vi.resetModules()
    vi.doMock('pg', () => {
      throw new Error("Cannot find package 'pg' imported from postgresFlowStore.js")
    })
    try {
      const { createPostgresFlowStore: create } = await import('../../src/adapters/postgres/index.js')
      const store = create({ connectionString: `postgres://postgres:${'s3cr3t'}@127.0.0.1/x`, schema: nextSchema('nopg') })
      for (const [name, call] of everyMethod(store)) {
        const error = await call().then(() => undefined, (e: unknown) => e)
        expect(error, name).toBeInstanceOf(Error)
        expect((error as Error).message, name).toBe('createPostgresFlowStore needs the pg package (version 8), an optional peer dependency: npm install pg@8')
        expect(inspect(error, { depth: 5 })).not.toContain('s3cr3t')
      }
      await store.close()
    } finally {
      vi.doUnmock('pg')
      vi.resetModules()
    }
  })
})
