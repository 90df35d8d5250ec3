import { describe, expect, it } from 'vitest'
import { isSafeUrl } from '../../src/machine/urls.js'

describe('isSafeUrl', () => {
  it.each([
    ['https://id.10npay.com/session/1', true],
    ['HTTPS://ID.10NPAY.COM/x', true],
    ['http://127.0.0.1:4000/capture/1', true],
    ['http://localhost/x', true],
    ['http://[::1]:8080/x', true],
    ['http://id.10npay.com/x', false],
    ['javascript:alert(1)', false],
    ['JaVaScRiPt:alert(1)', false],
    [' javascript:alert(1)', false],
    ['java\tscript:alert(1)', false],
    ['data:text/html,<script>alert(1)</script>', false],
    ['vbscript:msgbox', false],
    ['file:///etc/passwd', false],
    ['//evil.example/x', false],
    ['https:\\\\evil.example', false],
    ['https://evil.example\\@id.10npay.com', false],
    ['https://user:pw@id.10npay.com/', false],
    ['https://evil.example@id.10npay.com/', false],
    ['https://id.10npay.com/ x', false],
    ['', false],
    [null, false],
    [42, false],
    ['/relative/path', false],
    ['https://', false],
  ])('%j → %s', (url, expected) => {
    expect(isSafeUrl(url)).toBe(expected)
  })

  it('checks allowedHosts exactly and case-insensitively', () => {
    const allowedHosts = ['id.10npay.com', 'sign.b-trust.bg']
    expect(isSafeUrl('https://ID.10npay.com/x', { allowedHosts })).toBe(true)
    expect(isSafeUrl('https://sign.b-trust.bg/x', { allowedHosts })).toBe(true)
    expect(isSafeUrl('https://id.10npay.com.evil.example/x', { allowedHosts })).toBe(false)
    expect(isSafeUrl('https://evil.example/?id.10npay.com', { allowedHosts })).toBe(false)
    expect(isSafeUrl('https://іd.10npay.com/x', { allowedHosts })).toBe(false) // Cyrillic і (IDN look-alike)
    expect(isSafeUrl('https://evil.example@id.10npay.com/', { allowedHosts })).toBe(false)
  })
})
