const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])

/** Options for {@link isSafeUrl}. */
export interface SafeUrlOptions {
  /**
   * When given (and not empty), the URL's host must be one of these (case-insensitive, exact).
   * An entry without a port allows the scheme's default port only; `host:port` allows that port.
   */
  allowedHosts?: readonly string[]
}

/**
 * Whether a URL from the provider may be opened: an absolute `https:` URL (or `http:` on a
 * loopback host, for the simulator) with no credentials in it and, when `allowedHosts` is
 * given, a host in that list. The raw string must already be in its canonical, trimmed form:
 * white space, control characters and backslashes anywhere are refused rather than repaired,
 * because browsers and URL parsers repair them differently.
 *
 * @example isSafeUrl('https://id.10npay.com/s/1') // true
 * @example isSafeUrl('javascript:alert(1)') // false
 */
export function isSafeUrl(url: unknown, options: SafeUrlOptions = {}): url is string {
  if (typeof url !== 'string' || url.length === 0 || url.length > 4096) return false
  // Refuse anything a parser would have to repair: spaces, controls, backslashes.
  if (/[\s\u0000-\u001f\u007f\\]/.test(url)) return false
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return false
  }
  if (!/^https?:\/\//i.test(url)) return false
  if (parsed.username !== '' || parsed.password !== '') return false
  const host = parsed.hostname.toLowerCase()
  if (host === '') return false
  if (parsed.protocol === 'http:' && !LOOPBACK.has(host)) return false
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return false
  const allowed = options.allowedHosts
  if (allowed && allowed.length > 0) return allowed.some((entry) => hostMatches(entry, parsed))
  return true
}

/**
 * Whether an `allowedHosts` entry names the URL's host and port: `host` allows the scheme's
 * default port only, `host:port` that port (`[::1]:8080` for IPv6).
 */
function hostMatches(entry: unknown, url: URL): boolean {
  if (typeof entry !== 'string' || entry === '' || /[\s/\\@?#]/.test(entry)) return false
  let e: URL
  try {
    // Parsed with the URL's own scheme, so that a default port in the entry reads as the default.
    e = new URL(`${url.protocol}//${entry}`)
  } catch {
    return false
  }
  return e.hostname === url.hostname && e.port === url.port
}
