export { identificationMachine } from './identificationMachine.js'
export type {
  IdentificationContext,
  IdentificationMachine,
  InitiatorInput,
  PollerInput,
  FinalizerInput,
} from './identificationMachine.js'
export type { HostEvent, IdentificationEvent, RedirectEvent, WorkerEvent } from './events.js'
export { classifyStatus, normalizeStatus, STATUS } from './status.js'
export type { PollPhase, StatusClass } from './status.js'
export { nextPollDelay, baseDelay, DEFAULT_POLLING, FAST_WINDOW_MS, RAMP_MS } from './schedule.js'
export { isSafeUrl } from './urls.js'
export type { SafeUrlOptions } from './urls.js'
export { identificationInputSchema, resolveInput } from './input.js'
export type { ResolvedInput } from './input.js'
export { assertIdentificationApi, createIdentificationWorkers, toErrorInfo } from './workers.js'
export type { WorkerDeps } from './workers.js'
export { systemClock } from './clock.js'
export type { Clock } from './clock.js'
export type * from './types.js'
export { wrapSnapshot, unwrapSnapshot, topState, SnapshotRejectedError, SNAPSHOT_VERSION } from './persistence.js'
export type { PersistedFlow } from './persistence.js'
export { chartToMermaid, chartToMarkdown } from './chart.js'
export { createModelOptions, modelEvents, serializeModelState } from './model.js'
export type { ModelOptions } from './model.js'
