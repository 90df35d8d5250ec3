export { createBrowserIdentification, browserInitiateFields } from './browserIdentification.js'
export type {
  BrowserIdentification,
  BrowserIdentificationOptions,
  ResumeOptions,
  IdentificationSnapshot,
} from './browserIdentification.js'
export { createWebStorageSnapshotStore } from './webStorageSnapshotStore.js'
export { createWebLock, createLeaseLock } from './tabLock.js'
export type { TabLock, LeaseOptions } from './tabLock.js'
export { isSafeUrl } from '../../machine/urls.js'
export type { SnapshotStore } from '../node/snapshotStore.js'
