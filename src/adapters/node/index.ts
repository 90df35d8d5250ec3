export { runIdentification } from './runIdentification.js'
export type {
  RunIdentificationOptions,
  IdentificationOutcome,
  IdentificationAction,
  ActionOutcome,
  IdentificationSnapshot,
} from './runIdentification.js'
export { createNodeTransport } from './nodeTransport.js'
export type { NodeTransport, NodeTransportOptions } from './nodeTransport.js'
export { createPasswordGrantTokenSource } from './tokenSource.js'
export type { PasswordGrantOptions, PasswordGrantTokenSource, AccessTokenGetter } from './tokenSource.js'
export { createFileSnapshotStore, createMemorySnapshotStore } from './snapshotStore.js'
export type { SnapshotStore } from './snapshotStore.js'
// The service and the handler live in `10npay-identification/server` (web-standard, no node:*);
// re-exported here for compatibility.
export * from '../server/index.js'
export { createSqliteSnapshotStore, SQLITE_SCHEMA_VERSION } from './sqliteSnapshotStore.js'
export type { SqliteSnapshotStore } from './sqliteSnapshotStore.js'
export { createSqliteFlowStore, openSqliteFlowReader, SqliteFileInUseError } from './sqliteFlowStore.js'
export type { SqliteFlowStore, SqliteFlowStoreOptions, SqliteFileLease } from './sqliteFlowStore.js'
