/** Texts for people: every failure reason × phase and every state, in Bulgarian and in English (issue 12). */
import { describe, expect, it } from 'vitest'
import { bg, describeFailure, describeState, en, failureAction, registerMessages, type Messages } from '../../src/messages/index.js'
import { identificationMachine } from '../../src/machine/identificationMachine.js'
import type { FailurePhase, FailureReason, IdentificationState } from '../../src/machine/types.js'

const REASONS: FailureReason[] = ['vendor-error', 'timeout', 'unauthorized', 'rejected', 'redirect-failed', 'unsafe-url', 'cancelled']
const PHASES: (FailurePhase | undefined)[] = ['initiate', 'A', 'B', 'finalize', undefined]
const STATES = Object.keys(identificationMachine.root.states) as IdentificationState[]
const cyrillic = /[а-яА-Я]/

describe('describeFailure and describeState', () => {
  it.each(REASONS.flatMap((reason) => PHASES.map((phase) => [reason, phase] as const)))('%s in phase %s has a Bulgarian and an English text', (reason, phase) => {
    const f = { reason, phase, retryable: reason === 'timeout' || phase === 'finalize' }
    const b = describeFailure(f, { locale: 'bg' })
    const e = describeFailure(f, { locale: 'en' })
    for (const t of [b, e]) {
      expect(t.title.length).toBeGreaterThan(5)
      expect(t.detail.length).toBeGreaterThan(10)
      expect(t.actionLabel.length).toBeGreaterThan(3)
    }
    expect(b.title).toMatch(cyrillic)
    expect(b.detail).toMatch(cyrillic)
    expect(e.title).not.toMatch(cyrillic)
    expect(b.action).toBe(e.action)
    expect(b.title).not.toBe(e.title)
  })

  it('every state has both texts; every locale file has the same keys', () => {
    for (const s of STATES) {
      expect(describeState(s, { locale: 'bg-BG' })).toMatch(cyrillic)
      expect(describeState(s, { locale: 'en-GB' })).not.toMatch(cyrillic)
    }
    const keys = (m: Messages) => JSON.stringify([Object.keys(m.states).sort(), Object.keys(m.failures).sort().map((r) => [r, Object.keys(m.failures[r as FailureReason]).sort()]), Object.keys(m.actions).sort()])
    expect(keys(bg)).toBe(keys(en))
  })

  it('offers the right action: retry what can be retried, support for configuration problems, else restart', () => {
    expect(failureAction({ reason: 'timeout', retryable: true, phase: 'A' })).toBe('retry')
    expect(failureAction({ reason: 'rejected', retryable: true, phase: 'finalize' })).toBe('retry')
    expect(failureAction({ reason: 'unauthorized', retryable: false, phase: 'A' })).toBe('support')
    expect(failureAction({ reason: 'unsafe-url', retryable: false, phase: 'B' })).toBe('support')
    expect(failureAction({ reason: 'rejected', retryable: false, phase: 'initiate' })).toBe('support')
    expect(failureAction({ reason: 'vendor-error', retryable: false, phase: 'A' })).toBe('restart')
    expect(describeFailure({ reason: 'timeout', retryable: true, phase: 'B' }, { locale: 'bg' }).actionLabel).toBe('Опитайте отново')
  })

  it('unknown languages get English; a merchant adds or overrides a language with plain data', () => {
    expect(describeState('signing', { locale: 'fr' })).toBe(en.states.signing)
    expect(describeState('signing')).toBe(en.states.signing)
    const de: Messages = { ...en, locale: 'de', states: { ...en.states, signing: 'Warten auf Ihre Unterschrift' } }
    registerMessages(de)
    expect(describeState('signing', { locale: 'de-AT' })).toBe('Warten auf Ihre Unterschrift')
    expect(describeState('signing', { messages: { ...bg, states: { ...bg.states, signing: 'Подпишете, моля' } } })).toBe('Подпишете, моля')
  })

  it('never shows the provider\'s own message (it is for logs)', () => {
    const t = describeFailure({ reason: 'vendor-error', retryable: false, phase: 'A' }, { locale: 'en' })
    expect(JSON.stringify(t)).not.toMatch(/Onfido|ERROR/)
  })
})
