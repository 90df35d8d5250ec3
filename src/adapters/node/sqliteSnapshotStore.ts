import { createRequire } from 'node:module'
import type { SnapshotStore } from './snapshotStore.js'

/** The schema version this code writes (`PRAGMA user_version`). */
export const SQLITE_SCHEMA_VERSION = 2

interface Db {
  pragma(s: string, o?: { simple?: boolean }): unknown
  exec(sql: string): void
  prepare(sql: string): { get(...a: unknown[]): unknown; all(...a: unknown[]): unknown[]; run(...a: unknown[]): unknown }
  transaction<T extends (...a: never[]) => unknown>(fn: T): T
  close(): void
}

/**
 * Migrations, by the version they lead to. Version 1 stored `kv(key, value)`; version 2 adds
 * `updated_at` and an index for listing by prefix.
 */
const MIGRATIONS: Record<number, string> = {
  1: `CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  2: `ALTER TABLE kv ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX IF NOT EXISTS kv_updated_at ON kv (updated_at)`,
}

/** A SQLite store, with `close()` for shutting down. */
export type SqliteSnapshotStore = Required<SnapshotStore> & {
  /** Closes the database. */
  close(): void
  /** The schema version of the open database. */
  readonly schemaVersion: number
}

/**
 * A store in one SQLite file, through `better-sqlite3` version 12 (an optional peer
 * dependency: `npm install better-sqlite3@12`). The embedded default for servers: WAL
 * journal, one row per key, a schema version migrated forward on open.
 *
 * @param path the database file (`':memory:'` for a private in-memory one)
 * @example const store = createSqliteSnapshotStore('identifications.db')
 */
export function createSqliteSnapshotStore(path: string, options: { now?: () => number } = {}): SqliteSnapshotStore {
  if (typeof path !== 'string' || path === '') throw new TypeError('createSqliteSnapshotStore: path must be a non-empty string')
  let Database: new (path: string) => Db
  try {
    Database = createRequire(import.meta.url)('better-sqlite3') as typeof Database
  } catch (err) {
    throw new Error('createSqliteSnapshotStore needs the better-sqlite3 package (version 12 on Node 20): npm install better-sqlite3@12', {
      cause: err,
    })
  }
  const now = options.now ?? Date.now
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  migrate(db)
  const getStmt = db.prepare('SELECT value FROM kv WHERE key = ?')
  const setStmt = db.prepare(
    'INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
  )
  const delStmt = db.prepare('DELETE FROM kv WHERE key = ?')
  const listStmt = db.prepare('SELECT key FROM kv WHERE key >= ? AND key < ?')
  let closed = false
  const open = () => {
    if (closed) throw new Error('createSqliteSnapshotStore: the store is closed')
  }
  return {
    async get(key) {
      open()
      const row = getStmt.get(key) as { value: string } | undefined
      return row === undefined ? undefined : JSON.parse(row.value)
    },
    async set(key, snapshot) {
      open()
      setStmt.run(key, JSON.stringify(snapshot), now())
    },
    async delete(key) {
      open()
      delStmt.run(key)
    },
    async list(prefix) {
      open()
      return (listStmt.all(prefix, `${prefix}\uffff`) as { key: string }[]).map((r) => r.key)
    },
    close() {
      if (!closed) db.close()
      closed = true
    },
    get schemaVersion() {
      return db.pragma('user_version', { simple: true }) as number
    },
  }
}

/** Brings the database to {@link SQLITE_SCHEMA_VERSION}, one version at a time, each in a transaction. */
function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > SQLITE_SCHEMA_VERSION) {
    throw new Error(`createSqliteSnapshotStore: the database has schema version ${current}; this library knows up to ${SQLITE_SCHEMA_VERSION}`)
  }
  for (let v = current + 1; v <= SQLITE_SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!)
      db.pragma(`user_version = ${v}`)
    })()
  }
}
