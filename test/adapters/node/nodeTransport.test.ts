/**
 * createNodeTransport() under what a careless deployment or a hostile provider does: the
 * keep-alive socket reused, and never holding the process open; the POST body as sent; a
 * caller's abort in the middle of a body; a connection reset mid-body; a refused port; a token
 * with a line break; options of the wrong type. (Redirects, timeouts and body limits through it
 * are in test/adapters/http/httpSockets.test.ts, next to the same tests through fetch.)
 */
import { spawn } from 'node:child_process'
import { inspect } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { createHttpApi } from '../../../src/adapters/http/httpApi.js'
import { TenNPayError } from '../../../src/adapters/http/errors.js'
import { createNodeTransport } from '../../../src/adapters/node/nodeTransport.js'
import { closeAll, deferred, startLoopback } from '../http/loopback.js'

const TOKEN = 'tok-NODE-TRANSPORT-SECRET-7'
const PENDING = JSON.stringify({ videoIdentificationUrl: null, videoIdentificationStatus: 'PROCESSING', message: null })

afterEach(closeAll)

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => e,
  )
}

describe('createNodeTransport', () => {
  it('polls over one keep-alive connection, with the bearer token and no redirect following', async () => {
    const sockets = new Set<unknown>()
    const server = await startLoopback((req, res) => {
      sockets.add(req.socket)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(PENDING)
    })
    const transport = createNodeTransport()
    const api = createHttpApi({ baseUrl: server.url, getAccessToken: () => TOKEN, transport })
    for (let i = 0; i < 20; i++) expect((await api.getStatus({ userId: 5, userType: 1 })).videoIdentificationStatus).toBe('PROCESSING')
    expect(server.requests).toHaveLength(20)
    expect(server.requests[0]).toMatchObject({ method: 'GET', url: '/Enrollment/5/1/true/get-identification-process-status' })
    expect(server.requests[0]!.headers['authorization']).toBe(`Bearer ${TOKEN}`)
    expect(sockets.size).toBe(1)
    transport.destroy()
  })

  it('by default as many connections as requests in flight (a cap would delay polls); maxSockets caps them', async () => {
    // The server answers only once `n` requests are in at once: with a cap below n, it never would.
    const held: (() => void)[] = []
    let inFlight = 0
    let most = 0
    const server = await startLoopback((_req, res) => {
      inFlight++
      most = Math.max(most, inFlight)
      held.push(() => {
        inFlight--
        res.end(PENDING)
      })
      if (held.length >= 200) for (const release of held.splice(0)) release()
    })
    const api = createHttpApi({ baseUrl: server.url, getAccessToken: () => TOKEN, transport: createNodeTransport() })
    const all = await Promise.all(Array.from({ length: 200 }, (_, i) => api.getStatus({ userId: i + 1, userType: 0 })))
    expect(all).toHaveLength(200)
    expect(most).toBe(200)

    most = 0
    const capped = createNodeTransport({ maxSockets: 2 })
    const api2 = createHttpApi({ baseUrl: server.url, getAccessToken: () => TOKEN, transport: capped })
    const p = Promise.all(Array.from({ length: 6 }, (_, i) => api2.getStatus({ userId: i + 1, userType: 0 })))
    await new Promise((r) => setTimeout(r, 100))
    expect(most).toBe(2)
    for (let i = 0; i < 3; i++) {
      for (const release of held.splice(0)) release()
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(await p).toHaveLength(6)
    expect(most).toBe(2)
    capped.destroy()
  }, 20_000)

  it('sends the POST body as JSON with its length', async () => {
    const server = await startLoopback((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ videoIdentificationUrl: 'https://onfido.example/x', videoIdentificationStatus: 'PROCESSING', message: null }))
    })
    const api = createHttpApi({ baseUrl: server.url, getAccessToken: () => TOKEN, transport: createNodeTransport() })
    const r = await api.initiate({ userId: 9, isRestartIdentification: false, correlationType: 0, userLanguage: 'bg-ünï' })
    expect(r.videoIdentificationUrl).toBe('https://onfido.example/x')
    const seen = server.requests[0]!
    expect(seen.method).toBe('POST')
    expect(seen.headers['content-type']).toBe('application/json')
    expect(Number(seen.headers['content-length'])).toBe(Buffer.byteLength(seen.body))
    expect(JSON.parse(seen.body)).toEqual({ userId: 9, isRestartIdentification: false, correlationType: 0, userLanguage: 'bg-ünï' })
  })

  it("the caller's abort in the middle of a body rejects with its reason and closes the socket", async () => {
    const headersSent = deferred()
    const server = await startLoopback((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"videoIdentificationStatus":')
      headersSent.resolve()
      // the rest never comes
    })
    const api = createHttpApi({ baseUrl: server.url, getAccessToken: () => TOKEN, transport: createNodeTransport() })
    const controller = new AbortController()
    const p = rejection(api.getStatus({ userId: 1, userType: 0 }, { signal: controller.signal }))
    await headersSent.promise
    await new Promise((r) => setTimeout(r, 20))
    const reason = new Error('the user left')
    controller.abort(reason)
    expect(await p).toBe(reason)
    await server.waitSocketsClosed(1, 1000)
  })

  it('a connection reset mid-body is a retryable network error that names the call, without the token', async () => {
    const server = await startLoopback((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
      res.write('{"videoIdentificationStatus":"PROC')
      setTimeout(() => req.socket.resetAndDestroy(), 10)
    })
    const api = createHttpApi({ baseUrl: server.url, getAccessToken: () => TOKEN, transport: createNodeTransport() })
    const err = await rejection(api.getStatus({ userId: 1, userType: 0 }))
    expect(err).toBeInstanceOf(TenNPayError)
    expect(err).toMatchObject({ kind: 'network', retryable: true, httpStatus: 200 })
    expect((err as Error).message).toContain('GET ')
    expect((err as Error).message).toMatch(/body/)
    expect(inspect(err, { depth: 10 })).not.toContain(TOKEN)
  })

  it('a refused port is a network error; a token with a line break never reaches a socket', async () => {
    const server = await startLoopback(() => {})
    const url = server.url
    await server.close()
    const refused = await rejection(createHttpApi({ baseUrl: url, getAccessToken: () => TOKEN, transport: createNodeTransport() }).getStatus({ userId: 1, userType: 0 }))
    expect(refused).toMatchObject({ kind: 'network', retryable: true })
    expect(inspect(refused, { depth: 10 })).not.toContain(TOKEN)

    const listening = await startLoopback((_req, res) => res.end(PENDING))
    const evil = `${TOKEN}\r\nx-injected: 1`
    const err = await rejection(createHttpApi({ baseUrl: listening.url, getAccessToken: () => evil, transport: createNodeTransport() }).getStatus({ userId: 1, userType: 0 }))
    expect(err).toBeInstanceOf(TenNPayError)
    expect(inspect(err, { depth: 10 })).not.toContain(TOKEN)
    expect(listening.requests).toHaveLength(0)
  })

  it('idle keep-alive connections do not hold the process open', async () => {
    // A child polls this process's server once and returns from its script: with the server
    // keeping the connection open for a minute, the child must still exit by itself.
    const server = await startLoopback((_req, res) => res.end(PENDING))
    server.server.keepAliveTimeout = 60_000
    const script = `
      import { createHttpApi } from './src/adapters/http/httpApi.ts'
      import { createNodeTransport } from './src/adapters/node/nodeTransport.ts'
      const api = createHttpApi({ baseUrl: ${JSON.stringify(server.url)}, getAccessToken: () => 't', transport: createNodeTransport({ idleTimeoutMs: 60000 }) })
      const r = await api.getStatus({ userId: 1, userType: 0 })
      console.log(r.videoIdentificationStatus)
    `
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: process.cwd() })
    let out = ''
    let err = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (err += c.toString()))
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000)
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])))
    clearTimeout(guard)
    expect(err).toBe('')
    expect(out.trim()).toBe('PROCESSING')
    expect(signal).toBeNull() // not killed by the guard: it ended by itself
    expect(code).toBe(0)
  }, 30_000)

  it('options of the wrong type are refused by name; fetch and transport together are refused', () => {
    expect(() => createNodeTransport({ maxSockets: 0 })).toThrow(/createNodeTransport: maxSockets must be a positive integer or Infinity/)
    expect(() => createNodeTransport({ maxSockets: Infinity, idleTimeoutMs: 1 })).not.toThrow()
    expect(() => createNodeTransport({ idleTimeoutMs: '5' as never })).toThrow(/idleTimeoutMs/)
    expect(() => createNodeTransport(null as never)).toThrow(/options must be an object/)
    expect(() => createHttpApi({ baseUrl: 'http://127.0.0.1:1', getAccessToken: () => TOKEN, transport: 'node' as never })).toThrow(/createHttpApi: transport must be a function/)
    expect(() => createHttpApi({ baseUrl: 'http://127.0.0.1:1', getAccessToken: () => TOKEN, transport: createNodeTransport(), fetch })).toThrow(/fetch or transport, not both/)
  })
})
