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
  localTimezone?: string
  userAgent?: string
  browserLanguage?: string
  userLanguage?: string
  deviceName?: string
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
   * How long finalize is retried on retryable errors before it fails with `timeout`.
   * @default 600000
   */
  finalizeTimeoutMs?: number
}

/** Audit fields sent with initiate. */
export interface InitiateOptions {
  /** e.g. `"Europe/Sofia"` */
  localTimezone?: string
  /** e.g. `"Chrome/119.0"` */
  userAgent?: string
  /** e.g. `"bg"` */
  browserLanguage?: string
  /** e.g. `"bg"` */
  userLanguage?: string
  /** e.g. `"MacBook Pro"` */
  deviceName?: string
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
