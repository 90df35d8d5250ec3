import { afterEach, describe, expect, it, vi } from 'vitest'
import { TenNPayError } from '../../../src/adapters/http/errors.js'
import { createPasswordGrantTokenSource, type PasswordGrantOptions } from '../../../src/adapters/node/tokenSource.js'
import { createSimulator } from '../../../src/simulator/simulator.js'
import { closeAll, deferred, manualClock, startLoopback, streamHuge } from '../http/loopback.js'

afterEach(closeAll)

const SECRET = 'client-SECRET-xyz'
const PASSWORD = 'user-PASSWORD-abc'

function setup(opts: { now?: () => number; expiresIn?: number } = {}) {
  let n = 0
  const fetch = vi.fn(async (_url: RequestInfo | URL, init?: RequestInit) => {
    n++
    return new Response(JSON.stringify({ access_token: `token-${n}`, ...(opts.expiresIn && { expires_in: opts.expiresIn }) }), { status: 200 })
  })
  const source = createPasswordGrantTokenSource({
    tokenUrl: 'https://auth.example/connect/token',
    clientId: 'client',
    clientSecret: SECRET,
    username: 'merchant',
    password: PASSWORD,
    fetch: fetch as unknown as typeof globalThis.fetch,
    ...(opts.now && { now: opts.now }),
  })
  return { source, fetch }
}

describe('createPasswordGrantTokenSource', () => {
  it('talks the password grant with HTTP Basic client credentials (against the simulator)', async () => {
    const sim = createSimulator({ credentials: { clientSecret: SECRET, password: PASSWORD } })
    const source = createPasswordGrantTokenSource({
      tokenUrl: 'http://127.0.0.1/connect/token', clientId: 'demo-client', clientSecret: SECRET, username: 'demo', password: PASSWORD, fetch: sim.fetch,
    })
    const token = await source({ forceRefresh: false })
    expect(token).toMatch(/^sim\./)
    expect(await source.getAccessToken()).toBe(token)
    expect(sim.requests.filter((r) => r.endpoint === 'token')).toHaveLength(1)
  })

  it('sends a form body and Basic auth', async () => {
    const { source, fetch } = setup()
    await source()
    const init = fetch.mock.calls[0]![1]!
    const headers = new Headers(init.headers)
    expect(headers.get('authorization')).toBe(`Basic ${btoa(`client:${SECRET}`)}`)
    expect(headers.get('content-type')).toBe('application/x-www-form-urlencoded')
    expect(Object.fromEntries(new URLSearchParams(String(init.body)))).toEqual({
      client_id: 'client', grant_type: 'password', username: 'merchant', password: PASSWORD,
    })
  })

  it('caches, refreshes on forceRefresh, and shares one request among concurrent callers', async () => {
    const { source, fetch } = setup()
    const [a, b, c] = await Promise.all([source(), source(), source()])
    expect([a, b, c]).toEqual(['token-1', 'token-1', 'token-1'])
    expect(fetch).toHaveBeenCalledTimes(1)
    expect(await source()).toBe('token-1')
    expect(await source({ forceRefresh: true })).toBe('token-2')
    expect(fetch).toHaveBeenCalledTimes(2)
  })

  it('refreshes before expires_in runs out', async () => {
    let t = 0
    const { source, fetch } = setup({ now: () => t, expiresIn: 300 })
    expect(await source()).toBe('token-1')
    t = 260_000
    expect(await source()).toBe('token-1')
    t = 271_000 // within the 30 s margin
    expect(await source()).toBe('token-2')
    expect(fetch).toHaveBeenCalledTimes(2)
  })

  it('never puts a secret in an error', async () => {
    for (const [status, body] of [
      [400, JSON.stringify({ error: 'invalid_grant', error_description: `bad password ${PASSWORD}` })],
      [401, JSON.stringify({ error: 'invalid_client', echo: SECRET })],
      [500, `<html>${SECRET}</html>`],
      [200, JSON.stringify({ nothing: SECRET })],
    ] as const) {
      const source = createPasswordGrantTokenSource({
        tokenUrl: 'https://auth.example/connect/token', clientId: 'client', clientSecret: SECRET, username: 'u', password: PASSWORD,
        fetch: (async () => new Response(body, { status })) as typeof fetch,
      })
      const err = (await source().catch((e: unknown) => e)) as Error & { kind: string }
      expect(err.name).toBe('TenNPayError')
      expect(err.message).toContain('https://auth.example/connect/token')
      expect(`${err.message}\n${err.stack}`).not.toContain(SECRET)
      expect(`${err.message}\n${err.stack}`).not.toContain(PASSWORD)
      expect(err.kind).toBe(status === 500 ? 'transient' : status === 200 ? 'bad-response' : 'unauthorized')
    }
  })

  it('validates its options, naming the field', () => {
    const base = { tokenUrl: 'https://a/t', clientId: 'c', clientSecret: 's', username: 'u', password: 'p' }
    expect(() => createPasswordGrantTokenSource({ ...base, clientSecret: '' })).toThrow(/clientSecret/)
    expect(() => createPasswordGrantTokenSource({ ...base, tokenUrl: 'nope' })).toThrow(/tokenUrl/)
  })

  describe('tokenUrl must be https: (http: only on loopback or with allowInsecureHttp)', () => {
    const base = { clientId: 'c', clientSecret: 's', username: 'u', password: 'p' }
    it.each([
      ['https://auth.example/connect/token', undefined, true],
      ['http://127.0.0.1:4000/connect/token', undefined, true],
      ['http://127.200.0.1/connect/token', undefined, true],
      ['http://localhost/connect/token', undefined, true],
      ['http://[::1]/connect/token', undefined, true],
      ['http://auth.example/connect/token', undefined, false],
      ['http://auth.example/connect/token', true, true],
      ['http://192.168.1.1/connect/token', undefined, false],
      ['ftp://auth.example/connect/token', true, false],
      ['file:///connect/token', true, false],
    ] as const)('%s (allowInsecureHttp %s) → accepted %s', (tokenUrl, allowInsecureHttp, accepted) => {
      const make = () => createPasswordGrantTokenSource({ ...base, tokenUrl, ...(allowInsecureHttp !== undefined && { allowInsecureHttp }) })
      if (accepted) expect(make).not.toThrow()
      else {
        expect(make).toThrow(TypeError)
        expect(make).toThrow(
          `createPasswordGrantTokenSource: tokenUrl must be https: (http: only for loopback hosts or with allowInsecureHttp: true); got ${tokenUrl}`,
        )
      }
    })
  })

  it('sends the token request with redirect: manual', async () => {
    const { source, fetch } = setup()
    await source()
    expect(fetch.mock.calls[0]![1]!.redirect).toBe('manual')
  })

  it.each([301, 302, 303, 307, 308])('a %i from the token endpoint is a non-retryable error; the target gets nothing, not the password', async (status) => {
    const target = await startLoopback((_req, res) => res.end(JSON.stringify({ access_token: 'stolen' })))
    const auth = await startLoopback((_req, res) => {
      res.writeHead(status, { location: `${target.url}/connect/token?next=s3cr3t` })
      res.end()
    })
    const source = createPasswordGrantTokenSource({
      tokenUrl: `${auth.url}/connect/token`, clientId: 'client', clientSecret: SECRET, username: 'merchant', password: PASSWORD,
    })
    const err = (await source().catch((e: unknown) => e)) as TenNPayError
    expect(err).toBeInstanceOf(TenNPayError)
    expect(err).toMatchObject({ kind: 'rejected', retryable: false, httpStatus: status })
    expect(err.message).toMatch(/redirect/)
    expect(err.message).not.toContain('s3cr3t')
    expect(auth.requests).toHaveLength(1)
    expect(auth.requests[0]!.body).toContain('password=')
    expect(target.requests).toHaveLength(0)
  })

  it('the request timeout covers the body (injected clock) and releases the socket', { timeout: 5000 }, async () => {
    const server = await startLoopback((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"access_token":')
      let ticks = 0
      const iv = setInterval(() => {
        if (++ticks > 60) clearInterval(iv)
        else res.write(' ')
      }, 1000)
      res.on('close', () => clearInterval(iv))
    })
    const clock = manualClock()
    const headersIn = deferred()
    const source = createPasswordGrantTokenSource({
      tokenUrl: `${server.url}/connect/token`, clientId: 'client', clientSecret: SECRET, username: 'u', password: PASSWORD,
      clock, requestTimeoutMs: 4321,
      fetch: async (input, init) => {
        const res = await fetch(input, init)
        headersIn.resolve()
        return res
      },
    })
    const p = source().catch((e: unknown) => e)
    await headersIn.promise
    expect(clock.scheduled).toEqual([4321])
    clock.fire()
    const err = (await p) as TenNPayError
    expect(err).toBeInstanceOf(TenNPayError)
    expect(err).toMatchObject({ kind: 'timeout', retryable: true })
    expect(err.message).toContain('4321 ms')
    await server.waitSocketsClosed(1, 1000)
    expect(clock.pending()).toBe(0)
  })

  it('cuts a huge token answer at 64 KiB without buffering it', { timeout: 20_000 }, async () => {
    const server = await startLoopback((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      streamHuge(res, '{"access_token":"', 200 * 1024 * 1024)
    })
    const source = createPasswordGrantTokenSource({
      tokenUrl: `${server.url}/connect/token`, clientId: 'client', clientSecret: SECRET, username: 'u', password: PASSWORD,
    })
    const before = process.memoryUsage().rss
    const err = (await source().catch((e: unknown) => e)) as TenNPayError
    expect(process.memoryUsage().rss - before).toBeLessThan(100 * 1024 * 1024)
    expect(err).toBeInstanceOf(TenNPayError)
    expect(err).toMatchObject({ kind: 'bad-response', httpStatus: 200 })
    expect(err.message).toContain('65536')
    await server.waitSocketsClosed(1, 1000)
  })

  describe('backoff after a failure', () => {
    function failing(answer: () => Response, extra: Partial<PasswordGrantOptions> = {}) {
      let t = 1_000_000
      const fetch = vi.fn(async () => answer())
      const source = createPasswordGrantTokenSource({
        tokenUrl: 'https://auth.example/connect/token', clientId: 'client', clientSecret: SECRET, username: 'u', password: PASSWORD,
        fetch: fetch as unknown as typeof globalThis.fetch, now: () => t, ...extra,
      })
      return { source, fetch, advance: (ms: number) => (t += ms), now: () => t }
    }
    const unavailable = () => new Response('down', { status: 503 })

    it('20 flows polling every 100 ms for 3 s against a 503 send at most 15 token requests', async () => {
      const { source, fetch, advance } = failing(unavailable)
      const errors: unknown[] = []
      for (let tick = 0; tick <= 30; tick++) {
        const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => source({ forceRefresh: i % 3 === 0 })))
        for (const r of results) if (r.status === 'rejected') errors.push(r.reason)
        advance(100)
      }
      expect(errors).toHaveLength(31 * 20)
      expect(errors.every((e) => e instanceof TenNPayError && e.kind === 'transient' && e.httpStatus === 503)).toBe(true)
      expect(fetch.mock.calls.length).toBeGreaterThanOrEqual(2)
      expect(fetch.mock.calls.length).toBeLessThanOrEqual(15)
    })

    it('doubles from about 500 ms, rejects at once while backing off, and one success resets it', async () => {
      let answer = unavailable
      const { source, fetch, advance, now } = failing(() => answer())
      const first = (await source().catch((e: unknown) => e)) as TenNPayError
      expect(first).toMatchObject({ kind: 'transient', httpStatus: 503 })
      expect(fetch).toHaveBeenCalledTimes(1)
      // ±20 % around 500 ms: blocked before 400 ms, free after 600 ms.
      advance(399)
      const blocked = (await source({ forceRefresh: true }).catch((e: unknown) => e)) as TenNPayError
      expect(blocked).toBeInstanceOf(TenNPayError)
      expect(blocked).toMatchObject({ kind: 'transient', httpStatus: 503, retryable: true })
      expect(blocked.message).toMatch(/backing off until/)
      expect(blocked.retryAfterMs).toBeGreaterThan(0)
      expect(blocked.retryAfterMs).toBeLessThanOrEqual(201)
      expect(fetch).toHaveBeenCalledTimes(1)
      advance(202)
      await source().catch(() => {})
      expect(fetch).toHaveBeenCalledTimes(2)
      // The second failure: 1000 ms ± 20 %.
      advance(799)
      await source().catch(() => {})
      expect(fetch).toHaveBeenCalledTimes(2)
      advance(402)
      await source().catch(() => {})
      expect(fetch).toHaveBeenCalledTimes(3)
      // The third: 2000 ms ± 20 %; then success resets the count.
      advance(2401)
      answer = () => new Response(JSON.stringify({ access_token: 'tok-ok' }), { status: 200 })
      expect(await source()).toBe('tok-ok')
      expect(fetch).toHaveBeenCalledTimes(4)
      answer = unavailable
      await source({ forceRefresh: true }).catch(() => {})
      expect(fetch).toHaveBeenCalledTimes(5)
      advance(601) // back to ~500 ms after the reset
      await source().catch(() => {})
      expect(fetch).toHaveBeenCalledTimes(6)
      expect(now()).toBeGreaterThan(0)
    })

    it('grows to about 30 s and no further', async () => {
      const { source, fetch, advance } = failing(unavailable)
      for (let i = 0; i < 12; i++) {
        await source().catch(() => {})
        advance(36_001)
      }
      expect(fetch).toHaveBeenCalledTimes(12)
      await source().catch(() => {})
      advance(23_999) // 30 s − 20 %: still blocked
      await source().catch(() => {})
      expect(fetch).toHaveBeenCalledTimes(13)
      advance(6_002) // past 30 s: free again
      await source().catch(() => {})
      expect(fetch).toHaveBeenCalledTimes(14)
    })

    it('honours Retry-After from a 429 or 503 as a lower bound', async () => {
      for (const status of [429, 503]) {
        const { source, fetch, advance } = failing(() => new Response('', { status, headers: { 'retry-after': '20' } }))
        const err = (await source().catch((e: unknown) => e)) as TenNPayError
        expect(err).toMatchObject({ kind: 'transient', httpStatus: status, retryAfterMs: 20_000 })
        advance(19_999)
        const blocked = (await source().catch((e: unknown) => e)) as TenNPayError
        expect(blocked.message).toMatch(/backing off/)
        expect(fetch).toHaveBeenCalledTimes(1)
        advance(2)
        await source().catch(() => {})
        expect(fetch).toHaveBeenCalledTimes(2)
      }
    })

    it('backs off after bad credentials too, with the same error kind', async () => {
      const { source, fetch } = failing(() => new Response(JSON.stringify({ error: 'invalid_grant' }), { status: 400 }))
      const first = (await source().catch((e: unknown) => e)) as TenNPayError
      const again = (await source().catch((e: unknown) => e)) as TenNPayError
      expect(first).toMatchObject({ kind: 'unauthorized', httpStatus: 400, retryable: false })
      expect(again).toMatchObject({ kind: 'unauthorized', httpStatus: 400, retryable: false })
      expect(again.message).toContain('invalid_grant')
      expect(fetch).toHaveBeenCalledTimes(1)
    })
  })
})
