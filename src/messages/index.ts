import type { Failure, IdentificationState } from '../machine/types.js'
import { bg } from './bg.js'
import { en } from './en.js'
import type { FailureAction, FailureText, Messages } from './types.js'

export type { FailureAction, FailureText, Messages } from './types.js'
export { en, bg }

const registry = new Map<string, Messages>([
  ['en', en],
  ['bg', bg],
])

/** Options of {@link describeFailure} and {@link describeState}. */
export interface DescribeOptions {
  /**
   * The person's language (`navigator.language`, an `Accept-Language` choice): `bg`, `bg-BG`, `en-GB`…
   * The language part picks the texts; anything unknown gets English.
   * @default 'en'
   */
  locale?: string
  /** Texts of your own (a copy of a locale file, changed): they win over the built-in ones. */
  messages?: Messages
}

/** Adds (or replaces) a language's texts for every later call. */
export function registerMessages(messages: Messages): void {
  registry.set(messages.locale.toLowerCase(), messages)
}

function pick(o: DescribeOptions): Messages {
  if (o.messages) return o.messages
  const tag = (o.locale ?? 'en').toLowerCase()
  return registry.get(tag) ?? registry.get(tag.split(/[-_]/)[0]!) ?? en
}

/** What a person can do after a failure. */
export function failureAction(failure: Pick<Failure, 'reason' | 'retryable' | 'phase'>): FailureAction {
  if (failure.retryable) return 'retry'
  if (failure.reason === 'unauthorized' || failure.reason === 'unsafe-url' || (failure.reason === 'rejected' && failure.phase === 'initiate')) return 'support'
  return 'restart'
}

/**
 * A failure in words for the person whose identification it is: what happened, what to do, and
 * the action to offer (`retry`: `RETRY`; `restart`: `RESTART`; `support`: contact support).
 * Never the provider's own message: `failure.message` is for logs.
 *
 * @example describeFailure(view.failure, { locale: navigator.language })
 * // { title: 'Your ID check is taking too long', detail: '…', action: 'retry', actionLabel: 'Try again' }
 */
export function describeFailure(failure: Pick<Failure, 'reason' | 'retryable' | 'phase'>, options: DescribeOptions = {}): FailureText & { action: FailureAction; actionLabel: string } {
  const m = pick(options)
  const texts = m.failures[failure.reason] ?? en.failures[failure.reason] ?? en.failures['vendor-error']
  const text = texts[failure.phase ?? 'none'] ?? texts.any
  const action = failureAction(failure)
  return { ...text, action, actionLabel: m.actions[action] }
}

/**
 * A state in words for the person (`'pollingA'` → `'Checking your ID…'`).
 * @example describeState(view.state, { locale: 'bg' }) // 'Проверяваме документа ви…'
 */
export function describeState(state: IdentificationState, options: DescribeOptions = {}): string {
  const m = pick(options)
  return m.states[state] ?? en.states[state] ?? state
}
