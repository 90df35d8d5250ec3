import type { ErrorInfo, FailurePhase, FinalizeResponse, StatusResponse } from './types.js'

/** `REDIRECT`: the user came back from the provider (Success or Fail URL). */
export interface RedirectEvent {
  type: 'REDIRECT'
  outcome: 'success' | 'fail'
  /** Which step the redirect ends; only read in `idle` (a flow started elsewhere). @default 'identification' */
  step?: 'identification' | 'signing'
  /** Callback id from the signing provider, sent with finalize. */
  bTrustAppCallBackId?: string | null
}

/** Events the host (an adapter, a UI, a test) sends. */
export type HostEvent =
  | { type: 'START' }
  | RedirectEvent
  | { type: 'CONTINUE' }
  | { type: 'RETRY' }
  | { type: 'RESTART' }
  | { type: 'CANCEL' }
  /** A redirect came back but this browser holds no flow (expired tab, another device). Accepted in `idle`. */
  | { type: 'LOST' }

/**
 * Events the invoked workers send back. They carry absolute times from the injected clock so
 * that the chart itself never reads a clock, and the `phase` of the step that sent them so that
 * the chart handles `attempt.*` once, at its root, for every step.
 */
export type WorkerEvent =
  /** A worker started a fresh deadline (absolute ms). */
  | { type: 'attempt.armed'; phase: FailurePhase; deadlineAt: number }
  /** A retryable request error; the worker tries again at `nextAttemptAt`. */
  | { type: 'attempt.error'; phase: FailurePhase; error: ErrorInfo; nextAttemptAt: number }
  /** A request error that no retry can fix (`unauthorized`, `rejected`). */
  | { type: 'attempt.failed'; phase: FailurePhase; error: ErrorInfo }
  /** The deadline passed without success. */
  | { type: 'attempt.timeout'; phase: FailurePhase }
  /** Initiate answered. */
  | { type: 'initiate.ok'; response: StatusResponse }
  /** The status changed (or reached an end) at `at`; a pending one is polled again at `nextAttemptAt`. */
  | { type: 'poll.status'; response: StatusResponse; at: number; nextAttemptAt: number }
  /** Finalize answered. */
  | { type: 'finalize.ok'; result: FinalizeResponse }

/** Every event the chart accepts. */
export type IdentificationEvent = HostEvent | WorkerEvent
