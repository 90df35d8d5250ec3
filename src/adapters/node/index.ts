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
