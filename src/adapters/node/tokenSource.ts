import { TenNPayError, kindForStatus } from '../http/errors.js'
import { tokenResponseSchema } from '../http/schemas.js'

/** Options of {@link createPasswordGrantTokenSource}. */
export interface PasswordGrantOptions {
  /** The token endpoint, e.g. `https://auth-test.10npay.com/connect/token`. */
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
   * The transport.
   * @default globalThis.fetch
   */
  fetch?: typeof fetch
  /**
   * How long before `expires_in` runs out a token is refreshed.
   * @default 30000
   */
  refreshMarginMs?: number
  /**
   * Per request, in milliseconds.
   * @default 10000
   */
  requestTimeoutMs?: number
  /** The time source. @default Date.now */
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

/**
 * The `getAccessToken` for servers: the provider's OAuth 2.0 password grant
 * (`application/x-www-form-urlencoded`, client credentials in HTTP Basic). Caches the token,
 * refreshes it on `forceRefresh` and before `expires_in` runs out, and shares one request among
 * concurrent callers. Errors are `TenNPayError`s that name the endpoint and the answer, never a
 * secret.
 *
 * @example
 * const tokens = createPasswordGrantTokenSource({
 *   tokenUrl: 'https://auth-test.10npay.com/connect/token',
 *   clientId, clientSecret, username, password,
 * })
 * const api = createHttpApi({ baseUrl: 'https://api-test.10npay.com', getAccessToken: tokens })
 */
export function createPasswordGrantTokenSource(options: PasswordGrantOptions): PasswordGrantTokenSource {
  if (!options || typeof options !== 'object') throw new TypeError('createPasswordGrantTokenSource: options are required')
  for (const field of ['tokenUrl', 'clientId', 'clientSecret', 'username', 'password'] as const) {
    if (typeof options[field] !== 'string' || options[field] === '') {
      throw new TypeError(`createPasswordGrantTokenSource: ${field} must be a non-empty string`)
    }
  }
  try {
    new URL(options.tokenUrl)
  } catch {
    throw new TypeError('createPasswordGrantTokenSource: tokenUrl must be an absolute URL')
  }
  const doFetch = options.fetch ?? globalThis.fetch
  const now = options.now ?? Date.now
  const margin = options.refreshMarginMs ?? 30_000
  const timeoutMs = options.requestTimeoutMs ?? 10_000
  const basic = btoa(`${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`)
  const call = `POST ${options.tokenUrl}`

  let cached: { token: string; refreshAt: number } | undefined
  let inFlight: Promise<string> | undefined

  async function fetchToken(): Promise<string> {
    const body = new URLSearchParams({
      client_id: options.clientId,
      grant_type: 'password',
      username: options.username,
      password: options.password,
    })
    if (options.scope) body.set('scope', options.scope)
    let res: Response
    let text: string
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      res = await doFetch(options.tokenUrl, {
        method: 'POST',
        headers: {
          authorization: `Basic ${basic}`,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body,
        signal,
      })
      text = await res.text()
    } catch (err) {
      if (signal.aborted) throw new TenNPayError('timeout', `${call}: no answer within ${timeoutMs} ms`)
      throw new TenNPayError('network', `${call}: network error: ${err instanceof Error ? err.message : 'unknown'}`)
    }
    if (!res.ok) {
      // Only the OAuth error code is echoed: a body could repeat what was sent.
      let code = ''
      try {
        const e = JSON.parse(text) as { error?: unknown }
        if (typeof e.error === 'string' && /^[a-z_]{1,64}$/.test(e.error)) code = ` (${e.error})`
      } catch {
        /* not JSON */
      }
      const kind = res.status === 400 || res.status === 401 ? 'unauthorized' : kindForStatus(res.status)
      throw new TenNPayError(kind, `${call} answered ${res.status}${code}: the token was refused`, { httpStatus: res.status })
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      throw new TenNPayError('bad-response', `${call} answered ${res.status} with a body that is not JSON`, { httpStatus: res.status })
    }
    const parsed = tokenResponseSchema.safeParse(json)
    if (!parsed.success) {
      throw new TenNPayError('bad-response', `${call} answered ${res.status} without an access_token`, { httpStatus: res.status })
    }
    const { access_token, expires_in } = parsed.data
    const life = typeof expires_in === 'number' && expires_in > 0 ? expires_in * 1000 : Infinity
    cached = { token: access_token, refreshAt: now() + Math.max(life - margin, life / 2) }
    return access_token
  }

  const getAccessToken: AccessTokenGetter = async (o) => {
    if (!o?.forceRefresh && cached && now() < cached.refreshAt) return cached.token
    if (o?.forceRefresh) cached = undefined
    inFlight ??= fetchToken().finally(() => {
      inFlight = undefined
    })
    return inFlight
  }
  return Object.assign(getAccessToken, {
    getAccessToken,
    invalidate: () => {
      cached = undefined
    },
  })
}
