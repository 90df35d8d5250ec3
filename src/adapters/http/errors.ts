import { redact } from '../../machine/redact.js'
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
