import { describe, expect, it } from 'vitest'
import { classifyStatus, normalizeStatus } from '../../src/machine/status.js'

describe('classifyStatus', () => {
  it.each([
    [null, 'A', 'pending'],
    [undefined, 'B', 'pending'],
    ['', 'A', 'pending'],
    ['   ', 'A', 'pending'],
    ['STARTED', 'A', 'pending'],
    ['PROCESSING', 'A', 'pending'],
    ['PROCESSING', 'B', 'pending'],
    ['processing', 'A', 'pending'],
    ['  Processing \n', 'B', 'pending'],
    ['SIGN_SESSION_ID_SUCCESSFULLY_CREATED', 'A', 'signing-ready'],
    ['sign_session_id_successfully_created ', 'A', 'signing-ready'],
    ['SIGN_SESSION_ID_SUCCESSFULLY_CREATED', 'B', 'pending'], // stale in phase B
    ['DOCUMENT_SIGN_SUCCESS', 'B', 'signed'],
    ['DOCUMENT_SIGN_SUCCESS', 'A', 'signed'], // signing already happened: skip to phase B
    ['document_sign_success', 'A', 'signed'],
    ['ERROR', 'A', 'vendor-error'],
    ['error', 'B', 'vendor-error'],
    ['ONFIDO_REJECTED', 'A', 'vendor-error'],
    ['SOMETHING_NEW', 'B', 'vendor-error'],
  ] as const)('%j in phase %s is %s', (status, phase, expected) => {
    expect(classifyStatus(status, phase)).toBe(expected)
  })

  it('treats extra pending statuses as pending, case-insensitively', () => {
    expect(classifyStatus('QUEUED', 'A')).toBe('vendor-error')
    expect(classifyStatus('queued', 'A', ['Queued'])).toBe('pending')
    expect(classifyStatus(' QUEUED ', 'B', [' queued'])).toBe('pending')
  })

  it('never lets pendingStatuses override ERROR or the documented end states', () => {
    expect(classifyStatus('DOCUMENT_SIGN_SUCCESS', 'B', ['DOCUMENT_SIGN_SUCCESS'])).toBe('signed')
    expect(classifyStatus('SIGN_SESSION_ID_SUCCESSFULLY_CREATED', 'A', ['SIGN_SESSION_ID_SUCCESSFULLY_CREATED'])).toBe('signing-ready')
  })

  it('normalises', () => {
    expect(normalizeStatus(null)).toBe('')
    expect(normalizeStatus(' processing ')).toBe('PROCESSING')
  })
})
