/**
 * The client against real sockets on 127.0.0.1: redirects are refused (and nothing reaches the
 * redirect's target), the timeout covers the body and releases the socket, bodies are cut at
 * `maxResponseBytes` without being buffered. Every test runs through `fetch` and through
 * `createNodeTransport()`: the guarantees are the client's, whatever sends the requests.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHttpApi as createWithFetch, type HttpApiOptions } from '../../../src/adapters/http/httpApi.js'
import { createNodeTransport } from '../../../src/adapters/node/nodeTransport.js'
import type { HttpAnswer } from '../../../src/adapters/http/transport.js'
import type { IdentificationApi } from '../../../src/machine/types.js'
import { CALLS, closeAll, deferred, invoke, manualClock, rejection, startLoopback, streamHuge } from './loopback.js'

const TOKEN = 'tok-SOCKET-SECRET-42'

afterEach(closeAll)

const TRANSPORTS = ['fetch', 'createNodeTransport'] as const

describe.each(TRANSPORTS)('through %s', (via) => {
/** The client through `via`; `onHeaders` hears when an answer's head arrived. */
function createHttpApi(o: HttpApiOptions & { onHeaders?: () => void }): IdentificationApi {
  const { onHeaders, ...options } = o
  if (via === 'fetch') {
    return createWithFetch({
      ...options,
      ...(onHeaders && {
        fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
          const res = await fetch(input, init)
          onHeaders()
          return res
        },
      }),
    })
  }
  const transport = createNodeTransport()
  return createWithFetch({
    ...options,
    transport: async (r) => {
      const a: HttpAnswer = await transport(r)
      onHeaders?.()
      return a
    },
  })
}

describe('redirects are never followed', () => {
  it.each(CALLS.flatMap((call) => [301, 302, 303, 307, 308].map((status) => [call, status] as const)))(
    '%s: a %i is a retryable bad-response and the target gets nothing',
    async (call, status) => {
      const target = await startLoopback((_req, res) => res.end('{}'))
      const api = await startLoopback((_req, res) => {
        res.writeHead(status, { location: `${target.url}/steal?token=${TOKEN}&session=s3cr3t` })
        res.end('moved')
      })
      const client = createHttpApi({ baseUrl: api.url, getAccessToken: () => TOKEN })
      const err = await rejection(invoke(client, call))
      expect(err).toMatchObject({ kind: 'bad-response', retryable: true, httpStatus: status })
      expect(err.message).toContain(call === 'getStatus' ? 'GET ' : 'POST ')
      expect(err.message).toMatch(/redirect/)
      expect(err.message).not.toContain('?')
      expect(err.message).not.toContain('s3cr3t')
      expect(err.message).not.toContain(TOKEN)
      expect(api.requests).toHaveLength(1)
      expect(target.requests).toHaveLength(0)
    },
  )
})

describe('the request timeout covers the body and releases the socket', () => {
  it.each(CALLS)('%s: headers, then one byte per second → timeout at requestTimeoutMs; the server sees the socket close', async (call) => {
    const server = await startLoopback((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{')
      let ticks = 0
      const iv = setInterval(() => {
        if (++ticks > 60) clearInterval(iv)
        else res.write(' ')
      }, 1000)
      res.on('close', () => clearInterval(iv))
    })
    const clock = manualClock()
    const headersIn = deferred()
    const client = createHttpApi({
      baseUrl: server.url,
      getAccessToken: () => TOKEN,
      clock,
      requestTimeoutMs: 10_000,
      onHeaders: () => headersIn.resolve(),
    })
    let settled = false
    const p = invoke(client, call).finally(() => (settled = true))
    await headersIn.promise
    await new Promise((r) => setImmediate(r))
    expect(settled).toBe(false) // still reading the body
    expect(clock.scheduled).toEqual([10_000])
    expect(clock.fire()).toBe(1)
    const err = await rejection(p)
    expect(err).toMatchObject({ kind: 'timeout', retryable: true })
    expect(err.message).toContain('10000 ms')
    expect(err.message).toMatch(/body/)
    await server.waitSocketsClosed(1, 1000)
    expect(clock.pending()).toBe(0)
  }, 5000)

  it('no headers at all → timeout, socket closed', async () => {
    const arrived = deferred()
    const server = await startLoopback(() => arrived.resolve()) // never answers
    const clock = manualClock()
    const client = createHttpApi({ baseUrl: server.url, getAccessToken: () => TOKEN, clock, requestTimeoutMs: 2500 })
    const p = client.getStatus({ userId: 1, userType: 0 })
    // Once the request reached the server, let the timeout pass.
    await arrived.promise
    expect(server.requests).toHaveLength(1)
    expect(clock.scheduled).toEqual([2500])
    clock.fire()
    const err = await rejection(p)
    expect(err).toMatchObject({ kind: 'timeout', retryable: true })
    expect(err.message).toContain('no answer within 2500 ms')
    await server.waitSocketsClosed(1, 1000)
  }, 5000)
})

describe('response size bound', () => {
  const MB = 1024 * 1024

  it.each([
    ['a 200 MB status answer (chunked)', 200, 200 * MB, false],
    ['a 400 MB 500 answer (chunked)', 500, 400 * MB, false],
  ] as const)('%s is cut at 1 MiB: bad-response, rss grows < 100 MB, socket released', async (_name, status, size) => {
    const server = await startLoopback((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      streamHuge(res, '{"videoIdentificationStatus":"PROCESSING","message":"', size)
    })
    const client = createHttpApi({ baseUrl: server.url, getAccessToken: () => TOKEN })
    const before = process.memoryUsage().rss
    const err = await rejection(client.getStatus({ userId: 1, userType: 0 }))
    const grown = process.memoryUsage().rss - before
    expect(err).toMatchObject({ kind: 'bad-response', retryable: true, httpStatus: status })
    expect(err.message).toContain('1048576')
    expect(grown).toBeLessThan(100 * MB)
    await server.waitSocketsClosed(1, 1000)
  }, 20_000)

  it('a Content-Length above the limit fails before the body is read', async () => {
    const server = await startLoopback((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(200 * MB) })
      streamHuge(res, '{"message":"', 200 * MB - 12)
    })
    const client = createHttpApi({ baseUrl: server.url, getAccessToken: () => TOKEN, maxResponseBytes: 4096 })
    const before = process.memoryUsage().rss
    for (const call of CALLS) {
      const err = await rejection(invoke(client, call))
      expect(err).toMatchObject({ kind: 'bad-response', retryable: true, httpStatus: 200 })
      expect(err.message).toContain('4096')
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * MB)
    await server.waitSocketsClosed(3, 1000)
  }, 20_000)

  it('a body at the limit is read; one byte more is not', async () => {
    const body = JSON.stringify({ videoIdentificationStatus: 'PROCESSING', message: 'x'.repeat(100) })
    const server = await startLoopback((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }) // chunked: no Content-Length to go by
      res.end(req.url!.includes('/1/') ? body : `${body} `)
    })
    const client = createHttpApi({ baseUrl: server.url, getAccessToken: () => TOKEN, maxResponseBytes: Buffer.byteLength(body) })
    expect((await client.getStatus({ userId: 1, userType: 0 })).videoIdentificationStatus).toBe('PROCESSING')
    const err = await rejection(client.getStatus({ userId: 2, userType: 0 }))
    expect(err.kind).toBe('bad-response')
  })
})
})
