import { isFlowId } from '../server/identificationService.js'
import type { SnapshotStore } from './snapshotStore.js'
import { flowStoreOn, openSqliteFile, type SqliteFlowStore, type SqliteFlowStoreOptions } from './sqliteFlowStore.js'

export { SQLITE_SCHEMA_VERSION } from './sqliteFlowStore.js'

/**
 * One SQLite file as both stores: `runIdentification`'s {@link SnapshotStore} (`get`, `set`,
 * `delete`, `list` on the key-value table) and the identification service's `FlowStore` (every
 * other method). Only `get` is in both; see {@link createSqliteSnapshotStore}.
 */
export type SqliteSnapshotStore = Omit<Required<SnapshotStore>, 'get'> &
  Omit<SqliteFlowStore, 'get'> & {
    /**
     * A key shaped like a flow id (a UUID) that names a flow of the service reads its
     * `FlowRecord`; any other key reads the key-value table (the stored value, or `undefined`).
     */
    get<T = unknown>(key: string): Promise<T | undefined>
    /** Gives the file lease up (when the service took it) and closes the database. Synchronous; the promise is resolved. */
    close(): Promise<void>
  }

/**
 * A store in one SQLite file, through `better-sqlite3` version 12 (an optional peer
 * dependency: `npm install better-sqlite3@12`): WAL journal, a schema version migrated forward
 * on open (`PRAGMA user_version`).
 *
 * The object is a `SnapshotStore` for `runIdentification` (one row per key) and also a
 * `FlowStore`, so that `createIdentificationService({ api, store: createSqliteSnapshotStore(file) })`
 * works. The two share one method name, `get`: a key shaped like a flow id (a UUID) that names
 * a stored flow gives its `FlowRecord`; every other key reads the key-value table, as before
 * (`runIdentification`'s keys, `10npay-identification:<userType>:<userId>`, never look like
 * flow ids). For a service, prefer {@link createSqliteFlowStore}: it is only a `FlowStore`, and
 * it fails when it is created if another service has the file.
 *
 * A SQLite file serves one identification service. This object takes the file's lease at its
 * first `FlowStore` call (the service makes one as it starts), not on open, so that processes
 * that only use it as a `SnapshotStore` may share the file as before; if another service has
 * the file, that call and every later one reject with a `SqliteFileInUseError` saying who
 * (the service's `ready` and calls reject with it).
 *
 * @param path the database file (`':memory:'` for a private in-memory one)
 * @param options the clock for times stored (`now`, default `Date.now`) and the file lease's duration (`fileLeaseMs`, default 30 000 ms): `SqliteFlowStoreOptions`
 * @example
 * // runIdentification
 * const store = createSqliteSnapshotStore('identifications.db')
 * await runIdentification({ api, userId: 42, userType: 0, store, onAction })
 * @example
 * // the identification service (one process)
 * const service = createIdentificationService({ api, store: createSqliteSnapshotStore('identifications.db') })
 */
export function createSqliteSnapshotStore(path: string, options: SqliteFlowStoreOptions = {}): SqliteSnapshotStore {
  const db = openSqliteFile(path, 'createSqliteSnapshotStore')
  const now = options.now ?? Date.now
  let closed = false
  const open = () => {
    if (closed) throw new Error('createSqliteSnapshotStore: the store is closed')
  }
  let flows: ReturnType<typeof flowStoreOn>
  try {
    flows = flowStoreOn(db, path, options, open)
  } catch (err) {
    db.close()
    throw err
  }
  const getStmt = db.prepare('SELECT value FROM kv WHERE key = ?')
  const setStmt = db.prepare(
    'INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
  )
  const delStmt = db.prepare('DELETE FROM kv WHERE key = ?')
  const listStmt = db.prepare('SELECT key FROM kv WHERE key >= ? AND key < ?')
  const { takeFile: _take, releaseFile, get: getFlow, ...flowMethods } = flows
  return {
    ...flowMethods,
    async get<T>(key: string): Promise<T | undefined> {
      open()
      if (isFlowId(key)) {
        const record = await getFlow(key)
        if (record) return record as T
      }
      const row = getStmt.get(key) as { value: string } | undefined
      return row === undefined ? undefined : (JSON.parse(row.value) as T)
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
      if (!closed) {
        releaseFile()
        db.close()
      }
      closed = true
      return Promise.resolve()
    },
    get schemaVersion() {
      return db.pragma('user_version', { simple: true }) as number
    },
  }
}
