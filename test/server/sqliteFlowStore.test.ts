import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { createIdentificationService } from '../../src/adapters/server/identificationService.js'
import { DependencyError } from '../../src/adapters/server/errors.js'
import { HISTORY_LIMIT } from '../../src/adapters/server/types.js'
import { createSqliteFlowStore, SqliteFileInUseError, SQLITE_SCHEMA_VERSION, type SqliteFlowStore } from '../../src/adapters/node/sqliteFlowStore.js'
import { createSqliteSnapshotStore } from '../../src/adapters/node/sqliteSnapshotStore.js'
import { simSetup } from '../helpers.js'
import { change, describeFlowStore, newFlow } from './flowStoreConformance.js'

const dirs: string[] = []
const tempFile = (name = 'flows.db') => {
  const dir = mkdtempSync(join(tmpdir(), 'sqlite-flows-'))
  dirs.push(dir)
  return join(dir, name)
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** A store on a fresh file with a clock the conformance suite moves. */
function conformance(make: (file: string, now: () => number) => SqliteFlowStore) {
  return async () => {
    let t = 1_700_000_000_000
    const file = tempFile()
    const store = make(file, () => t)
    return {
      store,
      advance: async (ms: number) => {
        t += ms
      },
      close: async () => {
        await store.close()
        rmSync(file, { force: true })
      },
    }
  }
}

describeFlowStore('SQLite', conformance((file, now) => createSqliteFlowStore(file, { now })))
// The object createSqliteSnapshotStore returns is a FlowStore too (DESIGN passes it to the service).
describeFlowStore('SQLite (createSqliteSnapshotStore)', conformance((file, now) => createSqliteSnapshotStore(file, { now })))

const tables = (file: string) => {
  const raw = new Database(file, { readonly: true })
  try {
    return Object.fromEntries(
      (raw.prepare("SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%'").all() as { name: string; sql: string | null }[]).map((r) => [r.name, r.sql ?? '']),
    )
  } finally {
    raw.close()
  }
}

describe('SQLite flow store: schema and migrations', () => {
  it(`creates a new file at version ${SQLITE_SCHEMA_VERSION} with the flow tables and their indexes`, async () => {
    const file = tempFile()
    const store = createSqliteFlowStore(file)
    expect(store.schemaVersion).toBe(SQLITE_SCHEMA_VERSION)
    expect(SQLITE_SCHEMA_VERSION).toBe(3)
    await store.close()
    const t = tables(file)
    expect(Object.keys(t).sort()).toEqual(['flows', 'flows_by_user', 'flows_one_unfinished', 'flows_working', 'history', 'inbox', 'inbox_by_flow', 'kv', 'kv_updated_at', 'service_lease'])
    expect(t.flows_one_unfinished).toMatch(/CREATE UNIQUE INDEX flows_one_unfinished ON flows \(user_type, user_id\) WHERE ended = 0/)
    expect(t.inbox).toMatch(/AUTOINCREMENT/) // a seq is never reused once applied events are deleted
  })

  it('the partial unique index itself refuses a second unfinished flow of a user', async () => {
    const file = tempFile()
    const store = createSqliteFlowStore(file)
    await store.create(newFlow(1))
    await store.close()
    const raw = new Database(file)
    const row = raw.prepare('SELECT * FROM flows').get() as Record<string, unknown>
    const insert = raw.prepare('INSERT INTO flows (id, user_type, user_id, version, state, working, ended, stretch, flow, view, created_at, updated_at) VALUES (?, 0, 1, 1, ?, 1, ?, 1, ?, ?, 0, 0)')
    expect(() => insert.run('other-unfinished', 'initiating', 0, row.flow, row.view)).toThrow(/UNIQUE constraint failed/)
    expect(() => insert.run('other-ended', 'failed', 1, row.flow, row.view)).not.toThrow()
    raw.close()
  })

  const v1 = (file: string) => {
    const db = new Database(file)
    db.exec('CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
    db.prepare('INSERT INTO kv (key, value) VALUES (?, ?)').run('10npay-identification:0:7', JSON.stringify({ kept: 1 }))
    db.pragma('user_version = 1')
    db.close()
  }
  const v2 = (file: string) => {
    const db = new Database(file)
    db.exec('CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL DEFAULT 0); CREATE INDEX kv_updated_at ON kv (updated_at)')
    db.prepare('INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)').run('10npay-identification:0:7', JSON.stringify({ kept: 2 }), 123)
    db.pragma('user_version = 2')
    db.close()
  }

  it.each([
    ['empty (version 0)', (_: string) => {}, undefined],
    ['version 1', v1, { kept: 1 }],
    ['version 2', v2, { kept: 2 }],
  ] as const)('migrates from %s, keeping its rows, and serves flows and snapshots on one file', async (_, make, kept) => {
    const file = tempFile()
    make(file)
    const flows = createSqliteFlowStore(file)
    expect(flows.schemaVersion).toBe(SQLITE_SCHEMA_VERSION)
    const f = newFlow(7)
    expect((await flows.create(f)).created).toBe(true)
    // runIdentification's snapshots stay readable on the same file, next to the service.
    const snapshots = createSqliteSnapshotStore(file)
    expect(await snapshots.get('10npay-identification:0:7')).toEqual(kept)
    await snapshots.set('10npay-identification:0:8', { n: 8 })
    expect((await snapshots.list('10npay-identification:')).sort()).toEqual([...(kept ? ['10npay-identification:0:7'] : []), '10npay-identification:0:8'])
    await snapshots.close()
    await flows.close()
    const raw = new Database(file, { readonly: true })
    expect(raw.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION)
    expect((raw.pragma('table_info(kv)') as { name: string }[]).map((c) => c.name)).toEqual(['key', 'value', 'updated_at'])
    raw.close()
  })

  it('keeps flows, leases, inbox and history across a reopen (version 3 opens as it is)', async () => {
    const file = tempFile()
    let t = 1_700_000_000_000
    const a = createSqliteFlowStore(file, { now: () => t })
    const f = newFlow(9, 'pollingA')
    await a.create(f, [{ kind: 'view', at: 1, version: 1, view: f.view }])
    await a.acquireLease(f.id, 'r1', 60_000)
    const seq = await a.appendEvent(f.id, { type: 'CANCEL' }, 'r1')
    await a.close()
    const b = createSqliteFlowStore(file, { now: () => t })
    expect(await b.get(f.id)).toMatchObject({ id: f.id, state: 'pollingA', version: 1, lease: { owner: 'r1', epoch: 1, until: t + 60_000 } })
    expect((await b.events(f.id, 0)).map((e) => [e.seq, e.event])).toEqual([[seq, { type: 'CANCEL' }]])
    expect(await b.history(f.id)).toEqual([{ kind: 'view', at: 1, version: 1, view: f.view }])
    expect(await b.orphans(10)).toEqual([]) // the lease is still live
    expect(await b.orphans(10, { includeHeld: true })).toEqual([{ id: f.id, stretch: 1, working: true }])
    t += 60_001
    expect(await b.orphans(10)).toEqual([{ id: f.id, stretch: 1, working: true }])
    // A new event after the applied one deleted keeps a higher seq (AUTOINCREMENT).
    await b.write(f.id, 1, change(f, 'failed', { appliedSeq: seq }))
    expect(await b.events(f.id, 0)).toEqual([])
    expect(await b.appendEvent(f.id, { type: 'RETRY' }, 'r1')).toBeGreaterThan(seq)
    expect(await b.counts()).toEqual({ working: 0, parked: 0, ended: 1 })
    await b.close()
  })

  it('trims history per flow only', async () => {
    const store = createSqliteFlowStore(tempFile())
    const a = newFlow(20, 'identifying')
    const b = newFlow(21, 'identifying')
    await store.create(a, [{ kind: 'view', at: 0, version: 1, view: a.view }])
    await store.create(b, [{ kind: 'view', at: 0, version: 1, view: b.view }])
    const many = Array.from({ length: HISTORY_LIMIT + 5 }, (_, i) => ({ kind: 'event' as const, at: i, event: 'CONTINUE' as const, receivedBy: 'r', applied: true }))
    await store.write(a.id, 1, change(a, 'identifying', { history: many }))
    expect(await store.history(a.id)).toHaveLength(HISTORY_LIMIT)
    expect((await store.history(a.id))[0]).toMatchObject({ at: 5 })
    expect(await store.history(b.id)).toHaveLength(1)
    await store.close()
  })

  it('refuses a file of a newer schema', async () => {
    const file = tempFile()
    const raw = new Database(file)
    raw.pragma('user_version = 99')
    raw.close()
    expect(() => createSqliteFlowStore(file)).toThrow(/schema version 99; this library knows up to 3/)
  })

  it('without better-sqlite3, says which package to install', async () => {
    vi.resetModules()
    vi.doMock('node:module', async (original) => ({
      ...(await original<typeof import('node:module')>()),
      createRequire: () => () => {
        throw Object.assign(new Error("Cannot find module 'better-sqlite3'"), { code: 'MODULE_NOT_FOUND' })
      },
    }))
    try {
      const flows = await import('../../src/adapters/node/sqliteFlowStore.js')
      const snapshots = await import('../../src/adapters/node/sqliteSnapshotStore.js')
      expect(() => flows.createSqliteFlowStore(tempFile())).toThrow('createSqliteFlowStore needs the better-sqlite3 package (version 12 on Node 20): npm install better-sqlite3@12')
      expect(() => snapshots.createSqliteSnapshotStore(tempFile())).toThrow('createSqliteSnapshotStore needs the better-sqlite3 package (version 12 on Node 20): npm install better-sqlite3@12')
    } finally {
      vi.doUnmock('node:module')
      vi.resetModules()
    }
  })
})

/** Runs the fixture in a new Node process; resolves with its first stdout line, parsed. */
const fixture = fileURLToPath(new URL('./fixtures/sqliteFileHolder.ts', import.meta.url))
function run(mode: 'hold' | 'open' | 'leave', file: string): { child: ChildProcess; line: Promise<Record<string, unknown>>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, mode, file], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stderr!.on('data', (d: Buffer) => (err += d))
  const line = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d
      const nl = out.indexOf('\n')
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>)
    })
    child.on('exit', (code) => reject(new Error(`fixture ${mode} exited (${code}) without a line: ${err}`)))
  })
  line.catch(() => {})
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, line, exit }
}

const inUse = /is used by another identification service \(pid \d+ on host .+, since \d{4}-\d\d-\d\dT[^)]+\)( — [^;]+)?; a SQLite file serves one process — use createPostgresFlowStore with createBullMQCoordinator for several replicas/

describe('SQLite flow store: one service per file', () => {
  it('a second store on the file in the same process fails at once, naming this process; close() frees the file', async () => {
    const file = tempFile()
    const first = createSqliteFlowStore(file)
    let err: unknown
    try {
      createSqliteFlowStore(file)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(SqliteFileInUseError)
    expect((err as Error).message).toMatch(inUse)
    expect((err as Error).message).toContain(`${file} is used by another identification service (pid ${process.pid} on host ${hostname()}`)
    expect((err as SqliteFileInUseError).holder).toMatchObject({ pid: process.pid, hostname: hostname() })
    expect((err as Error).message).toContain('another store object of this very process: close() it first, or share one store')
    await first.create(newFlow(1)) // the holder is unaffected
    await first.close()
    const again = createSqliteFlowStore(file)
    expect(await again.counts()).toEqual({ working: 1, parked: 0, ended: 0 })
    await again.close()
  })

  it('a second process fails within a second with the reason; after a SIGKILL of the holder a new process opens the file at once', async () => {
    const file = tempFile()
    const holder = run('hold', file)
    const held = await holder.line
    try {
      expect(held).toMatchObject({ held: true })
      // Another process is refused at once, naming the holder.
      const second = run('open', file)
      const refused = await second.line
      expect(await second.exit).toBe(1)
      expect(refused).toMatchObject({ opened: false, name: 'SqliteFileInUseError' })
      expect(refused.message).toMatch(inUse)
      expect(refused.message).toContain(`(pid ${held.pid as number} on host ${hostname()}`)
      expect(refused.ms).toBeLessThan(1000)
      // So is this process.
      expect(() => createSqliteFlowStore(file)).toThrow(`(pid ${held.pid as number} on host ${hostname()}`)

      holder.child.kill('SIGKILL')
      expect(await holder.exit).toBe(null)
      // The lease is still in the file, unexpired, but its process is gone: taken over at once.
      const raw = new Database(file, { readonly: true })
      expect(raw.prepare('SELECT pid, until FROM service_lease').get()).toMatchObject({ pid: held.pid, until: expect.any(Number) })
      expect((raw.prepare('SELECT until FROM service_lease').get() as { until: number }).until).toBeGreaterThan(Date.now())
      raw.close()
      const restarted = run('open', file)
      const opened = await restarted.line
      expect(opened).toMatchObject({ opened: true })
      expect(opened.ms).toBeLessThan(1000)
      expect(await restarted.exit).toBe(0)
    } finally {
      holder.child.kill('SIGKILL')
    }
  })

  it('the lease heartbeat keeps the lease alive and does not keep a process alive', async () => {
    const file = tempFile()
    const left = run('leave', file)
    expect(await left.line).toMatchObject({ held: true })
    const code = await Promise.race([left.exit, new Promise((r) => setTimeout(() => r('still running'), 10_000))])
    expect(code).toBe(0)

    const store = createSqliteFlowStore(file, { fileLeaseMs: 300 }) // its process is gone: taken over
    await new Promise((r) => setTimeout(r, 800))
    const raw = new Database(file, { readonly: true })
    const row = raw.prepare('SELECT owner, pid, since, until FROM service_lease').get() as { pid: number; since: number; until: number }
    expect(row.pid).toBe(process.pid)
    expect(row.until).toBeGreaterThan(Date.now()) // renewed: 800 ms after taking a 300 ms lease
    expect(row.until - row.since).toBeGreaterThan(600)
    await store.close()
    expect(raw.prepare('SELECT COUNT(*) AS n FROM service_lease').get()).toEqual({ n: 0 }) // close() gives it up
    raw.close()
  })

  it('a lease of another host is waited for until it expires', async () => {
    const file = tempFile()
    await (createSqliteFlowStore(file)).close()
    const raw = new Database(file)
    const put = raw.prepare("INSERT OR REPLACE INTO service_lease (id, owner, pid, hostname, since, until) VALUES (1, 'x', ?, 'elsewhere.example', ?, ?)")
    put.run(process.pid + 1_000_000, Date.now() - 5000, Date.now() + 60_000)
    expect(() => createSqliteFlowStore(file)).toThrow(/used by another identification service \(pid \d+ on host elsewhere\.example, since .*, held until .* unless renewed\)/)
    put.run(process.pid + 1_000_000, Date.now() - 5000, Date.now() - 1)
    const store = createSqliteFlowStore(file)
    expect((raw.prepare('SELECT hostname FROM service_lease').get() as { hostname: string }).hostname).toBe(hostname())
    await store.close()
    raw.close()
  })

  it('a store that lost the file (paused past its lease, taken over) writes nothing more', async () => {
    const file = tempFile()
    const store = createSqliteFlowStore(file)
    const f = newFlow(30)
    await store.create(f)
    const raw = new Database(file)
    raw.prepare("UPDATE service_lease SET owner = 'newer', pid = 1, hostname = 'elsewhere.example'").run()
    await expect(store.write(f.id, 1, change(f, 'failed'))).rejects.toThrow(/this store lost the file to another identification service \(pid 1 on host elsewhere\.example/)
    await expect(store.create(newFlow(31))).rejects.toBeInstanceOf(SqliteFileInUseError)
    await expect(store.acquireLease(f.id, 'r', 1000)).rejects.toBeInstanceOf(SqliteFileInUseError)
    await expect(store.appendEvent(f.id, { type: 'CANCEL' }, 'r')).rejects.toBeInstanceOf(SqliteFileInUseError)
    expect(raw.prepare('SELECT version, state FROM flows').all()).toEqual([{ version: 1, state: 'initiating' }])
    await store.close()
    expect(raw.prepare('SELECT owner FROM service_lease').get()).toEqual({ owner: 'newer' }) // close() does not remove another's lease
    // A lease row removed under a store: it writes nothing either.
    raw.prepare('DELETE FROM service_lease').run()
    const gone = createSqliteFlowStore(file)
    raw.prepare('DELETE FROM service_lease').run()
    await expect(gone.create(newFlow(32))).rejects.toThrow(/this store's lease on the file was removed; it writes nothing more/)
    await gone.close()
    raw.close()
  })

  it('createSqliteSnapshotStore takes the file lease at its first FlowStore call only', async () => {
    const file = tempFile()
    // Two snapshot stores on one file, as runIdentification processes use it: no lease involved.
    const a = createSqliteSnapshotStore(file)
    const b = createSqliteSnapshotStore(file)
    await a.set('k', { v: 1 })
    expect(await b.get('k')).toEqual({ v: 1 })
    // a becomes a service's store; b cannot, but stays a working SnapshotStore.
    expect(await a.counts()).toEqual({ working: 0, parked: 0, ended: 0 })
    await expect(b.counts()).rejects.toThrow(inUse)
    await expect(b.create(newFlow(40))).rejects.toBeInstanceOf(SqliteFileInUseError)
    expect(() => createSqliteFlowStore(file)).toThrow(inUse)
    await b.set('k', { v: 2 })
    expect(await a.get('k')).toEqual({ v: 2 })
    // get: a flow id gives the record, any other key the key-value table.
    const f = newFlow(41)
    await a.create(f)
    expect(await a.get(f.id)).toMatchObject({ id: f.id, version: 1, view: f.view })
    expect(await b.get(f.id)).toMatchObject({ id: f.id })
    await a.set('00000000-0000-4000-8000-00000000abcd', { plain: true }) // a UUID key that is no flow
    expect(await a.get('00000000-0000-4000-8000-00000000abcd')).toEqual({ plain: true })
    await a.close()
    expect(await b.counts()).toEqual({ working: 1, parked: 0, ended: 0 }) // the file is free now
    await b.close()
    await expect(b.get('k')).rejects.toThrow(/closed/)
  })

  it("':memory:' databases are private and take no lease", async () => {
    const a = createSqliteFlowStore(':memory:')
    const b = createSqliteFlowStore(':memory:')
    await a.create(newFlow(50))
    expect(await b.counts()).toEqual({ working: 0, parked: 0, ended: 0 })
    await a.close()
    await b.close()
  })
})

describe('SQLite flow store under the identification service', () => {
  it('createIdentificationService takes createSqliteSnapshotStore(file) and createSqliteFlowStore(file); flows survive a restart; a second service on the file is refused', async () => {
    const env = simSetup()
    const file = tempFile()
    const store = createSqliteSnapshotStore(file, { now: () => env.clock.now() })
    const service = createIdentificationService({ api: env.api, store, clock: env.clock })
    await service.ready
    const started = await service.start({ userId: 60, userType: 0 })
    expect(started.state).toBe('identifying')
    expect(await service.history(started.id)).toContainEqual(expect.objectContaining({ kind: 'view', view: expect.objectContaining({ state: 'identifying' }) }))

    // A second service on the same file: its ready and its calls fail at once, saying why.
    expect(() => createSqliteFlowStore(file)).toThrow(inUse)
    const second = createIdentificationService({ api: env.api, store: createSqliteSnapshotStore(file), clock: env.clock, onError: () => {} })
    const refused = await second.ready.then(() => null, (e: unknown) => e)
    expect(refused).toBeInstanceOf(DependencyError)
    expect((refused as Error).message).toMatch(inUse)
    await expect(second.start({ userId: 61, userType: 0 })).rejects.toThrow(inUse)
    await second.close()

    await service.close()
    await store.close()
    const reopened = createSqliteFlowStore(file, { now: () => env.clock.now() })
    const next = createIdentificationService({ api: env.api, store: reopened, clock: env.clock })
    await next.ready
    expect(await next.get(started.id)).toMatchObject({ id: started.id, state: 'identifying', url: started.url })
    expect((await next.start({ userId: 60, userType: 0 })).id).toBe(started.id) // the user's unfinished flow
    await next.close()
    await reopened.close()
  })
})
