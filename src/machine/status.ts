import type { PollPhase } from './types.js'

/**
 * What a status means for the phase being polled:
 * - `pending` — keep polling;
 * - `signing-ready` — phase A is complete, the answer carries the signing URL;
 * - `signed` — the document is signed (phase B complete, or phase A finding signing already done);
 * - `vendor-error` — `ERROR` or a code nobody knows: the flow fails.
 */
export type StatusClass = 'pending' | 'signing-ready' | 'signed' | 'vendor-error'

/** The status codes the provider documents. */
export const STATUS = {
  STARTED: 'STARTED',
  PROCESSING: 'PROCESSING',
  SIGN_SESSION_ID_SUCCESSFULLY_CREATED: 'SIGN_SESSION_ID_SUCCESSFULLY_CREATED',
  DOCUMENT_SIGN_SUCCESS: 'DOCUMENT_SIGN_SUCCESS',
  ERROR: 'ERROR',
} as const

/**
 * Normalises a status for comparison: trimmed and upper case; `null`, `undefined` and blank
 * become `''`.
 */
export function normalizeStatus(status: string | null | undefined): string {
  return typeof status === 'string' ? status.trim().toUpperCase() : ''
}

/**
 * Classifies a `videoIdentificationStatus` for the phase being polled.
 *
 * @param status the raw status (any case, surrounding white space ignored; `null` is pending)
 * @param phase `'A'` before signing, `'B'` after
 * @param pendingStatuses extra codes to treat as pending
 * @example classifyStatus(' processing ', 'A') // 'pending'
 */
export function classifyStatus(
  status: string | null | undefined,
  phase: PollPhase,
  pendingStatuses: readonly string[] = [],
): StatusClass {
  const s = normalizeStatus(status)
  switch (s) {
    case '':
    case STATUS.STARTED:
    case STATUS.PROCESSING:
      return 'pending'
    case STATUS.SIGN_SESSION_ID_SUCCESSFULLY_CREATED:
      // After signing the provider may still answer the phase-A status for a while: stale.
      return phase === 'A' ? 'signing-ready' : 'pending'
    case STATUS.DOCUMENT_SIGN_SUCCESS:
      return 'signed'
  }
  for (const p of pendingStatuses) if (normalizeStatus(p) === s) return 'pending'
  return 'vendor-error'
}
