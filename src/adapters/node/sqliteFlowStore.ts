import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { hostname } from 'node:os'
import type { HostEvent } from '../../machine/events.js'
import { UnfinishedFlowExistsError } from '../server/errors.js'
import {
  HISTORY_LIMIT,
  type FlowCounts,
  type FlowHistoryEntry,
  type FlowListFilter,
  type FlowRecord,
  type FlowStore,
  type FlowWrite,
  type LeasedFlowRecord,
  type WriteFence,
  type InboxEntry,
  type NewFlow,
} from '../server/types.js'

/** The schema version this code writes (`PRAGMA user_version`). */
export const SQLITE_SCHEMA_VERSION = 3

interface Statement {
  get(...a: unknown[]): unknown
  all(...a: unknown[]): unknown[]
  run(...a: unknown[]): { changes: number; lastInsertRowid: number | bigint }
}

interface Transaction<A extends unknown[], R> {
  (...a: A): R
  immediate(...a: A): R
}

/** The part of a `better-sqlite3` database this module uses. */
export interface SqliteDatabase {
  pragma(s: string, o?: { simple?: boolean }): unknown
  exec(sql: string): void
  prepare(sql: string): Statement
  transaction<A extends unknown[], R>(fn: (...a: A) => R): Transaction<A, R>
  close(): void
}

/**
 * Migrations, by the version they lead to. Version 1 stored `kv(key, value)` (the
 * `SnapshotStore` of `runIdentification`); version 2 adds `updated_at` and an index for listing
 * by prefix; version 3 adds the `FlowStore` of the identification service: `flows` (one row per
 * flow, its lease in three columns; a partial unique index keeps one unfinished flow per user),
 * `inbox` (host events by a global, never reused `seq`), `history` (the most recent
 * {@link HISTORY_LIMIT} entries per flow) and `service_lease` (the one service that has the
 * file).
 */
const MIGRATIONS: Record<number, string> = {
  1: `CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  2: `ALTER TABLE kv ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX IF NOT EXISTS kv_updated_at ON kv (updated_at)`,
  3: `CREATE TABLE flows (
        id TEXT PRIMARY KEY,
        user_type INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        working INTEGER NOT NULL,
        ended INTEGER NOT NULL,
        stretch INTEGER NOT NULL,
        flow TEXT NOT NULL,
        view TEXT NOT NULL,
        applied_seq INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_epoch INTEGER NOT NULL DEFAULT 0,
        lease_until INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX flows_one_unfinished ON flows (user_type, user_id) WHERE ended = 0;
      CREATE INDEX flows_by_user ON flows (user_type, user_id, created_at);
      CREATE INDEX flows_working ON flows (updated_at) WHERE working = 1;
      CREATE TABLE inbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        flow_id TEXT NOT NULL,
        event TEXT NOT NULL,
        received_by TEXT NOT NULL,
        at INTEGER NOT NULL
      );
      CREATE INDEX inbox_by_flow ON inbox (flow_id, seq);
      CREATE TABLE history (
        flow_id TEXT NOT NULL,
        n INTEGER NOT NULL,
        entry TEXT NOT NULL,
        PRIMARY KEY (flow_id, n)
      ) WITHOUT ROWID;
      CREATE TABLE service_lease (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        owner TEXT NOT NULL,
        pid INTEGER NOT NULL,
        hostname TEXT NOT NULL,
        since INTEGER NOT NULL,
        until INTEGER NOT NULL
      )`,
}

/** The reads the store and the read-only reader share. */
const READ_SQL = {
  byId: 'SELECT * FROM flows WHERE id = ?',
  latest: 'SELECT * FROM flows WHERE user_type = ? AND user_id = ? ORDER BY created_at DESC, rowid DESC LIMIT 1',
  history: 'SELECT entry FROM history WHERE flow_id = ? ORDER BY n',
  counts:
    'SELECT COALESCE(SUM(working = 1 AND ended = 0), 0) AS working, COALESCE(SUM(working = 0 AND ended = 0), 0) AS parked, COALESCE(SUM(ended = 1), 0) AS ended FROM flows',
}

type SqliteConstructor = new (path: string, options?: { readonly?: boolean; fileMustExist?: boolean }) => SqliteDatabase

/** Loads `better-sqlite3` (an optional peer) when first needed; the error names the package and the install command. */
function loadBetterSqlite3(caller: string): SqliteConstructor {
  try {
    return createRequire(import.meta.url)('better-sqlite3') as SqliteConstructor
  } catch (err) {
    throw new Error(`${caller} needs the better-sqlite3 package (version 12 on Node 20): npm install better-sqlite3@12`, { cause: err })
  }
}

/**
 * Opens (creating when missing) a SQLite file through `better-sqlite3` 12, loaded when first
 * needed, and migrates it to {@link SQLITE_SCHEMA_VERSION}.
 * @internal
 */
export function openSqliteFile(path: string, caller: string): SqliteDatabase {
  if (typeof path !== 'string' || path === '') throw new TypeError(`${caller}: path must be a non-empty string`)
  const Database = loadBetterSqlite3(caller)
  const db = new Database(path)
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    migrate(db, caller)
  } catch (err) {
    db.close()
    throw err
  }
  return db
}

/**
 * Brings the database to {@link SQLITE_SCHEMA_VERSION}, one version at a time, each in an
 * immediate transaction that reads the version again (two processes opening a file at once
 * migrate it once).
 */
function migrate(db: SqliteDatabase, caller: string): void {
  const version = () => db.pragma('user_version', { simple: true }) as number
  const current = version()
  if (current > SQLITE_SCHEMA_VERSION) {
    throw new Error(`${caller}: the database has schema version ${current}; this library knows up to ${SQLITE_SCHEMA_VERSION}`)
  }
  for (let v = current + 1; v <= SQLITE_SCHEMA_VERSION; v++) {
    db.transaction(() => {
      if (version() >= v) return
      db.exec(MIGRATIONS[v]!)
      db.pragma(`user_version = ${v}`)
    }).immediate()
  }
}

/** Who has a SQLite file as an identification service's store (a row of `service_lease`). */
export interface SqliteFileLease {
  /** A random id of the store object. */
  owner: string
  pid: number
  hostname: string
  /** When it took the file (epoch ms). */
  since: number
  /** Until when it holds it without renewing (epoch ms, the system clock). */
  until: number
}

/**
 * The SQLite file is the store of another identification service (another process, or another
 * store object in this process), or this store lost the file to one. `holder` says who (`null`:
 * the lease row was removed under this store).
 */
export class SqliteFileInUseError extends Error {
  override readonly name = 'SqliteFileInUseError'
  readonly code = 'ERR_SQLITE_FILE_IN_USE'
  constructor(
    readonly path: string,
    readonly holder: SqliteFileLease | null,
    /** This store had the file and lost it. */
    readonly lost = false,
  ) {
    const advice = 'a SQLite file serves one process — use createPostgresFlowStore with createBullMQCoordinator for several replicas'
    const who = holder && `pid ${holder.pid} on host ${holder.hostname}, since ${new Date(holder.since).toISOString()}`
    super(
      !lost
        ? `${path} is used by another identification service (${who}${holder?.hostname === hostname() ? '' : `, held until ${new Date(holder?.until ?? 0).toISOString()} unless renewed`})${
            holder?.pid === process.pid && holder.hostname === hostname() ? ' — another store object of this very process: close() it first, or share one store' : ''
          }; ${advice}`
        : holder
          ? `${path}: this store lost the file to another identification service (${who}); it writes nothing more, ${advice}`
          : `${path}: this store's lease on the file was removed; it writes nothing more, ${advice}`,
    )
  }
}

/** Options of {@link createSqliteFlowStore} (and of `createSqliteSnapshotStore`). */
export interface SqliteFlowStoreOptions {
  /**
   * The store's clock for flow leases, record times, inbox and history (epoch ms). The file
   * lease between processes always uses the system clock.
   * @default Date.now
   */
  now?: () => number
  /**
   * How long the file lease lasts unless renewed (ms); the store renews it every third of that
   * on an `unref()`'d timer. A process on another host that finds the lease of a vanished
   * process waits this long; on the same host a dead holder's lease is taken over at once.
   * @default 30000
   */
  fileLeaseMs?: number
}

/** A {@link FlowStore} on a SQLite file, with `close()`. */
export interface SqliteFlowStore extends FlowStore {
  readonly exclusive: true
  readonly kind: 'SQLite'
  /** Gives the file lease up and closes the database. */
  close(): Promise<void>
  /** The schema version of the open database. */
  readonly schemaVersion: number
}

interface FlowRow {
  id: string
  user_type: number
  user_id: number
  version: number
  state: string
  working: number
  ended: number
  stretch: number
  flow: string
  view: string
  applied_seq: number
  lease_owner: string | null
  lease_epoch: number
  lease_until: number
  created_at: number
  updated_at: number
}

const toRecord = (r: FlowRow): FlowRecord => ({
  id: r.id,
  userId: r.user_id,
  userType: r.user_type as FlowRecord['userType'],
  version: r.version,
  state: r.state as FlowRecord['state'],
  working: r.working === 1,
  ended: r.ended === 1,
  stretch: r.stretch,
  flow: JSON.parse(r.flow) as FlowRecord['flow'],
  view: JSON.parse(r.view) as FlowRecord['view'],
  appliedSeq: r.applied_seq,
  lease: r.lease_owner === null ? null : { owner: r.lease_owner, epoch: r.lease_epoch, until: r.lease_until },
  createdAt: r.created_at,
  updatedAt: r.updated_at,
})

/** Whether a process of this host with that pid exists (`EPERM`: it does, as another user's). */
function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** What {@link flowStoreOn} gives: the FlowStore's methods, minus the parts its caller adds. */
export type SqliteFlowStoreCore = Omit<SqliteFlowStore, 'close' | 'schemaVersion'> & {
  /** Takes the file lease now (throws {@link SqliteFileInUseError}). */
  takeFile(): void
  /** Gives the file lease up (the database stays open). */
  releaseFile(): void
}

/**
 * The {@link FlowStore} methods on an open, migrated database. The file lease is taken by
 * `takeFile()`, or by the first FlowStore call but `get`; `isOpen` throws once the caller closed
 * the database.
 * @internal
 */
export function flowStoreOn(db: SqliteDatabase, path: string, options: SqliteFlowStoreOptions, isOpen: () => void): SqliteFlowStoreCore {
  const now = options.now ?? Date.now
  const fileLeaseMs = options.fileLeaseMs ?? 30_000
  if (typeof now !== 'function') throw new TypeError('SQLite flow store: now must be a function')
  if (!Number.isFinite(fileLeaseMs) || fileLeaseMs <= 0) throw new TypeError(`SQLite flow store: fileLeaseMs must be a positive number (got ${String(fileLeaseMs)})`)

  const S = {
    byId: db.prepare(READ_SQL.byId),
    unfinished: db.prepare('SELECT * FROM flows WHERE user_type = ? AND user_id = ? AND ended = 0'),
    latest: db.prepare(READ_SQL.latest),
    insert: db.prepare(
      `INSERT INTO flows (id, user_type, user_id, version, state, working, ended, stretch, flow, view, applied_seq, lease_owner, lease_epoch, lease_until, created_at, updated_at)
       VALUES (@id, @userType, @userId, 1, @state, @working, @ended, @stretch, @flow, @view, 0, @leaseOwner, @leaseEpoch, @leaseUntil, @t, @t) RETURNING *`,
    ),
    update: db.prepare(
      `UPDATE flows SET version = version + 1, state = @state, working = @working, ended = @ended, stretch = @stretch,
       flow = @flow, view = @view, applied_seq = @appliedSeq, updated_at = @t WHERE id = @id RETURNING *`,
    ),
    setLease: db.prepare('UPDATE flows SET lease_owner = ?, lease_epoch = ?, lease_until = ? WHERE id = ? RETURNING *'),
    renewLease: db.prepare('UPDATE flows SET lease_until = ? WHERE id = ?'),
    releaseLease: db.prepare('UPDATE flows SET lease_until = 0 WHERE id = ? AND lease_owner = ? AND lease_epoch = ?'),
    append: db.prepare('INSERT INTO inbox (flow_id, event, received_by, at) VALUES (?, ?, ?, ?)'),
    events: db.prepare('SELECT seq, event, received_by, at FROM inbox WHERE flow_id = ? AND seq > ? ORDER BY seq'),
    pending: db.prepare('SELECT EXISTS (SELECT 1 FROM inbox WHERE flow_id = ? AND seq > ?) AS p'),
    dropApplied: db.prepare('DELETE FROM inbox WHERE flow_id = ? AND seq <= ?'),
    historyLast: db.prepare('SELECT COALESCE(MAX(n), 0) AS n FROM history WHERE flow_id = ?'),
    historyAdd: db.prepare('INSERT INTO history (flow_id, n, entry) VALUES (?, ?, ?)'),
    historyTrim: db.prepare('DELETE FROM history WHERE flow_id = ? AND n <= ?'),
    history: db.prepare(READ_SQL.history),
    // Working flows, and waiting ones with inbox events not applied (found from the inbox, which
    // holds only events not applied yet).
    orphans: db.prepare(
      `SELECT id, stretch, working FROM (
         SELECT id, stretch, working, updated_at, rowid AS r FROM flows
         WHERE working = 1 AND (@all = 1 OR lease_owner IS NULL OR lease_until <= @t)
         UNION
         SELECT f.id, f.stretch, f.working, f.updated_at, f.rowid FROM inbox AS i JOIN flows AS f ON f.id = i.flow_id
         WHERE f.working = 0 AND i.seq > f.applied_seq AND (@all = 1 OR f.lease_owner IS NULL OR f.lease_until <= @t)
       ) ORDER BY updated_at, r LIMIT @limit`,
    ),
    counts: db.prepare(READ_SQL.counts),
    fileLease: db.prepare('SELECT owner, pid, hostname, since, until FROM service_lease WHERE id = 1'),
    takeFile: db.prepare(
      `INSERT INTO service_lease (id, owner, pid, hostname, since, until) VALUES (1, @owner, @pid, @hostname, @since, @until)
       ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, pid = excluded.pid, hostname = excluded.hostname, since = excluded.since, until = excluded.until`,
    ),
    renewFile: db.prepare('UPDATE service_lease SET until = ? WHERE id = 1 AND owner = ?'),
    releaseFile: db.prepare('DELETE FROM service_lease WHERE id = 1 AND owner = ?'),
  }

  // ——— the file lease: one service per file ———
  const me = randomUUID()
  const host = hostname()
  /** A private in-memory database has nobody to share it with. */
  const fileless = path === ':memory:'
  let holding = false
  let heartbeat: ReturnType<typeof setInterval> | undefined

  const takeFileTx = db.transaction(() => {
    const t = Date.now()
    const row = S.fileLease.get() as SqliteFileLease | undefined
    if (row && row.owner !== me && row.until > t) {
      // A live lease: taken over only from a process of this host that is gone (SIGKILL, crash).
      if (row.hostname !== host || alive(row.pid)) throw new SqliteFileInUseError(path, row)
    }
    S.takeFile.run({ owner: me, pid: process.pid, hostname: host, since: row?.owner === me ? row.since : t, until: t + fileLeaseMs })
  })
  function takeFile() {
    if (fileless || holding) return
    takeFileTx.immediate()
    holding = true
    heartbeat = setInterval(() => {
      try {
        S.renewFile.run(Date.now() + fileLeaseMs, me)
      } catch {
        // busy or closed: the next beat tries again; a lost lease shows at the next write
      }
    }, Math.max(10, Math.floor(fileLeaseMs / 3)))
    heartbeat.unref()
  }
  /** Inside a write transaction: this store still has the file (a process paused past its lease may have lost it). */
  function assertFile() {
    if (fileless) return
    const row = S.fileLease.get() as SqliteFileLease | undefined
    if (row?.owner !== me) {
      throw new SqliteFileInUseError(path, row ?? null, true)
    }
  }
  function releaseFile() {
    if (heartbeat !== undefined) clearInterval(heartbeat)
    heartbeat = undefined
    if (holding) {
      holding = false
      try {
        S.releaseFile.run(me)
      } catch {
        // the lease runs out by itself
      }
    }
  }

  /** A read: the store must be open and have the file. */
  const read = () => {
    isOpen()
    takeFile()
  }
  /** A write: one immediate transaction that first checks this store still has the file. */
  function write<A extends unknown[], R>(fn: (...a: A) => R): (...a: A) => R {
    const tx = db.transaction((...a: A) => {
      assertFile()
      return fn(...a)
    })
    return (...a: A) => {
      read()
      return tx.immediate(...a)
    }
  }

  const addHistory = (id: string, entries: FlowHistoryEntry[] | undefined) => {
    if (!entries?.length) return
    let n = (S.historyLast.get(id) as { n: number }).n
    for (const e of entries) S.historyAdd.run(id, ++n, JSON.stringify(e))
    S.historyTrim.run(id, n - HISTORY_LIMIT)
  }
  const flowRow = (id: string) => S.byId.get(id) as FlowRow | undefined
  const bit = (b: boolean) => (b ? 1 : 0)

  const create = write((flow: NewFlow, history?: FlowHistoryEntry[], lease?: { owner: string; ttlMs: number }) => {
    const existing = S.unfinished.get(flow.userType, flow.userId) as FlowRow | undefined
    if (existing) return { created: false, record: toRecord(existing) }
    if (flowRow(flow.id)) throw new Error(`SQLite flow store: flow ${flow.id} exists`)
    const t = now()
    const row = S.insert.get({
      leaseOwner: lease ? lease.owner : null,
      leaseEpoch: lease ? 1 : 0,
      leaseUntil: lease ? t + lease.ttlMs : 0,
      id: flow.id,
      userType: flow.userType,
      userId: flow.userId,
      state: flow.state,
      working: bit(flow.working),
      ended: bit(flow.ended),
      stretch: flow.stretch,
      flow: JSON.stringify(flow.flow),
      view: JSON.stringify(flow.view),
      t,
    }) as FlowRow
    addHistory(flow.id, history)
    return { created: true, record: toRecord(row) }
  })

  const writeFlow = write((id: string, expectedVersion: number, changes: FlowWrite, fence?: WriteFence) => {
    const r = flowRow(id)
    if (!r || r.version !== expectedVersion) return null
    if (fence && (r.lease_owner !== fence.owner || r.lease_epoch !== fence.epoch)) return null
    if (!changes.ended && r.ended === 1) {
      // A flow that ended and comes back (RETRY, RESTART) is the user's unfinished one again.
      const other = S.unfinished.get(r.user_type, r.user_id) as FlowRow | undefined
      if (other && other.id !== id) throw new UnfinishedFlowExistsError(r.user_type, r.user_id, other.id)
    }
    const row = S.update.get({
      id,
      state: changes.state,
      working: bit(changes.working),
      ended: bit(changes.ended),
      stretch: changes.stretch,
      flow: JSON.stringify(changes.flow),
      view: JSON.stringify(changes.view),
      appliedSeq: changes.appliedSeq,
      t: now(),
    }) as FlowRow
    addHistory(id, changes.history)
    // Applied events are in the history now; the inbox keeps only what is still to apply.
    S.dropApplied.run(id, changes.appliedSeq)
    if (fence?.release) {
      S.releaseLease.run(id, fence.owner, fence.epoch)
      row.lease_until = 0
    }
    return toRecord(row)
  })

  const acquireLease = write((id: string, owner: string, ttlMs: number, o?: { force?: boolean }) => {
    const r = flowRow(id)
    if (!r) return null
    const t = now()
    if (!o?.force && r.lease_owner !== null && r.lease_until > t && r.lease_owner !== owner) return null
    const leased: LeasedFlowRecord = toRecord(S.setLease.get(owner, r.lease_epoch + 1, t + ttlMs, id) as FlowRow)
    leased.pending = (S.pending.get(id, r.applied_seq) as { p: number }).p === 1
    return leased
  })

  const renewLeases = write((owner: string, leases: { id: string; epoch: number }[], ttlMs: number) => {
    const t = now()
    const out: { id: string; pending: boolean }[] = []
    for (const { id, epoch } of leases) {
      const r = flowRow(id)
      if (!r || r.lease_owner !== owner || r.lease_epoch !== epoch || r.lease_until <= t) continue
      S.renewLease.run(t + ttlMs, id)
      out.push({ id, pending: (S.pending.get(id, r.applied_seq) as { p: number }).p === 1 })
    }
    return out
  })

  const releaseLease = write((id: string, owner: string, epoch: number) => {
    S.releaseLease.run(id, owner, epoch)
  })

  const appendEvent = write((id: string, event: HostEvent, receivedBy: string) => {
    if (!flowRow(id)) throw new Error(`SQLite flow store: no flow ${id}`)
    return Number(S.append.run(id, JSON.stringify(event), receivedBy, now()).lastInsertRowid)
  })

  return {
    exclusive: true,
    kind: 'SQLite',
    takeFile() {
      isOpen()
      takeFile()
    },
    releaseFile,
    async create(flow, history, lease) {
      return create(flow, history, lease)
    },
    async get(id) {
      isOpen()
      const r = flowRow(id)
      return r && toRecord(r)
    },
    async findByUser(userType, userId) {
      read()
      const r = S.latest.get(userType, userId) as FlowRow | undefined
      return r && toRecord(r)
    },
    async write(id, expectedVersion, changes, fence) {
      return writeFlow(id, expectedVersion, changes, fence)
    },
    async acquireLease(id, owner, ttlMs, o) {
      return acquireLease(id, owner, ttlMs, o)
    },
    async renewLeases(owner, leases, ttlMs) {
      return renewLeases(owner, leases, ttlMs)
    },
    async releaseLease(id, owner, epoch) {
      releaseLease(id, owner, epoch)
    },
    async appendEvent(id, event, receivedBy) {
      return appendEvent(id, event, receivedBy)
    },
    async events(id, afterSeq) {
      read()
      return (S.events.all(id, afterSeq) as { seq: number; event: string; received_by: string; at: number }[]).map(
        (e): InboxEntry => ({ seq: e.seq, event: JSON.parse(e.event) as HostEvent, receivedBy: e.received_by, at: e.at }),
      )
    },
    async orphans(limit, o) {
      read()
      return (S.orphans.all({ all: o?.includeHeld ? 1 : 0, t: now(), limit }) as { id: string; stretch: number; working: number }[]).map((r) => ({ id: r.id, stretch: r.stretch, working: r.working === 1 }))
    },
    async history(id) {
      read()
      return (S.history.all(id) as { entry: string }[]).map((h) => JSON.parse(h.entry) as FlowHistoryEntry)
    },
    async counts(): Promise<FlowCounts> {
      read()
      const c = S.counts.get() as FlowCounts
      return { working: c.working, parked: c.parked, ended: c.ended }
    },
  }
}

/**
 * The identification service's {@link FlowStore} in one SQLite file, through `better-sqlite3`
 * version 12 (an optional peer dependency: `npm install better-sqlite3@12`): the embedded
 * default for a service that runs in one process. WAL journal; the schema is migrated forward
 * on open (`PRAGMA user_version`, {@link SQLITE_SCHEMA_VERSION}); every method is one
 * transaction; a partial unique index keeps one unfinished flow per user.
 *
 * A SQLite file serves one process: the store takes a lease on the file when it opens it (a
 * `service_lease` row naming this process and host, renewed on an `unref()`'d timer and given
 * up by `close()`), and a second store on the same file — in another process or in this one —
 * throws a {@link SqliteFileInUseError} at once, naming the holder. A lease left by a process of
 * this host that no longer runs (SIGKILL, crash) is taken over at once; one of another host when
 * it expires ({@link SqliteFlowStoreOptions.fileLeaseMs}). Every write checks that the store
 * still has the file. For several replicas use `createPostgresFlowStore` with
 * `createBullMQCoordinator`.
 *
 * The same file can hold `runIdentification`'s snapshots too (`createSqliteSnapshotStore`).
 *
 * @param path the database file (created when missing; `':memory:'` for a private one)
 * @param options the clock (`now`) and the file lease's duration (`fileLeaseMs`): {@link SqliteFlowStoreOptions}
 * @throws SqliteFileInUseError when another identification service has the file
 * @example
 * import { createIdentificationService } from '10npay-identification/server'
 * import { createSqliteFlowStore } from '10npay-identification/node'
 *
 * const store = createSqliteFlowStore('identifications.db')
 * const service = createIdentificationService({ api, store })
 * process.on('SIGTERM', async () => {
 *   await service.close()
 *   await store.close()
 * })
 */
export function createSqliteFlowStore(path: string, options: SqliteFlowStoreOptions = {}): SqliteFlowStore {
  const db = openSqliteFile(path, 'createSqliteFlowStore')
  let closed = false
  const isOpen = () => {
    if (closed) throw new Error('createSqliteFlowStore: the store is closed')
  }
  let core: SqliteFlowStoreCore
  try {
    core = flowStoreOn(db, path, options, isOpen)
    core.takeFile()
  } catch (err) {
    db.close()
    throw err
  }
  const { takeFile: _take, releaseFile, ...store } = core
  return {
    ...store,
    async close() {
      if (closed) return
      closed = true
      releaseFile()
      db.close()
    },
    get schemaVersion() {
      return db.pragma('user_version', { simple: true }) as number
    },
  }
}

/** A read-only view of a SQLite flow store: for support tools while a service owns the file. */
export interface SqliteFlowReader extends Pick<FlowStore, 'get' | 'history' | 'counts' | 'findByUser'> {
  readonly kind: 'SQLite'
  listFlows(filter?: FlowListFilter): Promise<FlowRecord[]>
  close(): Promise<void>
}

/**
 * Opens a flow store's SQLite file read-only — no file lease, no migration, nothing written — so
 * that a support engineer can look at flows while the service runs (`10npay-id flows`).
 * @throws when the file does not exist or has another schema version
 * @example
 * const reader = openSqliteFlowReader('identifications.db')
 * const stuck = await reader.listFlows({ state: 'pollingA', updatedBefore: Date.now() - 600_000 })
 */
export function openSqliteFlowReader(path: string): SqliteFlowReader {
  if (typeof path !== 'string' || path === '') throw new TypeError('openSqliteFlowReader: path must be a non-empty string')
  const Database = loadBetterSqlite3('openSqliteFlowReader')
  const db = new Database(path, { readonly: true, fileMustExist: true })
  const version = db.pragma('user_version', { simple: true }) as number
  if (version !== SQLITE_SCHEMA_VERSION) {
    db.close()
    throw new Error(`openSqliteFlowReader: ${path} has schema version ${version}, this library reads version ${SQLITE_SCHEMA_VERSION} (open it once with the service to migrate it)`)
  }
  const byId = db.prepare(READ_SQL.byId)
  const latest = db.prepare(READ_SQL.latest)
  const history = db.prepare(READ_SQL.history)
  const counts = db.prepare(READ_SQL.counts)
  const list = db.prepare(
    `SELECT * FROM flows WHERE (@state IS NULL OR state = @state) AND (@reason IS NULL OR json_extract(view, '$.failure.reason') = @reason)
       AND (@userType IS NULL OR user_type = @userType) AND (@userId IS NULL OR user_id = @userId) AND (@before IS NULL OR updated_at < @before)
     ORDER BY updated_at DESC, rowid DESC LIMIT @limit`,
  )
  let closed = false
  const open = () => {
    if (closed) throw new Error('openSqliteFlowReader: closed')
  }
  return {
    kind: 'SQLite',
    async get(id) {
      open()
      const r = byId.get(id) as FlowRow | undefined
      return r && toRecord(r)
    },
    async findByUser(userType, userId) {
      open()
      const r = latest.get(userType, userId) as FlowRow | undefined
      return r && toRecord(r)
    },
    async history(id) {
      open()
      return (history.all(id) as { entry: string }[]).map((r) => JSON.parse(r.entry) as FlowHistoryEntry)
    },
    async counts() {
      open()
      const c = counts.get() as FlowCounts
      return { working: c.working, parked: c.parked, ended: c.ended }
    },
    async listFlows(filter = {}) {
      open()
      const rows = list.all({
        state: filter.state ?? null,
        reason: filter.reason ?? null,
        userType: filter.userType ?? null,
        userId: filter.userId ?? null,
        before: filter.updatedBefore ?? null,
        limit: filter.limit ?? 50,
      }) as FlowRow[]
      return rows.map(toRecord)
    },
    async close() {
      if (!closed) db.close()
      closed = true
    },
  }
}
