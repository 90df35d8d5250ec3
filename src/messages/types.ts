import type { FailurePhase, FailureReason, IdentificationState } from '../machine/types.js'

/** What a person is told about a failure. */
export interface FailureText {
  /** One short line: what happened. */
  title: string
  /** One or two sentences: why, and what to do. */
  detail: string
}

/** What the person can do next: the failed step again, the whole identification again, or ask for help. */
export type FailureAction = 'retry' | 'restart' | 'support'

/**
 * One language's texts, as plain data: copy a locale file, translate, and pass it as `messages`
 * (or register it with `registerMessages`). Every failure reason has a text for the flow in
 * general (`any`) and may have one per phase (`initiate`, `A`, `B`, `finalize`, and `none` for a
 * failure that belongs to no phase: a cancel, a lost flow).
 */
export interface Messages {
  /** The language, as BCP 47 (`en`, `bg`). */
  locale: string
  /** Each state, as a person sees it. */
  states: Record<IdentificationState, string>
  failures: Record<FailureReason, { any: FailureText } & Partial<Record<FailurePhase | 'none', FailureText>>>
  /** The labels of the actions. */
  actions: Record<FailureAction, string>
}
