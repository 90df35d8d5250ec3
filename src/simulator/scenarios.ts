/**
 * How the simulated provider behaves for one user:
 * - `happy` — every step succeeds after the configured timings;
 * - `slow` — like `happy`, with every timing six times longer;
 * - `flaky` — succeeds, but requests fail along the way with `503`, connection resets, HTML
 *   bodies and `429` + `Retry-After` (a fixed, repeatable pattern); the first finalize answers `502`;
 * - `vendor-error` — phase A ends in `ERROR`;
 * - `timeout` — phase A stays `PROCESSING` for ever;
 * - `expired-token` — the first API call of the user answers `401` and revokes the token used;
 * - `unknown-user` — every API call for the user answers `404`.
 */
export type Scenario = 'happy' | 'slow' | 'flaky' | 'vendor-error' | 'timeout' | 'expired-token' | 'unknown-user'

/** Every scenario name. */
export const SCENARIOS: readonly Scenario[] = ['happy', 'slow', 'flaky', 'vendor-error', 'timeout', 'expired-token', 'unknown-user']

/**
 * How much longer than the configured timings a scenario's provider takes (`slow`: six times);
 * the demo's phase deadline grows with it so that every scenario that should finalize does.
 */
export const SCENARIO_SLOWDOWN: Partial<Record<Scenario, number>> = { slow: 6 }

/** How long the simulated provider takes (milliseconds). */
export interface SimulatorTiming {
  /**
   * From the ID-capture Complete click to `SIGN_SESSION_ID_SUCCESSFULLY_CREATED` (phase A `PROCESSING`).
   * @default 3000
   */
  captureMs?: number
  /**
   * After the signing Complete click, how long the status still answers the stale
   * `SIGN_SESSION_ID_SUCCESSFULLY_CREATED`.
   * @default 1000
   */
  staleMs?: number
  /**
   * From the signing Complete click to `DOCUMENT_SIGN_SUCCESS`.
   * @default 3000
   */
  signMs?: number
  /**
   * Lifetime of an issued access token (the token endpoint's `expires_in`).
   * @default 3600000
   */
  tokenTtlMs?: number
}

/** The fault pattern of the `flaky` scenario, one entry per API request of the user, repeating. */
export const FLAKY_PATTERN = ['ok', '503', 'ok', 'reset', 'ok', 'html', 'ok', '429', 'ok', 'ok'] as const

/** A fault a step answers with every time: `401` (even after a token refresh), `404`, or `503`. */
export type StepFault = 'unauthorized' | 'rejected' | 'unavailable'

/**
 * Finer control than a scenario: what each step of one user's flow does. Unset steps behave
 * as in the user's scenario.
 */
export interface Behaviour {
  /** `unsafe-url`: the ID-capture URL is `javascript:`; `vendor-error`: the status is `ERROR`. */
  initiate?: 'ok' | 'unsafe-url' | 'vendor-error' | StepFault
  /**
   * `unsafe-url`: the signing URL is `javascript:`; `signed`: the status jumps to
   * `DOCUMENT_SIGN_SUCCESS` (signed elsewhere); `timeout`: `PROCESSING` for ever.
   */
  phaseA?: 'ok' | 'unsafe-url' | 'vendor-error' | 'signed' | 'timeout' | StepFault
  /** `timeout`: `PROCESSING` for ever. */
  phaseB?: 'ok' | 'vendor-error' | 'timeout' | StepFault
  finalize?: 'ok' | StepFault
}
