import type { IdentificationEvent } from './events.js'
import type { FailurePhase, IdentificationInput, StatusResponse } from './types.js'
import { topState } from './persistence.js'

/** Options of {@link createModelOptions}. */
export interface ModelOptions {
  /**
   * Include the host events a UI sends on its own (`RESTART`, `CANCEL`, `RETRY`, `LOST`), not only the
   * ones the flow itself produces (`START`, `REDIRECT`, `CONTINUE` and the workers' answers).
   * @default true
   */
  hostEvents?: boolean
  /** The chart input for the traversal. @default { userId: 1, userType: 0 } */
  input?: IdentificationInput
}

const SAFE_URL = 'https://id.10npay.example/session'
const UNSAFE_URL = 'javascript:alert(1)'
const status = (s: string | null, url: string | null = null): StatusResponse => ({
  videoIdentificationStatus: s,
  videoIdentificationUrl: url,
  message: null,
})

/**
 * One representative event for every distinct thing that can happen: each failure kind, each
 * status class, safe and unsafe URLs. Worker events are the chart's `initiate.ok`, `poll.status`,
 * `finalize.ok` and `attempt.*`; `attempt.armed` and `attempt.error` only restart a worker or
 * record an error and are left out, so every generated step changes the state. The `attempt.*`
 * events carry the step that sends them: pass `phase` (the snapshot's `context.step`) to get the
 * ones that step can send, none without it.
 */
export function modelEvents(options: Pick<ModelOptions, 'hostEvents'> = {}, phase: FailurePhase | null = null): IdentificationEvent[] {
  const events: IdentificationEvent[] = [
    { type: 'START' },
    { type: 'REDIRECT', outcome: 'success' },
    { type: 'REDIRECT', outcome: 'fail' },
    { type: 'REDIRECT', outcome: 'success', step: 'signing' },
    { type: 'REDIRECT', outcome: 'fail', step: 'signing' },
    { type: 'CONTINUE' },
    { type: 'initiate.ok', response: status('STARTED', SAFE_URL) },
    { type: 'initiate.ok', response: status('STARTED', UNSAFE_URL) },
    { type: 'initiate.ok', response: status('ERROR') },
    ...[
      status('SIGN_SESSION_ID_SUCCESSFULLY_CREATED', SAFE_URL),
      status('SIGN_SESSION_ID_SUCCESSFULLY_CREATED', UNSAFE_URL),
      status('DOCUMENT_SIGN_SUCCESS'),
      status('ERROR'),
    ].map((response) => ({ type: 'poll.status' as const, response, at: 0, nextAttemptAt: 0 })),
    { type: 'finalize.ok', result: { correlationId: '834d03b9-d24f-4d7b-950f-69aadff41599', individualId: 989 } },
  ]
  if (phase !== null) {
    events.push(
      { type: 'attempt.failed', phase, error: { kind: 'unauthorized', httpStatus: 401, message: 'answered 401 after a token refresh' } },
      { type: 'attempt.failed', phase, error: { kind: 'rejected', httpStatus: 404, message: 'answered 404' } },
      { type: 'attempt.timeout', phase },
    )
  }
  if (options.hostEvents ?? true) events.push({ type: 'RESTART' }, { type: 'CANCEL' }, { type: 'RETRY' }, { type: 'LOST' })
  return events
}


/**
 * Identifies a model state by what a user can tell apart: the top-level state (with the
 * sub-state when it is not the plain `running` one: `pollingA(confirming)` checks a Fail
 * redirect, `phaseB(cancelling)` a cancel during finalize) and, in `failed`, the failure's
 * reason and phase. Two snapshots that differ only in times or counters are the same model state.
 */
export function serializeModelState(snapshot: { value: unknown; context: { failure: { reason: string; phase?: string } | null } }): string {
  const f = snapshot.context.failure
  const top = topState(snapshot.value)
  if (top === 'failed' && f) return `failed:${f.reason}:${f.phase ?? '-'}`
  const sub = snapshot.value && typeof snapshot.value === 'object' ? (snapshot.value as Record<string, unknown>)[top] : undefined
  return typeof sub === 'string' && sub !== 'running' ? `${top}(${sub})` : top
}

/** The top-level state of a model state from {@link serializeModelState} (`pollingA(confirming)` → `pollingA`). */
export function modelTopState(modelState: string): string {
  return modelState.replace(/[(:].*$/, '')
}

/**
 * Options for `@xstate/graph`'s `getShortestPaths` / `getSimplePaths` over
 * `identificationMachine`, so that an app can model-test its own UI against the same chart.
 *
 * @example
 * import { getShortestPaths } from '@xstate/graph'
 * const paths = getShortestPaths(identificationMachine, createModelOptions())
 */
export function createModelOptions(options: ModelOptions = {}) {
  return {
    events: (snapshot: { context: { step: FailurePhase | null } }) => modelEvents(options, snapshot.context.step),
    serializeState: serializeModelState as (s: unknown) => string,
    input: options.input ?? { userId: 1, userType: 0 as const },
  }
}
