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
export { createHttpApi } from '../http/httpApi.js'
export type { HttpApiOptions, GetAccessToken } from '../http/httpApi.js'
export { TenNPayError } from '../http/errors.js'
export { describeFailure, describeState, registerMessages } from '../../messages/index.js'
export type { DescribeOptions, FailureAction, FailureText, Messages } from '../../messages/index.js'
