/**
 * `10npay-identification`: the chart, the provider client, and what hosts of the chart need.
 * Adapters: `/node`, `/browser`, `/react`, `/server`, `/postgres`, `/bullmq`; test helpers:
 * `/testing`; the provider simulator: `/simulator`.
 */

// The chart
export { identificationMachine } from './machine/identificationMachine.js'
export type { IdentificationMachine, IdentificationTag } from './machine/identificationMachine.js'
export type { HostEvent, IdentificationEvent, RedirectEvent, WorkerEvent } from './machine/events.js'
export { createIdentificationWorkers } from './machine/workers.js'
export type { WorkerDeps, RequestOperation, RequestResult } from './machine/workers.js'
export { identificationInputSchema, resolveInput } from './machine/input.js'
export { classifyStatus, normalizeStatus, STATUS } from './machine/status.js'
export type { StatusClass } from './machine/status.js'
export { nextPollDelay, DEFAULT_POLLING } from './machine/schedule.js'
export { isSafeUrl } from './machine/urls.js'
export type { SafeUrlOptions } from './machine/urls.js'
export { redact } from './machine/redact.js'
export { systemClock } from './machine/clock.js'
export type { Clock } from './machine/clock.js'
export type { InspectOption } from './machine/inspect.js'
export { wrapSnapshot, unwrapSnapshot, topState, SnapshotRejectedError, SNAPSHOT_VERSION } from './machine/persistence.js'
export type { PersistedFlow } from './machine/persistence.js'
export { chartToMermaid, chartToMarkdown } from './machine/chart.js'
export type {
  UserType,
  StatusResponse,
  FinalizeResponse,
  InitiateRequest,
  FinalizeRequest,
  RequestOptions,
  IdentificationApi,
  ErrorKind,
  FailureReason,
  FailurePhase,
  ErrorInfo,
  Failure,
  IdentificationResult,
  IdentificationState,
  IdentificationView,
  PollingOptions,
  InitiateOptions,
  FinalizeOptions,
  IdentificationInput,
  ResolvedPolling,
  ResolvedInput,
  IdentificationContext,
  PollPhase,
} from './machine/types.js'

// Texts for people, per language
export { describeFailure, describeState, failureAction, registerMessages, en, bg } from './messages/index.js'
export type { DescribeOptions, FailureAction, FailureText, Messages } from './messages/index.js'

// The host layer every adapter shares: for hosts of your own
export { createFlowHost, restoreFlow, outcomeOf, viewOf } from './host/flowHost.js'
export type { FlowHost, FlowHostOptions, HostEffect, IdentificationOutcome, IdentificationSnapshot } from './host/flowHost.js'

// The provider client
export {
  createHttpApi,
  TenNPayError,
  kindForStatus,
  parseRetryAfter,
  statusResponseSchema,
  finalizeResponseSchema,
  initiateRequestSchema,
  finalizeRequestSchema,
  statusRequestSchema,
  tokenResponseSchema,
} from './adapters/http/index.js'
export type { HttpApiOptions, GetAccessToken, TenNPayErrorOptions, ErrorCause, HttpTransport, HttpAnswer, TransportRequest } from './adapters/http/index.js'

/**
 * @deprecated Moved to `10npay-identification/testing` (with `modelPaths`, `createPathProvider`
 * and `runPath`); kept here so that existing imports go on working.
 */
export { createModelOptions, modelEvents, serializeModelState } from './machine/model.js'
export type { ModelOptions } from './machine/model.js'
