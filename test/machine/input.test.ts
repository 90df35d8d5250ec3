import { describe, expect, it } from 'vitest'
import { resolveInput } from '../../src/machine/input.js'

describe('input validation', () => {
  it('fills in defaults', () => {
    const r = resolveInput({ userId: 1, userType: 1 })
    expect(r.polling).toEqual({ intervalMs: 2000, maxIntervalMs: 5000, jitter: 0.1, phaseTimeoutMs: 120_000, finalizeTimeoutMs: 600_000, failConfirmMs: 10_000 })
    expect(r.finalize).toEqual({ bTrustAppCallBackId: null, correlationType: 0 })
  })

  it.each([
    [{ userId: 0, userType: 0 }, 'userId'],
    [{ userId: 2147483648, userType: 0 }, 'userId'],
    [{ userId: 1.5, userType: 0 }, 'userId'],
    [{ userId: '7', userType: 0 }, 'userId'],
    [{ userType: 0 }, 'userId'],
    [{ userId: 1, userType: 2 }, 'userType'],
    [{ userId: 1 }, 'userType'],
    [{ userId: 1, userType: 0, polling: { intervalMs: 0 } }, 'polling.intervalMs'],
    [{ userId: 1, userType: 0, polling: { intervalMs: -5 } }, 'polling.intervalMs'],
    [{ userId: 1, userType: 0, polling: { jitter: 2 } }, 'polling.jitter'],
    [{ userId: 1, userType: 0, polling: { phaseTimeoutMs: 'x' } }, 'polling.phaseTimeoutMs'],
    [{ userId: 1, userType: 0, polling: { intervalMs: 5000, maxIntervalMs: 1000 } }, 'polling.maxIntervalMs'],
    [{ userId: 1, userType: 0, polling: { intervalMS: 5 } }, 'intervalMS'],
    [{ userId: 1, userType: 0, allowedHosts: 'a.b' }, 'allowedHosts'],
    [{ userId: 1, userType: 0, finalize: { correlationType: -1 } }, 'finalize.correlationType'],
  ])('%j throws a TypeError naming %s', (input, field) => {
    expect(() => resolveInput(input)).toThrow(TypeError)
    expect(() => resolveInput(input)).toThrow(field)
  })

  it('takes null audit fields, as the provider documents them, and leaves them out (issue 9, item 12)', () => {
    const r = resolveInput({ userId: 1, userType: 0, initiate: { localTimezone: null, userAgent: 'UA/1', browserLanguage: null, userLanguage: null, deviceName: null } })
    expect(r.initiate).toEqual({ userAgent: 'UA/1' })
  })

  it('gives one message per bad field (issue 11, item 13)', () => {
    expect(() => resolveInput({ userId: 1, userType: 0, polling: { intervalMs: -5 } })).toThrow(/^Invalid identification input: polling\.intervalMs: must be >= 1$/)
  })
})
