/** The chart's top-level states (the `value` of a snapshot, possibly nested below these names). */
export type IdentificationState =
  | 'idle'
  | 'initiating'
  | 'identifying'
  | 'pollingA'
  | 'phaseA'
  | 'signing'
  | 'pollingB'
  | 'phaseB'
  | 'finalized'
  | 'failed'

/** `0` an individual, `1` a merchant (the provider's `userType` path segment). */
export type UserType = 0 | 1

/** What the provider's initiate and status endpoints answer. Every field may be `null`. */
export interface StatusResponse {
  videoIdentificationUrl: string | null
  videoIdentificationStatus: string | null
  message: string | null
}

/** What the provider's finalize endpoint answers. Store both ids for later CRM calls. */
export interface FinalizeResponse {
  /** GUID for audit and tracing. */
  correlationId: string
  /** The CRM id of the identified person. */
  individualId: number
}

/** Body of `POST /Enrollment/initiate-external-identification`. Always complete. */
export interface InitiateRequest {
  userId: number
  isRestartIdentification: boolean
  correlationType: number
  /** `null` or absent: not sent. */
  localTimezone?: string | null
  userAgent?: string | null
  browserLanguage?: string | null
  userLanguage?: string | null
  deviceName?: string | null
}

/** Body of `POST /Enrollment/finalize-external-identification`. Always complete. */
export interface FinalizeRequest {
  userId: number
  bTrustAppCallBackId: string | null
  correlationType: number
}

/** Options every API call takes. */
export interface RequestOptions {
  /** Aborts the request; the promise then rejects with the signal's reason. */
  signal?: AbortSignal
}

/**
 * The provider's HTTP API as the chart needs it. `createHttpApi` builds one on top of `fetch`;
 * tests and custom transports can supply their own.
 */
export interface IdentificationApi {
  initiate(req: InitiateRequest, opts?: RequestOptions): Promise<StatusResponse>
  getStatus(req: { userId: number; userType: UserType }, opts?: RequestOptions): Promise<StatusResponse>
  finalize(req: FinalizeRequest, opts?: RequestOptions): Promise<FinalizeResponse>
}

/** The kinds of `TenNPayError`. */
export type ErrorKind = 'unauthorized' | 'rejected' | 'transient' | 'bad-response' | 'network' | 'timeout'

/** Why a flow is in `failed`. */
export type FailureReason =
  | 'vendor-error'
  | 'timeout'
  | 'unauthorized'
  | 'rejected'
  | 'redirect-failed'
  | 'unsafe-url'
  | 'cancelled'

/** The step a failure belongs to. */
export type FailurePhase = 'initiate' | 'A' | 'B' | 'finalize'

/** A request error as kept in context: plain JSON, never the token. */
export interface ErrorInfo {
  kind: ErrorKind
  httpStatus?: number
  message: string
}

/** `context.failure`: why the flow is in `failed` and whether `RETRY` may leave it. */
export interface Failure {
  reason: FailureReason
  retryable: boolean
  phase?: FailurePhase
  httpStatus?: number
  vendorStatus?: string
  message: string
  lastError?: ErrorInfo
}

/** The output of `finalized`. */
export type IdentificationResult = FinalizeResponse

/** Polling and deadline settings. All durations are milliseconds. */
export interface PollingOptions {
  /**
   * The pause between polls while the status is fresh.
   * @default 2000
   */
  intervalMs?: number
  /**
   * The pause the schedule backs off to during a long wait without a status change.
   * @default 5000
   */
  maxIntervalMs?: number
  /**
   * Random spread of each pause, as a fraction (0.1 = ±10 %).
   * @default 0.1
   */
  jitter?: number
  /**
   * How long a phase may go without a status change before it fails with `timeout`.
   * @default 120000
   */
  phaseTimeoutMs?: number
  /**
   * How long finalize is retried (on retryable errors and on `400`, the provider being behind
   * its own status endpoint) before it fails with `timeout`.
   * @default 600000
   */
  finalizeTimeoutMs?: number
  /**
   * After a Fail redirect, how long the status endpoint is polled for a decisive answer before
   * the flow fails with `redirect-failed`: a status that completes the step goes on as after a
   * Success redirect, `ERROR` or a vendor code fails with `vendor-error`. A redirect is only a
   * hint; the status endpoint is the source of truth.
   * @default 10000
   */
  failConfirmMs?: number
}

/** Audit fields sent with initiate. `null` (as the provider documents them) is the same as absent: not sent. */
export interface InitiateOptions {
  /** e.g. `"Europe/Sofia"` */
  localTimezone?: string | null
  /** e.g. `"Chrome/119.0"` */
  userAgent?: string | null
  /** e.g. `"bg"` */
  browserLanguage?: string | null
  /** e.g. `"bg"` */
  userLanguage?: string | null
  /** e.g. `"MacBook Pro"` */
  deviceName?: string | null
  /**
   * @default 0
   */
  correlationType?: number
}

/** Fields sent with finalize. */
export interface FinalizeOptions {
  /** Callback id from the signing provider; `null` when not known. @default null */
  bTrustAppCallBackId?: string | null
  /** @default 0 */
  correlationType?: number
}

/** The chart's input. Validated before anything runs; a bad field throws a `TypeError` naming it. */
export interface IdentificationInput {
  /** The provider's user id, `1..2147483647`. */
  userId: number
  /** `0` individual, `1` merchant. */
  userType: UserType
  /** Extra status codes to treat as "keep polling" (compared case-insensitively). */
  pendingStatuses?: string[]
  /** When given, provider URLs must point at one of these hosts. */
  allowedHosts?: string[]
  /** Polling and deadline settings. */
  polling?: PollingOptions
  /** Audit fields for initiate. */
  initiate?: InitiateOptions
  /** Fields for finalize. */
  finalize?: FinalizeOptions
}

/** Polling settings with every default filled in. */
export type ResolvedPolling = Required<PollingOptions>

/** Input with every default filled in, as the chart keeps it in context. */
export interface ResolvedInput {
  userId: number
  userType: UserType
  pendingStatuses: string[]
  allowedHosts: string[]
  polling: ResolvedPolling
  /** The audit fields that have a value (`null` and absent ones are left out). */
  initiate: { localTimezone?: string; userAgent?: string; browserLanguage?: string; userLanguage?: string; deviceName?: string; correlationType?: number }
  finalize: { bTrustAppCallBackId: string | null; correlationType: number }
}

/** The phases in which the status endpoint is polled. */
export type PollPhase = 'A' | 'B'

/** The chart's context: plain JSON, never a token or a function. Times are absolute ms of the injected clock. */
export interface IdentificationContext extends ResolvedInput {
  /** The next initiate sends `isRestartIdentification: true`. */
  restart: boolean
  /** The step whose worker runs now (`null` outside `initiating`, `pollingA`, `pollingB`, `phaseB`). */
  step: FailurePhase | null
  /** The ID-capture URL from initiate (already checked with `isSafeUrl`). */
  identificationUrl: string | null
  /** The signing URL from phase A (already checked with `isSafeUrl`). */
  signingUrl: string | null
  /** The last `videoIdentificationStatus` seen, as the provider wrote it. */
  status: string | null
  /** The last `message` the provider sent. */
  message: string | null
  /** When the running step fails (`null` until its worker arms it). */
  deadlineAt: number | null
  /** When the running worker sends its next request (`null`: at once). */
  nextAttemptAt: number | null
  /** The last retryable request error of the running step. */
  lastError: ErrorInfo | null
  /** `DOCUMENT_SIGN_SUCCESS` was seen: the only way into `phaseB`. */
  signed: boolean
  /** The finalize body, fixed when `phaseB` is first entered so that every retry is identical. */
  finalizePayload: FinalizeRequest | null
  /** Why the flow is in `failed`. */
  failure: Failure | null
  /** The ids from finalize. */
  result: IdentificationResult | null
}

/** What every worker's input holds: the step, its absolute times and the schedule. */
export interface StepInput {
  /** The step, sent back in every `attempt.*` event. */
  phase: FailurePhase
  /** The flow's user (a host that drives many flows tells them apart by it). */
  userId: number
  userType: UserType
  /** When the step fails; `null`: the worker arms `now + timeoutMs` first. */
  deadlineAt: number | null
  /** When the next request goes (`null`: at once, after a timer turn). */
  nextAttemptAt: number | null
  /** How long after the last change the step fails. */
  timeoutMs: number
  polling: ResolvedPolling
}
/** Input of the `initiator` worker. */
export interface InitiatorInput extends StepInput {
  phase: 'initiate'
  request: InitiateRequest
}
/** Input of the `statusPoller` worker. */
export interface PollerInput extends StepInput {
  phase: PollPhase
  pendingStatuses: string[]
  /** The normalised status the poll starts from; a different one is a change. */
  lastStatus: string
  /**
   * A confirming poll after a Fail redirect: only a status that completes the step, `ERROR`
   * or a vendor code is reported; anything else is polled again until the deadline.
   */
  confirm: boolean
}
/** Input of the `finalizer` worker. */
export interface FinalizerInput extends StepInput {
  phase: 'finalize'
  payload: FinalizeRequest
  /**
   * One attempt only (a `CANCEL` met finalize: one last, idempotent finalize keeps a result the
   * provider already has); any error ends the run with `attempt.failed`.
   */
  once: boolean
}

/**
 * Where a flow stands, for a UI: a discriminated union on `state`, so that a `switch` over it is
 * checked for completeness and `result` is there exactly when the flow is `finalized`.
 */
export type IdentificationView =
  | { state: 'finalized'; result: IdentificationResult; failure: null }
  | { state: 'failed'; failure: Failure; result: null }
  | { state: Exclude<IdentificationState, 'finalized' | 'failed'>; failure: null; result: null }
