import { systemClock, type Clock } from '../../machine/clock.js'
import { TenNPayError, kindForStatus, parseRetryAfter, plainCause } from '../http/errors.js'
import { redact } from '../../machine/redact.js'
import { tokenResponseSchema } from '../http/schemas.js'
import { checkServiceUrl, exchange, fetchTransport } from '../http/transport.js'

/** Options of {@link createPasswordGrantTokenSource}. */
export interface PasswordGrantOptions {
  /**
   * The token endpoint, e.g. `https://auth-test.10npay.com/connect/token`. Must be `https:`;
   * `http:` only for a loopback host (`localhost`, `127.x.y.z`, `[::1]`) or with `allowInsecureHttp`.
   */
  tokenUrl: string
  /** Sent with HTTP Basic authentication. */
  clientId: string
  /** Sent with HTTP Basic authentication; never appears in an error. */
  clientSecret: string
  /** The resource owner's user name. */
  username: string
  /** The resource owner's password; never appears in an error. */
  password: string
  /** Requested scope, if the account needs one. */
  scope?: string
  /**
   * The transport. It is always called with `redirect: 'manual'` and a signal it should honour.
   * @default globalThis.fetch
   */
  fetch?: typeof fetch
  /**
   * How long before `expires_in` runs out a token is refreshed.
   * @default 30000
   */
  refreshMarginMs?: number
  /**
   * Per request, in milliseconds: the whole request, reading the body included.
   * @default 10000
   */
  requestTimeoutMs?: number
  /**
   * The largest token answer read, in bytes; a larger one is a `bad-response`.
   * @default 65536
   */
  maxResponseBytes?: number
  /**
   * Allows an `http:` `tokenUrl` off loopback hosts. Other schemes are refused either way.
   * @default false
   */
  allowInsecureHttp?: boolean
  /**
   * The timers of the per-request timeout; its `now` is the default of `now`.
   * @default systemClock
   */
  clock?: Clock
  /**
   * The time source of the token's expiry and of the backoff after a failure.
   * @default clock.now (Date.now)
   */
  now?: () => number
}

/** Returns a cached access token, or a fresh one with `forceRefresh`. */
export type AccessTokenGetter = (o?: { forceRefresh?: boolean }) => Promise<string>

/** The token source: callable as `getAccessToken` itself, and holding it under that name. */
export type PasswordGrantTokenSource = AccessTokenGetter & {
  /** The same function, for `createHttpApi({ getAccessToken: source.getAccessToken })`. */
  getAccessToken: AccessTokenGetter
  /** Drops the cached token; the next call fetches a new one. */
  invalidate(): void
}

/** The backoff after consecutive failures of the token endpoint: 500 ms doubling to 30 s, ±20 %. */
const BACKOFF_MIN_MS = 500
const BACKOFF_MAX_MS = 30_000
const BACKOFF_JITTER = 0.2

/**
 * The `getAccessToken` for servers: the provider's OAuth 2.0 password grant
 * (`application/x-www-form-urlencoded`, client credentials in HTTP Basic). Caches the token,
 * refreshes it on `forceRefresh` and before `expires_in` runs out, and shares one request among
 * concurrent callers. Errors are `TenNPayError`s that name the endpoint and the answer, never a
 * secret.
 *
 * Redirects are not followed (a `3xx` is a non-retryable `rejected`: the form holds the
 * password). After a failure the source backs off — about 500 ms, doubling with each
 * consecutive failure up to 30 s, ±20 % jitter, never less than a `Retry-After` — and while
 * it does, every call (`forceRefresh` too) rejects at once with the last error, sending
 * nothing. One success resets the backoff.
 *
 * @example
 * const tokens = createPasswordGrantTokenSource({
 *   tokenUrl: 'https://auth-test.10npay.com/connect/token',
 *   clientId, clientSecret, username, password,
 * })
 * const api = createHttpApi({ baseUrl: 'https://api-test.10npay.com', getAccessToken: tokens })
 */
export function createPasswordGrantTokenSource(options: PasswordGrantOptions): PasswordGrantTokenSource {
  const fn = 'createPasswordGrantTokenSource'
  if (!options || typeof options !== 'object') throw new TypeError(`${fn}: options are required`)
  for (const field of ['tokenUrl', 'clientId', 'clientSecret', 'username', 'password'] as const) {
    if (typeof options[field] !== 'string' || options[field] === '') {
      throw new TypeError(`${fn}: ${field} must be a non-empty string`)
    }
  }
  const allowInsecureHttp = options.allowInsecureHttp ?? false
  if (typeof allowInsecureHttp !== 'boolean') throw new TypeError(`${fn}: allowInsecureHttp must be a boolean`)
  const url = checkServiceUrl(fn, 'tokenUrl', options.tokenUrl, allowInsecureHttp)
  const clock = options.clock ?? systemClock
  if (!clock || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
    throw new TypeError(`${fn}: clock must have setTimeout and clearTimeout`)
  }
  const post = fetchTransport(options.fetch ?? ((input, init) => globalThis.fetch(input, init)))
  const now = options.now ?? (() => clock.now())
  const margin = options.refreshMarginMs ?? 30_000
  const timeoutMs = options.requestTimeoutMs ?? 10_000
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    throw new TypeError(`${fn}: requestTimeoutMs must be a positive integer (got ${String(timeoutMs)})`)
  }
  const maxBytes = options.maxResponseBytes ?? 65_536
  if (!Number.isInteger(maxBytes) || maxBytes < 1) {
    throw new TypeError(`${fn}: maxResponseBytes must be a positive integer (got ${String(maxBytes)})`)
  }
  const basic = btoa(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`)
  // What must never appear in an error: the credentials, in every encoding they are sent in.
  const secrets = [options.password, options.clientSecret, basic]
  // The endpoint as messages name it: no query (the token URL is configuration, not a secret, but keep it short).
  const call = `POST ${url.origin}${url.pathname}`

  let cached: { token: string; refreshAt: number } | undefined
  let inFlight: Promise<string> | undefined
  let failures = 0
  let blockedUntil = 0
  let lastError: TenNPayError | undefined

  const fail = (kind: TenNPayError['kind'], message: string, extra: { httpStatus?: number; retryAfterMs?: number; cause?: unknown } = {}) =>
    new TenNPayError(kind, redact(message, [...secrets, ...(cached ? [cached.token] : [])]), extra)

  async function fetchToken(): Promise<string> {
    const body = new URLSearchParams({
      client_id: options.clientId,
      grant_type: 'password',
      username: options.username,
      password: options.password,
    })
    if (options.scope) body.set('scope', options.scope)
    const r = await exchange({
      url: options.tokenUrl,
      start: (signal) =>
        post({
          method: 'POST',
          url: options.tokenUrl,
          headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
          body: body.toString(),
          signal,
        }),
      timeoutMs,
      maxBytes,
      clock,
    })
    switch (r.type) {
      case 'aborted': // no caller signal here; kept for completeness
      case 'timeout':
        throw fail('timeout', r.type === 'timeout' && r.phase === 'body' ? `${call}: the body did not arrive within ${timeoutMs} ms` : `${call}: no answer within ${timeoutMs} ms`)
      case 'network': {
        const cause = plainCause(r.error, secrets)
        throw fail('network', `${call}: network error: ${cause.message}`, { cause })
      }
      case 'redirect':
        // Not retryable: following it would send the password elsewhere; the URL is wrong.
        throw fail('rejected', `${call} answered ${r.status > 0 ? `${r.status}, ` : 'with '}a redirect, which is not followed: check tokenUrl`, r.status > 0 ? { httpStatus: r.status } : {})
      case 'too-large':
        throw fail('bad-response', `${call} answered ${r.status} with a body larger than ${maxBytes} bytes`, { httpStatus: r.status })
    }
    const { status, text } = r
    if (status < 200 || status > 299) {
      // Only the OAuth error code is echoed: a body could repeat what was sent.
      let code = ''
      try {
        const e = JSON.parse(text) as { error?: unknown } | null
        if (typeof e?.error === 'string' && /^[a-z_]{1,64}$/.test(e.error)) code = ` (${e.error})`
      } catch {
        /* not JSON */
      }
      const kind = status === 400 || status === 401 ? 'unauthorized' : kindForStatus(status)
      const retryAfterMs = parseRetryAfter(r.headers.get('retry-after'), now())
      throw fail(kind, `${call} answered ${status}${code}: the token was refused`, {
        httpStatus: status,
        ...(retryAfterMs !== undefined && { retryAfterMs }),
      })
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      throw fail('bad-response', `${call} answered ${status} with a body that is not JSON`, { httpStatus: status })
    }
    const parsed = tokenResponseSchema.safeParse(json)
    if (!parsed.success) {
      throw fail('bad-response', `${call} answered ${status} without an access_token`, { httpStatus: status })
    }
    const { access_token, expires_in } = parsed.data
    const life = typeof expires_in === 'number' && expires_in > 0 ? expires_in * 1000 : Infinity
    cached = { token: access_token, refreshAt: now() + Math.max(life - margin, life / 2) }
    return access_token
  }

  function backOff(err: unknown): void {
    failures++
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(failures - 1, 16))
    const jittered = Math.min(BACKOFF_MAX_MS, base * (1 - BACKOFF_JITTER + 2 * BACKOFF_JITTER * Math.random()))
    const retryAfter = err instanceof TenNPayError ? (err.retryAfterMs ?? 0) : 0
    blockedUntil = now() + Math.max(jittered, retryAfter)
    if (err instanceof TenNPayError) lastError = err
    else {
      const cause = plainCause(err, secrets)
      lastError = fail('network', `${call}: ${cause.message}`, { cause })
    }
  }

  /** The last error again, saying until when no request is sent. */
  function stillBackingOff(t: number): TenNPayError {
    const last = lastError!
    return new TenNPayError(last.kind, `${last.message} (backing off until ${new Date(blockedUntil).toISOString()}; no request sent)`, {
      retryAfterMs: Math.max(1, Math.ceil(blockedUntil - t)),
      ...(last.httpStatus !== undefined && { httpStatus: last.httpStatus }),
      ...(last.cause !== undefined && { cause: last.cause }),
    })
  }

  const getAccessToken: AccessTokenGetter = async (o) => {
    if (!o?.forceRefresh && cached && now() < cached.refreshAt) return cached.token
    if (o?.forceRefresh) cached = undefined
    if (inFlight) return inFlight
    const t = now()
    if (lastError && t < blockedUntil) throw stillBackingOff(t)
    inFlight = fetchToken().then(
      (token) => {
        failures = 0
        lastError = undefined
        return token
      },
      (err: unknown) => {
        backOff(err)
        throw lastError
      },
    )
    inFlight.finally(() => (inFlight = undefined)).catch(() => {})
    return inFlight
  }
  return Object.assign(getAccessToken, {
    getAccessToken,
    invalidate: () => {
      cached = undefined
    },
  })
}
