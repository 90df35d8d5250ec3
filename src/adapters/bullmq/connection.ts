/**
 * How the BullMQ coordinator reaches Redis: a `redis://` / `rediss://` URL or ioredis options,
 * turned into plain ioredis options, a description without secrets for error messages, and the
 * secrets to scrub from anything Redis or a driver says.
 */

/**
 * Options of the ioredis client, as the coordinator passes them on (any other ioredis option
 * may be given too). The coordinator sets `maxRetriesPerRequest`, `enableOfflineQueue`,
 * `commandTimeout`, `connectionName` and `lazyConnect` itself for each of its connections.
 */
export interface RedisConnectionOptions {
  /** @default '127.0.0.1' */
  host?: string
  /** @default 6379 */
  port?: number
  /** A Unix socket instead of `host` and `port`. @default none */
  path?: string
  /** The ACL user. @default none (the `default` user) */
  username?: string
  /** Never shown in errors. @default none */
  password?: string
  /** The logical database. @default 0 */
  db?: number
  /** TLS options (`rediss://` sets `{}`). @default none (plain TCP) */
  tls?: Record<string, unknown>
  /** IP family for `host` lookups: 4, 6 or 0 (both). @default 0 */
  family?: number
  /** How long a connection attempt may take. @default 10000 */
  connectTimeout?: number
  /**
   * Delay before reconnect attempt `times` (ms), or `null` to give up.
   * @default (times) => Math.min(times * 200, 2000)
   */
  retryStrategy?: (times: number) => number | null | void
  /** Any other ioredis option. */
  [option: string]: unknown
}

/** A connection, resolved. */
export interface ResolvedConnection {
  /** ioredis options shared by every connection of the coordinator. */
  options: Record<string, unknown>
  /** `host:port` or the socket path: safe to show. */
  where: string
  /** Strings never to show (the password, and its URL-encoded form). */
  secrets: string[]
}

/** Options the coordinator decides per connection: ignored when given. */
const OWN_OPTIONS = ['maxRetriesPerRequest', 'enableOfflineQueue', 'commandTimeout', 'connectionName', 'lazyConnect', 'keyPrefix']

/**
 * Resolves `connection` (a URL or ioredis options). Throws a `TypeError` that never repeats the
 * URL or the password.
 */
export function resolveConnection(connection: unknown): ResolvedConnection {
  if (typeof connection === 'string') return fromUrl(connection)
  if (connection === null || typeof connection !== 'object' || Array.isArray(connection)) {
    throw new TypeError('createBullMQCoordinator: connection must be a redis:// URL or ioredis options { host, port, ... }')
  }
  const options: Record<string, unknown> = { ...(connection as Record<string, unknown>) }
  for (const k of OWN_OPTIONS) delete options[k]
  if (options.host !== undefined && (typeof options.host !== 'string' || options.host === '')) throw new TypeError('createBullMQCoordinator: connection.host must be a non-empty string')
  if (options.port !== undefined && !(Number.isInteger(options.port) && (options.port as number) > 0 && (options.port as number) < 65536)) {
    throw new TypeError('createBullMQCoordinator: connection.port must be an integer from 1 to 65535')
  }
  if (options.path !== undefined && (typeof options.path !== 'string' || options.path === '')) throw new TypeError('createBullMQCoordinator: connection.path must be a non-empty string')
  if (options.password !== undefined && typeof options.password !== 'string') throw new TypeError('createBullMQCoordinator: connection.password must be a string')
  if (options.db !== undefined && !(Number.isInteger(options.db) && (options.db as number) >= 0)) throw new TypeError('createBullMQCoordinator: connection.db must be a non-negative integer')
  if (options.path === undefined) {
    options.host ??= '127.0.0.1'
    options.port ??= 6379
  }
  options.retryStrategy ??= defaultRetry
  const where = typeof options.path === 'string' ? `unix:${options.path}` : `${String(options.host)}:${String(options.port)}`
  return { options, where, secrets: secretsOf(options.password as string | undefined) }
}

const defaultRetry = (times: number) => Math.min(times * 200, 2000)

function fromUrl(text: string): ResolvedConnection {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new TypeError('createBullMQCoordinator: connection is not a valid URL (expected redis://[user:password@]host[:port][/db])')
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new TypeError(`createBullMQCoordinator: connection URL must start with redis:// or rediss:// (not ${url.protocol.slice(0, 20)}//)`)
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1'
  const port = url.port ? Number(url.port) : 6379
  const options: Record<string, unknown> = { host, port, retryStrategy: defaultRetry }
  let password: string | undefined
  try {
    if (url.username) options.username = decodeURIComponent(url.username)
    if (url.password) password = decodeURIComponent(url.password)
  } catch {
    throw new TypeError('createBullMQCoordinator: the user or password in the connection URL is not valid percent-encoding')
  }
  if (password !== undefined) options.password = password
  const db = url.pathname.replace(/^\//, '')
  if (db !== '') {
    if (!/^\d+$/.test(db)) throw new TypeError('createBullMQCoordinator: the database in the connection URL must be a number (redis://host:port/0)')
    options.db = Number(db)
  }
  if (url.protocol === 'rediss:') options.tls = {}
  const family = url.searchParams.get('family')
  if (family === '4' || family === '6') options.family = Number(family)
  const secrets = secretsOf(password)
  if (url.password) secrets.push(url.password)
  return { options, where: `${host.includes(':') ? `[${host}]` : host}:${port}`, secrets }
}

function secretsOf(password: string | undefined): string[] {
  if (!password) return []
  return [...new Set([password, encodeURIComponent(password)])]
}

/** `text` without the secrets and without any `user:password@` of a URL. */
function scrub(text: string, secrets: readonly string[]): string {
  let out = text.replace(/(\/\/[^:@/\s]*:)[^@\s]*@/g, '$1[redacted]@')
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('[redacted]')
  return out
}

/** An error reduced to `{ name, message, code }` with the secrets scrubbed (driver errors can carry the AUTH arguments). */
export function plainCause(err: unknown, secrets: readonly string[]): { name: string; message: string; code?: string } {
  const e = err as { name?: unknown; message?: unknown; code?: unknown } | null | undefined
  const out: { name: string; message: string; code?: string } = {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: scrub(typeof e?.message === 'string' ? e.message : String(err), secrets),
  }
  if (typeof e?.code === 'string') out.code = e.code
  return out
}
