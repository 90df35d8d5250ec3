export { runIdentification } from './runIdentification.js'
export type {
  RunIdentificationOptions,
  IdentificationOutcome,
  IdentificationAction,
  ActionOutcome,
  IdentificationSnapshot,
} from './runIdentification.js'
export { createPasswordGrantTokenSource } from './tokenSource.js'
export type { PasswordGrantOptions, PasswordGrantTokenSource, AccessTokenGetter } from './tokenSource.js'
export { createFileSnapshotStore, createMemorySnapshotStore } from './snapshotStore.js'
export type { SnapshotStore } from './snapshotStore.js'
export { createIdentificationService, FlowNotFoundError, isFlowId } from './identificationService.js'
export type { IdentificationService, IdentificationServiceOptions, FlowView, StartOptions } from './identificationService.js'
export { createIdentificationHandler } from './identificationHandler.js'
export type { IdentificationHandlerOptions } from './identificationHandler.js'
export { createSqliteSnapshotStore, SQLITE_SCHEMA_VERSION } from './sqliteSnapshotStore.js'
export type { SqliteSnapshotStore } from './sqliteSnapshotStore.js'
