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

describe('isSafeUrl: allowedHosts and ports (regression: any port used to pass)', () => {
  it.each([
    ['https://id.10npay.com/x', ['id.10npay.com'], true],
    ['https://id.10npay.com:443/x', ['id.10npay.com'], true], // the default port, written out
    ['https://id.10npay.com:1337/x', ['id.10npay.com'], false],
    ['https://id.10npay.com:8443/x', ['id.10npay.com:8443'], true],
    ['https://id.10npay.com/x', ['id.10npay.com:8443'], false],
    ['https://id.10npay.com:9443/x', ['id.10npay.com:8443'], false],
    ['https://id.10npay.com/x', ['id.10npay.com:443'], true],
    ['http://127.0.0.1:4000/x', ['127.0.0.1'], false],
    ['http://127.0.0.1:4000/x', ['127.0.0.1:4000'], true],
    ['http://[::1]:8080/x', ['[::1]:8080'], true],
    ['http://[::1]:8081/x', ['[::1]:8080'], false],
    ['https://ID.10NPAY.COM:8443/x', ['id.10npay.com:8443'], true],
    ['https://id.10npay.com/x', ['id.10npay.com/path'], false],
    ['https://id.10npay.com/x', ['user@id.10npay.com'], false],
    ['https://id.10npay.com/x', [''], false],
  ])('%s with %j → %s', (url, allowedHosts, expected) => {
    expect(isSafeUrl(url, { allowedHosts })).toBe(expected)
  })
})

describe('isSafeUrl against hostile inputs, with and without allowedHosts', () => {
  const allowedHosts = ['id.10npay.com']
  it.each([
    'javascript:alert(1)',
    'JAVASCRIPT:alert(1)',
    'jaVaScRipT:alert(document.cookie)',
    '\u0000javascript:alert(1)',
    '\tjavascript:alert(1)',
    'java\nscript:alert(1)',
    'javascript://id.10npay.com/%0aalert(1)',
    'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
    'DATA:text/html,x',
    'vbscript:msgbox(1)',
    'file:///etc/passwd',
    'FILE://id.10npay.com/etc/passwd',
    'ftp://id.10npay.com/x',
    '//id.10npay.com/x',
    '\\\\id.10npay.com\\x',
    'https:\\\\id.10npay.com',
    'https:/\\id.10npay.com',
    'https://id.10npay.com\\@evil.example',
    'https://evil.example@id.10npay.com/',
    'https://id.10npay.com@evil.example/',
    'https://id.10npay.com:pw@evil.example/',
    ' https://id.10npay.com/',
    'https://id.10npay.com/\u2028',
    'http://id.10npay.com/',
    'blob:https://id.10npay.com/uuid',
  ])('%j is refused either way', (url) => {
    expect(isSafeUrl(url)).toBe(false)
    expect(isSafeUrl(url, { allowedHosts })).toBe(false)
  })

  it.each([
    'https://іd.10npay.com/x', // Cyrillic і
    'https://id.10npay.com.evil.example/x',
    'https://id-10npay.com/x',
    'https://evil.example/id.10npay.com',
    'https://sub.id.10npay.com/x',
  ])('%j is an ordinary https URL: allowed without a list, refused by allowedHosts', (url) => {
    expect(isSafeUrl(url)).toBe(true)
    expect(isSafeUrl(url, { allowedHosts })).toBe(false)
  })
})
