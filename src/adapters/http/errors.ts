import type { ErrorKind } from '../../machine/types.js'

/** Options of a {@link TenNPayError}. */
export interface TenNPayErrorOptions {
  httpStatus?: number
  retryAfterMs?: number
  /** What went wrong underneath; kept only as a plain {@link ErrorCause}. */
  cause?: unknown
}

/**
 * The cause a {@link TenNPayError} keeps: a plain summary of the underlying error, never the
 * error itself (which may hold a `Request`, `Headers`, a `Response` or the options of the call).
 */
export interface ErrorCause {
  name: string
  message: string
  /** A string `code` of the error or of its own cause, e.g. `ECONNRESET`. */
  code?: string
}

const KEYS = 'access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret|password|passwd|authorization'
/** `"key": "value"` (or a bare JSON value) in JSON; a string cut short runs to the end of the text. */
const JSON_PAIR = new RegExp(`("(?:${KEYS})"\\s*:\\s*)(?:"(?:[^"\\\\]|\\\\[^])*(?:"|$)|[^,}\\]\\s]+)`, 'gi')
/** The same inside a JSON string: `\\"key\\": \\"value\\"`. */
const ESCAPED_JSON_PAIR = new RegExp(`(\\\\"(?:${KEYS})\\\\"\\s*:\\s*)\\\\"(?:[^\\\\]|\\\\[^"])*(?:\\\\"|\\\\?$)`, 'gi')
/** `key=value` in a form or a query string (form-encoded values hold no `;` or `,`). */
const FORM_PAIR = new RegExp(`\\b(${KEYS})=(?:\\[redacted\\]|[^&\\s"'<>;,]*)`, 'gi')
/** `Bearer <anything>`. */
const BEARER = /\b(Bearer)\s+(?:\[redacted\]|[^\s"'<>\\;,]+)/gi
/** `key: value` in a header-like line: the credentials after `Bearer`/`Basic`, else the rest of the line. */
const HEADER_PAIR = new RegExp(
  `\\b(${KEYS})([ \\t]*:[ \\t]*)(?![ \\t])(?:(Bearer|Basic)[ \\t]+(?:\\[redacted\\]|[^\\s"'<>\\\\;,]+)|\\[redacted\\]|[^\\r\\n]*)`,
  'gi',
)

/**
 * Removes credentials from text that came from elsewhere (a provider's body, an underlying
 * error): every occurrence of `secrets` (also URL- and JSON-encoded; secrets shorter than 4
 * characters are left to the patterns), `Bearer <anything>`, and the values of `access_token`,
 * `refresh_token`, `id_token`, `client_secret`, `password` and `authorization` written as JSON
 * (`"key":"value"`), as a form (`key=value`) or as a header (`key: value`). Idempotent: text
 * already redacted stays as it is.
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text
  if (secrets.length > 0) {
    const forms = new Set<string>()
    for (const s of secrets) {
      if (typeof s !== 'string' || s.length < 4) continue
      forms.add(s)
      forms.add(encodeURIComponent(s))
      forms.add(new URLSearchParams({ s }).toString().slice(2))
      forms.add(JSON.stringify(s).slice(1, -1))
    }
    for (const f of [...forms].sort((a, b) => b.length - a.length)) if (out.includes(f)) out = out.split(f).join('[redacted]')
  }
  return out
    .replace(JSON_PAIR, '$1"[redacted]"')
    .replace(ESCAPED_JSON_PAIR, '$1\\"[redacted]\\"')
    .replace(FORM_PAIR, '$1=[redacted]')
    .replace(BEARER, '$1 [redacted]')
    .replace(HEADER_PAIR, (_m, key: string, sep: string, scheme: string | undefined) => `${key}${sep}${scheme ? `${scheme} ` : ''}[redacted]`)
}

/**
 * A plain `{ name, message, code }` of any thrown value, its message redacted. The code is the
 * value's own string `code`, else its cause's.
 */
export function plainCause(err: unknown, secrets: readonly string[] = []): ErrorCause {
  if (err === null || (typeof err !== 'object' && typeof err !== 'function')) {
    return { name: typeof err, message: redact(String(err), secrets) }
  }
  const e = err as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown }
  const name = typeof e.name === 'string' ? e.name : 'Error'
  const message = typeof e.message === 'string' ? e.message : 'unknown error'
  const inner = e.cause !== null && typeof e.cause === 'object' ? (e.cause as { code?: unknown }).code : undefined
  const code = typeof e.code === 'string' ? e.code : typeof inner === 'string' ? inner : undefined
  const out: ErrorCause = { name: redact(name, secrets), message: redact(message, secrets) }
  if (code !== undefined) out.code = redact(code, secrets)
  return out
}

/**
 * Every failure of the provider client. `kind` says what went wrong, `retryable` whether the
 * same request may succeed later. The message names the call and what came back; it never
 * holds the access token.
 *
 * | kind | when | retryable |
 * |---|---|---|
 * | `unauthorized` | `401` after one forced token refresh | no |
 * | `rejected` | `400`, `404` and other `4xx` | no |
 * | `transient` | `408`, `429`, `5xx` | yes |
 * | `bad-response` | a body that is not JSON or fails the schema | yes |
 * | `network` | socket errors | yes |
 * | `timeout` | the per-request timeout passed | yes |
 *
 * `cause`, when set, is a plain {@link ErrorCause} (`{ name, message, code }`), never the
 * underlying error object; the message is passed through {@link redact}.
 */
export class TenNPayError extends Error {
  override readonly name = 'TenNPayError'
  readonly kind: ErrorKind
  readonly httpStatus?: number
  /** From `Retry-After`, in milliseconds. */
  readonly retryAfterMs?: number
  readonly retryable: boolean

  constructor(kind: ErrorKind, message: string, options: TenNPayErrorOptions = {}) {
    super(redact(message), options.cause === undefined ? undefined : { cause: plainCause(options.cause) })
    this.kind = kind
    if (options.httpStatus !== undefined) this.httpStatus = options.httpStatus
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs
    this.retryable = kind !== 'unauthorized' && kind !== 'rejected'
  }
}

/** Maps an HTTP status to an error kind: `401` unauthorized, `408`/`429`/`5xx` transient, other `4xx` rejected. */
export function kindForStatus(status: number): ErrorKind {
  if (status === 401) return 'unauthorized'
  if (status === 408 || status === 429 || status >= 500) return 'transient'
  return 'rejected'
}

/**
 * Parses `Retry-After` (delta seconds or an HTTP date) into milliseconds, capped at one hour.
 * @returns `undefined` when absent or unreadable
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined
  const v = value.trim()
  if (v === '') return undefined
  let ms: number
  if (/^\d+(\.\d+)?$/.test(v)) ms = Number(v) * 1000
  else {
    const t = Date.parse(v)
    if (Number.isNaN(t)) return undefined
    ms = t - now
  }
  return Math.min(3600_000, Math.max(0, Math.round(ms)))
}
