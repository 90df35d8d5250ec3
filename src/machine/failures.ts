import { redact } from './redact.js'
import { normalizeStatus } from './status.js'
import type { ErrorInfo, Failure, FailurePhase, FailureReason, PollPhase, StatusResponse } from './types.js'

/** How a phase is named in failure messages. */
const PHASE_NAME: Record<FailurePhase, string> = {
  initiate: 'Initiate',
  A: 'Phase A (waiting for the signing session)',
  B: 'Phase B (waiting for the signature)',
  finalize: 'Finalize',
}

/** The longest provider text kept in context (messages end up in snapshots and views). */
const MAX_PROVIDER_TEXT = 512

/** Provider text as the chart keeps it: secrets redacted, at most {@link MAX_PROVIDER_TEXT} characters. */
export function providerText(text: string | null): string | null {
  if (text === null) return null
  const r = redact(text)
  return r.length > MAX_PROVIDER_TEXT ? `${r.slice(0, MAX_PROVIDER_TEXT)}…` : r
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`

/**
 * Builds a failure. `retryable` says whether `RETRY` re-enters the failed step: after a timeout,
 * and after anything that goes wrong while finalizing (finalize is idempotent: the same payload
 * again, never a new initiate).
 */
export function failure(reason: FailureReason, phase: FailurePhase | undefined, message: string, extra: Partial<Failure> = {}): Failure {
  const retryable = reason === 'timeout' || (phase === 'finalize' && reason !== 'cancelled')
  return { reason, retryable, ...(phase !== undefined && { phase }), message, ...extra }
}

/** A request error no retry of the worker can fix: `unauthorized`, or `rejected` (`400`/`404`). */
export function errorFailure(phase: FailurePhase, error: ErrorInfo): Failure {
  const reason: FailureReason = error.kind === 'unauthorized' ? 'unauthorized' : 'rejected'
  return failure(reason, phase, `${PHASE_NAME[phase]} failed: ${error.message}`, {
    ...(error.httpStatus !== undefined && { httpStatus: error.httpStatus }),
    lastError: error,
  })
}

/**
 * The step's deadline passed: `limitMs` without a status change (phases A and B) or without
 * success (initiate, finalize).
 */
export function timeoutFailure(phase: FailurePhase, limitMs: number, lastStatus: string | null, lastError: ErrorInfo | null): Failure {
  const what =
    phase === 'A' || phase === 'B'
      ? `no status change for ${seconds(limitMs)} (last status: ${lastStatus ?? 'none'})`
      : `no success within ${seconds(limitMs)}`
  const last = lastError ? `; last error: ${lastError.message}` : ''
  return failure('timeout', phase, `${PHASE_NAME[phase]} timed out: ${what}${last}`, {
    ...(lastError && { lastError }),
    ...(lastError?.httpStatus !== undefined && { httpStatus: lastError.httpStatus }),
  })
}

/** The provider reported `ERROR` or a status nobody knows. */
export function vendorFailure(phase: FailurePhase, response: StatusResponse): Failure {
  const status = (providerText(normalizeStatus(response.videoIdentificationStatus)) || 'none').slice(0, 128)
  const text = providerText(response.message)
  const detail = text ? ` (${text})` : ''
  return failure('vendor-error', phase, `${PHASE_NAME[phase]}: the provider reported ${status}${detail}; restart the identification`, {
    vendorStatus: status,
  })
}

/** A URL from the provider failed `isSafeUrl`; the URL itself is not kept. */
export function unsafeUrlFailure(phase: FailurePhase, url: string | null): Failure {
  const what = url === null || url === '' ? 'no URL' : 'a URL that is not safe to open (not https, or not an allowed host)'
  return failure('unsafe-url', phase, `${PHASE_NAME[phase]}: the provider returned ${what}; it was not opened`)
}

/** A Fail redirect, and the provider's status confirmed nothing within `confirmMs`. */
export function redirectFailure(phase: PollPhase, confirmMs: number, lastStatus: string | null, lastError: ErrorInfo | null): Failure {
  const step = phase === 'A' ? 'The ID capture was not completed' : 'The document was not signed'
  const status = lastStatus === null ? '' : `; last status: ${lastStatus}`
  return failure('redirect-failed', phase, `${step} (Fail redirect, not contradicted by the provider within ${seconds(confirmMs)}${status})`, {
    ...(lastError && { lastError }),
  })
}

/** A redirect came back to a browser that holds no flow. */
export function lostFailure(): Failure {
  return failure(
    'redirect-failed',
    undefined,
    'This browser has no identification in progress (the tab expired, or it was started on another device). Please restart the identification.',
  )
}

/** The host cancelled the flow. */
export function cancelledFailure(): Failure {
  return failure('cancelled', undefined, 'The identification was cancelled')
}
