/**
 * What the PostgreSQL store needs of `pg` 8, as structural types (so that the package's types do
 * not depend on `@types/pg`), the lazy loader of the optional peer dependency, and the reduction
 * of driver errors to messages that hold no connection string and no password.
 */
import { DependencyError } from '../server/errors.js'

/** A query as the store sends it: parameterised text, optionally a named (prepared) statement. */
export interface PgQuery {
  text: string
  values?: unknown[]
  name?: string
  /** `pg`'s client-side read timeout for this query (ms), instead of the pool's. */
  query_timeout?: number
}

/** The result of a query (the part the store reads). */
export interface PgResult {
  rows: unknown[]
  rowCount: number | null
}

/** A connection checked out of a pool (`pg.PoolClient`). */
export interface PgPoolClient {
  query(query: PgQuery): Promise<PgResult>
  /** Returns the connection to its pool; with an error, the pool discards it. */
  release(err?: Error | boolean): void
}

/** A connection pool: `pg.Pool` fits, and so does anything with these three methods. */
export interface PgPool {
  query(query: PgQuery): Promise<PgResult>
  connect(): Promise<PgPoolClient>
  end(): Promise<void>
}

/** The part of `pg.PoolConfig` the store sets for a pool of its own. */
interface OwnPoolConfig {
  connectionString: string
  max: number
  connectionTimeoutMillis: number
  idleTimeoutMillis: number
  statement_timeout?: number
  query_timeout?: number
  keepAlive: boolean
  application_name: string
}

type PoolConstructor = new (config: OwnPoolConfig) => PgPool & { on(event: 'error', listener: (err: Error) => void): unknown }

/** The install hint every method rejects with when `pg` cannot be loaded. */
const PG_MISSING = 'createPostgresFlowStore needs the pg package (version 8), an optional peer dependency: npm install pg@8'

/** Loads `pg` (only when the store makes its own pool). */
export async function loadPool(): Promise<PoolConstructor> {
  let mod: { Pool?: unknown; default?: { Pool?: unknown } }
  try {
    mod = (await import('pg')) as unknown as typeof mod
  } catch (err) {
    throw new Error(PG_MISSING, { cause: plainCause(err, []) })
  }
  const Pool = mod.Pool ?? mod.default?.Pool
  if (typeof Pool !== 'function') throw new Error(`${PG_MISSING} (the installed pg has no Pool)`)
  return Pool as PoolConstructor
}

/**
 * The strings that must never appear in an error of the store: the connection string and the
 * password it holds (raw and decoded), whatever its format (URL or `key=value`).
 */
export function secretsOf(connectionString: string | undefined): string[] {
  if (!connectionString) return []
  const out = new Set<string>([connectionString])
  try {
    const url = new URL(connectionString)
    if (url.password) {
      out.add(url.password)
      try {
        out.add(decodeURIComponent(url.password))
      } catch {
        // not percent-encoded: the raw form is there already
      }
    }
    if (url.username) out.add(`${url.username}:${url.password}`)
  } catch {
    // not a URL: key=value, or malformed (then the raw string and the patterns below cover it)
  }
  for (const m of connectionString.matchAll(/password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)/gi)) {
    const v = m[1]!
    out.add(v)
    if (v.startsWith("'")) out.add(v.slice(1, -1))
  }
  // The user info of a URL that `new URL` could not parse (a password with a bare `@`, `#`, `/`, …).
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/(.*)@[^@]*$/i.exec(connectionString)?.[1]
  if (userinfo) {
    out.add(userinfo)
    const colon = userinfo.indexOf(':')
    if (colon >= 0) out.add(userinfo.slice(colon + 1))
  }
  return [...out].filter((s) => s.length > 0).sort((a, b) => b.length - a.length)
}

/** A message with every secret, URL user info and `password=` value replaced. */
function redact(message: string, secrets: readonly string[]): string {
  let m = message
  for (const s of secrets) m = m.split(s).join('[redacted]')
  return m.replace(/\/\/[^@/\s]*@/g, '//[redacted]@').replace(/(password\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi, '$1[redacted]')
}

function messageOf(err: unknown): string {
  const e = err as { message?: unknown; code?: unknown; errors?: unknown }
  if (typeof e?.message === 'string' && e.message !== '') return e.message
  // Node's AggregateError for a refused connection (IPv4 and IPv6) has an empty message.
  if (Array.isArray(e?.errors) && e.errors.length > 0) return messageOf(e.errors[0])
  if (typeof e?.code === 'string') return e.code
  return err instanceof Error ? err.name : String(err)
}

/** `{ name, message, code }` of an error, redacted: driver errors carry hosts, parameters, sometimes the URL. */
export function plainCause(err: unknown, secrets: readonly string[]): { name: string; message: string; code?: string } {
  const e = err as { name?: unknown; code?: unknown }
  const out: { name: string; message: string; code?: string } = {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: redact(messageOf(err), secrets),
  }
  if (typeof e?.code === 'string') out.code = e.code
  return out
}

/**
 * The error a store method rejects with when PostgreSQL fails: a {@link DependencyError} naming
 * PostgreSQL, with a redacted message and a plain cause (never the driver's error object, which
 * can hold the connection string, the password or query parameters).
 */
export function storeError(operation: string, err: unknown, secrets: readonly string[]): DependencyError {
  const cause = plainCause(err, secrets)
  return new DependencyError('PostgreSQL', `${operation} failed: ${cause.message}${cause.code && !cause.message.includes(cause.code) ? ` (${cause.code})` : ''}`, { cause })
}

/** 32-bit FNV-1a, as a signed int4 (advisory lock keys, statement names). */
export function fnv32(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h | 0
}
