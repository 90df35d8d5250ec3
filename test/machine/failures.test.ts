/** The failure builders: reason, retryable, phase and message for every kind, and no secret in any of them. */
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import {
  cancelledFailure,
  errorFailure,
  failure,
  lostFailure,
  providerText,
  redirectFailure,
  timeoutFailure,
  unsafeUrlFailure,
  vendorFailure,
} from '../../src/machine/failures.js'
import type { Failure } from '../../src/machine/types.js'

const TOKEN = 'eyJhbGciOi.SECRET-token-0123456789'
const PASSWORD = 'hunter2-PASSWORD'
const SECRET = 'client-SECRET-42'
const hostile = `Bearer ${TOKEN} {"access_token":"${TOKEN}","password":"${PASSWORD}"} client_secret=${SECRET} Authorization: Bearer ${TOKEN}`

describe('failure builders', () => {
  it.each([
    ['timeout, any phase', () => failure('timeout', 'A', 'm'), { reason: 'timeout', retryable: true, phase: 'A' }],
    ['anything in finalize (same payload again)', () => failure('rejected', 'finalize', 'm'), { reason: 'rejected', retryable: true, phase: 'finalize' }],
    ['rejected elsewhere', () => failure('rejected', 'B', 'm'), { reason: 'rejected', retryable: false, phase: 'B' }],
    ['cancelled, even in finalize', () => failure('cancelled', 'finalize', 'm'), { reason: 'cancelled', retryable: false }],
    ['unauthorized from the error', () => errorFailure('A', { kind: 'unauthorized', httpStatus: 401, message: 'GET … answered 401' }), { reason: 'unauthorized', retryable: false, httpStatus: 401, lastError: { kind: 'unauthorized' } }],
    ['rejected from the error', () => errorFailure('initiate', { kind: 'rejected', httpStatus: 404, message: 'answered 404' }), { reason: 'rejected', retryable: false, phase: 'initiate' }],
    ['finalize 404: retryable', () => errorFailure('finalize', { kind: 'rejected', httpStatus: 404, message: 'answered 404' }), { reason: 'rejected', retryable: true, phase: 'finalize' }],
    ['timeout with the last error', () => timeoutFailure('B', 120_000, 'PROCESSING', { kind: 'transient', httpStatus: 503, message: 'answered 503' }), { reason: 'timeout', retryable: true, httpStatus: 503, message: expect.stringMatching(/no status change for 120 s \(last status: PROCESSING\); last error: answered 503/) }],
    ['finalize timeout', () => timeoutFailure('finalize', 600_000, null, null), { reason: 'timeout', phase: 'finalize', message: expect.stringMatching(/no success within 600 s/) }],
    ['vendor error with the provider\'s message', () => vendorFailure('A', { videoIdentificationStatus: ' error ', videoIdentificationUrl: null, message: 'document unreadable' }), { reason: 'vendor-error', vendorStatus: 'ERROR', retryable: false, message: expect.stringContaining('(document unreadable)') }],
    ['unsafe URL, not kept', () => unsafeUrlFailure('A', 'javascript:alert(1)'), { reason: 'unsafe-url', message: expect.not.stringContaining('javascript') }],
    ['no URL', () => unsafeUrlFailure('initiate', null), { reason: 'unsafe-url', message: expect.stringContaining('no URL') }],
    ['redirect not contradicted', () => redirectFailure('B', 10_000, 'SIGN_SESSION_ID_SUCCESSFULLY_CREATED', null), { reason: 'redirect-failed', phase: 'B', retryable: false, message: expect.stringMatching(/not signed .*within 10 s/) }],
    ['lost', () => lostFailure(), { reason: 'redirect-failed', retryable: false, message: expect.stringMatching(/restart/i) }],
    ['cancelled', () => cancelledFailure(), { reason: 'cancelled', retryable: false }],
  ] as const)('%s', (_name, build, expected) => {
    expect(build()).toMatchObject(expected)
  })

  it('keeps provider text short and redacted: a 1 MiB message is cut, credentials go', () => {
    expect(providerText('x'.repeat(1 << 20))!.length).toBeLessThanOrEqual(513)
    expect(providerText(null)).toBeNull()
    const t = providerText(hostile)!
    for (const s of [TOKEN, PASSWORD, SECRET]) expect(t).not.toContain(s)
  })

  it('no failure, printed any way, holds a token, password or client secret that a provider echoed', () => {
    const all: Failure[] = [
      vendorFailure('A', { videoIdentificationStatus: `ERROR ${hostile}`, videoIdentificationUrl: null, message: hostile }),
      vendorFailure('B', { videoIdentificationStatus: hostile, videoIdentificationUrl: null, message: null }),
      timeoutFailure('A', 1000, providerText(hostile), { kind: 'transient', message: providerText(hostile)! }),
      redirectFailure('A', 1000, providerText(hostile), null),
      unsafeUrlFailure('A', `https://evil.example/?token=${TOKEN}`),
    ]
    for (const f of all) {
      for (const text of [inspect(f, { depth: Infinity, showHidden: true }), JSON.stringify(f), String(f.message)]) {
        for (const s of [TOKEN, PASSWORD, SECRET]) expect(text).not.toContain(s)
      }
    }
  })
})
