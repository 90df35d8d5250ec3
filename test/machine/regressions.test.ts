/** Defects the chaos and fuzz suites found, each pinned by a test. */
import { initialTransition, transition } from 'xstate'
import { describe, expect, it } from 'vitest'
import { identificationMachine } from '../../src/machine/identificationMachine.js'
import { topState } from '../../src/machine/persistence.js'
import type { IdentificationEvent } from '../../src/machine/events.js'

const start = () => initialTransition(identificationMachine, { userId: 1, userType: 0 })[0]
const send = (s: ReturnType<typeof start>, e: unknown) => transition(identificationMachine, s, e as IdentificationEvent)[0]

describe('regressions', () => {
  it('a REDIRECT with an outcome other than success/fail is ignored (it used to count as success)', () => {
    const s = send(start(), { type: 'REDIRECT', outcome: 'maybe' })
    expect(topState(s.value)).toBe('idle')
    let t = send(start(), { type: 'START' })
    t = send(t, { type: 'initiate.ok', response: { videoIdentificationUrl: 'https://id.example/1', videoIdentificationStatus: 'STARTED', message: null } })
    expect(topState(t.value)).toBe('identifying')
    expect(topState(send(t, { type: 'REDIRECT', outcome: 'SUCCESS' }).value)).toBe('identifying')
    expect(topState(send(t, { type: 'REDIRECT' }).value)).toBe('identifying')
    expect(topState(send(t, { type: 'REDIRECT', outcome: 'success' }).value)).toBe('pollingA')
  })

  it('a REDIRECT callback id that is not a string is not kept', () => {
    const s = send(start(), { type: 'REDIRECT', outcome: 'success', bTrustAppCallBackId: { evil: true } })
    expect(s.context.finalize.bTrustAppCallBackId).toBeNull()
  })
})
