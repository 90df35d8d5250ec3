/**
 * PostgreSQL for the cluster suites: a throw-away database per test file (created through the
 * `postgres` database, dropped afterwards: nothing outside it is touched), and a TCP proxy in
 * front of the server that can refuse, cut or swallow connections (PostgreSQL down, restarted,
 * unreachable).
 */
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import pg from 'pg'

/** The server the suites use (trust auth on loopback); override with TENPAY_PG_URL. */
export const PG_ADMIN_URL = process.env.TENPAY_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'

export interface TestDatabase {
  name: string
  /** Connection string of the new database. */
  url: string
  /** A pool on it (ended by `drop()`). */
  pool(max?: number, extra?: pg.PoolConfig): pg.Pool
  /** Ends the pools made by `pool()` and drops the database (other connections are cut). */
  drop(): Promise<void>
}

export const urlOf = (database: string, base = PG_ADMIN_URL) => {
  const u = new URL(base)
  u.pathname = `/${database}`
  return u.toString()
}

/** `CREATE DATABASE tenpay_<random>` on the admin connection. */
export async function createTestDatabase(prefix = 'tenpay'): Promise<TestDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE "${name}"`)
  } finally {
    await admin.end()
  }
  const url = urlOf(name)
  const pools: pg.Pool[] = []
  return {
    name,
    url,
    pool(max = 10, extra = {}) {
      const p = new pg.Pool({ connectionString: url, max, ...extra })
      p.on('error', () => {})
      pools.push(p)
      return p
    },
    async drop() {
      await Promise.all(pools.map((p) => p.end().catch(() => {})))
      const a = new pg.Client({ connectionString: PG_ADMIN_URL })
      await a.connect()
      try {
        await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      } finally {
        await a.end()
      }
    },
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((r) => server.close(() => r()))
  return port
}

export interface TcpProxy {
  readonly port: number
  /** Connections made through the proxy so far. */
  readonly accepted: number
  /** Stops listening (new connections are refused) and cuts every open connection. */
  down(): Promise<void>
  /** Listens again on the same port and forwards. */
  up(): Promise<void>
  /** Accepts connections but never forwards a byte (a host that does not answer). */
  blackhole(on: boolean): void
  close(): Promise<void>
}

/** A TCP proxy on loopback in front of `target` (the PostgreSQL server by default). */
export async function startTcpProxy(target = new URL(PG_ADMIN_URL)): Promise<TcpProxy> {
  const host = target.hostname || '127.0.0.1'
  const targetPort = Number(target.port || 5432)
  const sockets = new Set<net.Socket>()
  let swallow = false
  let accepted = 0
  let server: net.Server | undefined
  let port = 0
  const track = (s: net.Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => s.destroy())
  }
  const onConnection = (client: net.Socket) => {
    accepted++
    track(client)
    if (swallow) return
    const upstream = net.connect(targetPort, host)
    track(upstream)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
    client.pipe(upstream)
    upstream.pipe(client)
  }
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer(onConnection)
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => {
        port = (s.address() as net.AddressInfo).port
        server = s
        resolve()
      })
    })
  const stop = async () => {
    const s = server
    server = undefined
    for (const sock of sockets) sock.destroy()
    if (s) await new Promise<void>((r) => s.close(() => r()))
  }
  await listen()
  return {
    get port() {
      return port
    },
    get accepted() {
      return accepted
    },
    down: stop,
    async up() {
      if (!server) await listen()
    },
    blackhole(on) {
      swallow = on
    },
    close: stop,
  }
}
