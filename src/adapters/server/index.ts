export { createIdentificationService, isFlowId } from './identificationService.js'
export type { IdentificationService, IdentificationServiceOptions, StartOptions } from './identificationService.js'
export type { ServiceTelemetry, PhaseTelemetry } from './telemetry.js'
export { createIdentificationHandler, MAX_BODY_BYTES } from './identificationHandler.js'
export type { IdentificationHandler, IdentificationHandlerOptions, HandlerContext } from './identificationHandler.js'
export { createMemoryFlowStore } from './memoryFlowStore.js'
export type { MemoryFlowStoreOptions } from './memoryFlowStore.js'
export { createLocalCoordinator } from './localCoordinator.js'
export { FlowNotFoundError, FlowActionError, DependencyError, ServiceClosedError, UnfinishedFlowExistsError } from './errors.js'
export { HISTORY_LIMIT } from './types.js'
export type {
  FlowView,
  FlowState,
  FlowStore,
  FlowRecord,
  FlowLease,
  FlowWrite,
  WriteFence,
  LeasedFlowRecord,
  NewFlow,
  InboxEntry,
  FlowHistoryEntry,
  FlowCounts,
  FlowChange,
  FlowCoordinator,
  CoordinatorHandlers,
} from './types.js'
