import { describe, expect, it, vi } from 'vitest'
import { createHttpApi } from '../../../src/adapters/http/httpApi.js'
import { parseRetryAfter, TenNPayError } from '../../../src/adapters/http/errors.js'
import type { IdentificationApi, InitiateRequest } from '../../../src/machine/types.js'
import { manualClock } from './loopback.js'

const TOKEN = 'tok-SECRET-0123456789'
const ok = { videoIdentificationUrl: 'https://x.example/1', videoIdentificationStatus: 'PROCESSING', message: null }

function fakeFetch(handler: (req: Request, n: number) => Response | Promise<Response>) {
  const calls: Request[] = []
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init)
    calls.push(req)
    return handler(req, calls.length)
  })
  return { fetch: fn as unknown as typeof fetch, calls }
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })

function api(handler: Parameters<typeof fakeFetch>[0], extra: { requestTimeoutMs?: number } = {}) {
  const f = fakeFetch(handler)
  const getAccessToken = vi.fn(({ forceRefresh }: { forceRefresh: boolean }) => (forceRefresh ? `${TOKEN}-2` : TOKEN))
  return { api: createHttpApi({ baseUrl: 'https://api.example/', getAccessToken, fetch: f.fetch, ...extra }), ...f, getAccessToken }
}

async function failure(p: Promise<unknown>): Promise<TenNPayError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(TenNPayError)
  expect(String((err as Error).message)).not.toContain(TOKEN)
  expect(String((err as Error).stack)).not.toContain(TOKEN)
  return err as TenNPayError
}

describe('createHttpApi', () => {
  it('calls the documented paths with the bearer token and complete bodies', async () => {
    const { api: a, calls } = api((req) =>
      req.url.endsWith('finalize-external-identification') ? json({ correlationId: 'c-1', individualId: 5 }) : json(ok),
    )
    await a.getStatus({ userId: 42, userType: 1 })
    await a.initiate({ userId: 42, isRestartIdentification: false, correlationType: 0, userLanguage: 'bg' })
    expect(await a.finalize({ userId: 42, bTrustAppCallBackId: null, correlationType: 0 })).toEqual({ correlationId: 'c-1', individualId: 5 })
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      'GET https://api.example/Enrollment/42/1/true/get-identification-process-status',
      'POST https://api.example/Enrollment/initiate-external-identification',
      'POST https://api.example/Enrollment/finalize-external-identification',
    ])
    expect(calls[0]!.headers.get('authorization')).toBe(`Bearer ${TOKEN}`)
    expect(await calls[1]!.json()).toEqual({ userId: 42, isRestartIdentification: false, correlationType: 0, userLanguage: 'bg' })
    expect(await calls[2]!.json()).toEqual({ userId: 42, bTrustAppCallBackId: null, correlationType: 0 })
  })

  it('reads missing status fields as null', async () => {
    const { api: a } = api(() => json({ videoIdentificationStatus: 'PROCESSING' }))
    expect(await a.getStatus({ userId: 1, userType: 0 })).toEqual({
      videoIdentificationUrl: null,
      videoIdentificationStatus: 'PROCESSING',
      message: null,
    })
  })

  it.each([
    [400, 'rejected', false],
    [404, 'rejected', false],
    [409, 'rejected', false],
    [408, 'transient', true],
    [429, 'transient', true],
    [500, 'transient', true],
    [502, 'transient', true],
    [503, 'transient', true],
  ] as const)('maps HTTP %i to %s (retryable %s)', async (status, kind, retryable) => {
    const { api: a } = api(() => json({ title: 'Problem', detail: `status ${status}` }, status))
    const err = await failure(a.getStatus({ userId: 7, userType: 0 }))
    expect(err).toMatchObject({ kind, retryable, httpStatus: status })
    expect(err.message).toContain('GET https://api.example/Enrollment/7/0/true/get-identification-process-status')
    expect(err.message).toContain(`answered ${status}`)
    expect(err.message).toContain(`status ${status}`)
  })

  it('refreshes the token once on 401 and repeats the request', async () => {
    const { api: a, calls, getAccessToken } = api((req) => (req.headers.get('authorization') === `Bearer ${TOKEN}` ? json({}, 401) : json(ok)))
    expect(await a.getStatus({ userId: 1, userType: 0 })).toEqual(ok)
    expect(calls).toHaveLength(2)
    expect(getAccessToken.mock.calls.map((c) => c[0])).toEqual([{ forceRefresh: false }, { forceRefresh: true }])
  })

  it('throws unauthorized on a second 401 for the same request', async () => {
    const { api: a, calls } = api(() => json({ title: 'Unauthorized' }, 401))
    const err = await failure(a.getStatus({ userId: 1, userType: 0 }))
    expect(err).toMatchObject({ kind: 'unauthorized', retryable: false, httpStatus: 401 })
    expect(calls).toHaveLength(2)
  })

  it('reads Retry-After', async () => {
    const { api: a } = api(() => json({}, 429, { 'retry-after': '3' }))
    expect(await failure(a.getStatus({ userId: 1, userType: 0 }))).toMatchObject({ kind: 'transient', retryAfterMs: 3000 })
    expect(parseRetryAfter('1.5')).toBe(1500)
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000)
    expect(parseRetryAfter('soon')).toBeUndefined()
    expect(parseRetryAfter('999999')).toBe(3600_000)
  })

  it('maps an HTML body to bad-response (retryable)', async () => {
    const { api: a } = api(() => new Response('<html><body>502 Bad Gateway</body></html>', { status: 200, headers: { 'content-type': 'text/html' } }))
    const err = await failure(a.getStatus({ userId: 1, userType: 0 }))
    expect(err).toMatchObject({ kind: 'bad-response', retryable: true, httpStatus: 200 })
    expect(err.message).toContain('not JSON')
  })

  it.each([
    ['an array', []],
    ['a number', 5],
    ['a wrong field type', { videoIdentificationStatus: 7 }],
    ['null', null],
  ])('maps %s to bad-response naming the problem', async (_, body) => {
    const { api: a } = api(() => json(body))
    const err = await failure(a.getStatus({ userId: 1, userType: 0 }))
    expect(err.kind).toBe('bad-response')
    expect(err.message).toContain('unexpected body')
  })

  it('rejects a finalize answer without ids', async () => {
    const { api: a } = api(() => json({ correlationId: '' }))
    expect((await failure(a.finalize({ userId: 1, bTrustAppCallBackId: null, correlationType: 0 }))).kind).toBe('bad-response')
  })

  it('maps a socket reset to network', async () => {
    const { api: a } = api(() => {
      throw new TypeError('fetch failed', { cause: new Error('read ECONNRESET') })
    })
    const err = await failure(a.getStatus({ userId: 1, userType: 0 }))
    expect(err).toMatchObject({ kind: 'network', retryable: true })
    expect(err.message).toContain('ECONNRESET')
  })

  it('maps the per-request timeout to timeout', async () => {
    const { api: a } = api(
      (req) =>
        new Promise<Response>((_, reject) => {
          req.signal.addEventListener('abort', () => reject(req.signal.reason))
        }),
      { requestTimeoutMs: 30 },
    )
    const err = await failure(a.getStatus({ userId: 1, userType: 0 }))
    expect(err).toMatchObject({ kind: 'timeout', retryable: true })
    expect(err.message).toContain('30 ms')
  })

  it('honours an AbortSignal: rejects with its reason, sends nothing once aborted', async () => {
    const { api: a, calls } = api(
      (req) =>
        new Promise<Response>((_, reject) => {
          req.signal.addEventListener('abort', () => reject(req.signal.reason))
        }),
    )
    const ac = new AbortController()
    const p = a.getStatus({ userId: 1, userType: 0 }, { signal: ac.signal })
    await new Promise((r) => setTimeout(r, 5))
    ac.abort()
    await expect(p).rejects.toMatchObject({ name: 'AbortError' })
    await expect(a.getStatus({ userId: 1, userType: 0 }, { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' })
    expect(calls).toHaveLength(1)
  })

  it('validates its options and requests, naming the field', () => {
    const getAccessToken = () => 't'
    expect(() => createHttpApi({ baseUrl: 'not a url', getAccessToken })).toThrow(/baseUrl/)
    expect(() => createHttpApi({ baseUrl: 'ftp://x', getAccessToken })).toThrow(/baseUrl/)
    expect(() => createHttpApi({ baseUrl: 'https://x', getAccessToken: 'no' as never })).toThrow(/getAccessToken/)
    expect(() => createHttpApi({ baseUrl: 'https://x', getAccessToken, requestTimeoutMs: 0 })).toThrow(/requestTimeoutMs/)
    const a = createHttpApi({ baseUrl: 'https://x', getAccessToken })
    return expect(a.getStatus({ userId: 0, userType: 0 })).rejects.toThrow(/userId/)
  })

  it('keeps a base path', async () => {
    const f = fakeFetch(() => json(ok))
    const a = createHttpApi({ baseUrl: 'https://gw.example/10npay', getAccessToken: () => 't', fetch: f.fetch })
    await a.getStatus({ userId: 3, userType: 0 })
    expect(f.calls[0]!.url).toBe('https://gw.example/10npay/Enrollment/3/0/true/get-identification-process-status')
  })

  it('wraps a throwing getAccessToken without leaking what it was given', async () => {
    const f = fakeFetch(() => json(ok))
    const a = createHttpApi({
      baseUrl: 'https://x',
      fetch: f.fetch,
      getAccessToken: () => {
        throw new Error('vault unreachable')
      },
    })
    const err = await failure(a.getStatus({ userId: 1, userType: 0 }))
    expect(err.message).toContain('getAccessToken failed: vault unreachable')
    expect(f.calls).toHaveLength(0)
  })

  describe('baseUrl must be https: (http: only on loopback or with allowInsecureHttp)', () => {
    const getAccessToken = () => 't'
    it.each([
      ['https://api.example.com', undefined, true],
      ['https://api.example.com', true, true],
      ['http://localhost:8080', undefined, true],
      ['http://127.0.0.1', undefined, true],
      ['http://127.10.20.30:9', undefined, true],
      ['http://[::1]:3000/base', undefined, true],
      ['http://api.example.com', undefined, false],
      ['http://api.example.com', false, false],
      ['http://api.example.com', true, true],
      ['http://10.0.0.1', undefined, false],
      ['http://128.0.0.1', undefined, false],
      ['http://localhost.example.com', undefined, false],
      ['http://[::2]', undefined, false],
      ['ftp://127.0.0.1', undefined, false],
      ['ftp://api.example.com', true, false],
      ['file:///etc/passwd', true, false],
      ['ws://localhost', true, false],
    ] as const)('%s (allowInsecureHttp %s) → accepted %s', (baseUrl, allowInsecureHttp, accepted) => {
      const make = () => createHttpApi({ baseUrl, getAccessToken, ...(allowInsecureHttp !== undefined && { allowInsecureHttp }) })
      if (accepted) expect(make).not.toThrow()
      else {
        expect(make).toThrow(TypeError)
        expect(make).toThrow(
          `createHttpApi: baseUrl must be https: (http: only for loopback hosts or with allowInsecureHttp: true); got ${baseUrl}`,
        )
      }
    })

    it('validates the new options', () => {
      expect(() => createHttpApi({ baseUrl: 'https://x', getAccessToken, allowInsecureHttp: 'yes' as never })).toThrow(/allowInsecureHttp/)
      expect(() => createHttpApi({ baseUrl: 'https://x', getAccessToken, maxResponseBytes: 0 })).toThrow(/maxResponseBytes/)
      expect(() => createHttpApi({ baseUrl: 'https://x', getAccessToken, maxResponseBytes: 1.5 })).toThrow(/maxResponseBytes/)
      expect(() => createHttpApi({ baseUrl: 'https://x', getAccessToken, clock: {} as never })).toThrow(/clock/)
      expect(() => createHttpApi({ baseUrl: 'https://user:pw@x', getAccessToken })).toThrow(/baseUrl/)
      expect(() => createHttpApi({ baseUrl: 'https://user:pw@x', getAccessToken })).not.toThrow(/pw/)
    })
  })

  it('sends every request with redirect: manual', async () => {
    const { api: a, calls } = api((req) =>
      req.url.endsWith('finalize-external-identification') ? json({ correlationId: 'c-1', individualId: 5 }) : json(ok),
    )
    await a.getStatus({ userId: 1, userType: 0 })
    await a.initiate({ userId: 1, isRestartIdentification: false, correlationType: 0 })
    await a.finalize({ userId: 1, bTrustAppCallBackId: null, correlationType: 0 })
    expect(calls.map((c) => c.redirect)).toEqual(['manual', 'manual', 'manual'])
  })

  it('a browser opaqueredirect answer (status 0) is a retryable bad-response', async () => {
    const opaque = { type: 'opaqueredirect', status: 0, ok: false, redirected: false, headers: new Headers(), body: null } as unknown as Response
    for (const call of ['getStatus', 'initiate', 'finalize'] as const) {
      const { api: a } = api(() => opaque)
      const err = await failure(callOf(a, call))
      expect(err).toMatchObject({ kind: 'bad-response', retryable: true })
      expect(err.message).toMatch(/redirect/)
      expect(err.httpStatus).toBeUndefined()
    }
  })

  describe('one request path for all three calls', () => {
    const CALLS = ['getStatus', 'initiate', 'finalize'] as const

    it.each(CALLS)('%s: the timeout runs on the injected clock, covers the body, and leaves no timer behind', async (call) => {
      const clock = manualClock()
      const f = fakeFetch(
        () =>
          new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('{')) }), {
            status: 200,
            headers: { 'content-type': 'application/json' },
          }),
      )
      const a = createHttpApi({ baseUrl: 'https://api.example', getAccessToken: () => TOKEN, fetch: f.fetch, clock, requestTimeoutMs: 1234 })
      const p = callOf(a, call)
      await new Promise((r) => setImmediate(r))
      expect(clock.scheduled).toEqual([1234])
      clock.fire()
      const err = await failure(p)
      expect(err).toMatchObject({ kind: 'timeout', retryable: true })
      expect(err.message).toContain('1234 ms')
      expect(clock.pending()).toBe(0)
    })

    it.each(CALLS)('%s: a transport that ignores the signal still ends at the timeout', async (call) => {
      const clock = manualClock()
      const a = createHttpApi({ baseUrl: 'https://api.example', getAccessToken: () => TOKEN, fetch: () => new Promise<Response>(() => {}), clock })
      const p = callOf(a, call)
      await new Promise((r) => setImmediate(r))
      expect(clock.scheduled).toEqual([10_000])
      clock.fire()
      expect(await failure(p)).toMatchObject({ kind: 'timeout', message: expect.stringContaining('no answer within 10000 ms') })
    })

    it.each(CALLS)('%s: a caller abort during the body rejects with the signal reason, not a TenNPayError', { timeout: 5000 }, async (call) => {
      const clock = manualClock()
      let cancelled = false
      const f = fakeFetch(
        () =>
          new Response(
            new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode('{')), cancel: () => void (cancelled = true) }),
            { status: 200 },
          ),
      )
      const a = createHttpApi({ baseUrl: 'https://api.example', getAccessToken: () => TOKEN, fetch: f.fetch, clock })
      const ac = new AbortController()
      const p = callOf(a, call, ac.signal)
      await new Promise((r) => setImmediate(r))
      const reason = new Error('flow stopped')
      ac.abort(reason)
      await expect(p).rejects.toBe(reason)
      expect(cancelled).toBe(true)
      expect(clock.pending()).toBe(0)
      expect(f.calls[0]!.signal.aborted).toBe(true)
    })

    it.each(CALLS)('%s: maps answers the same way (401 refresh, 4xx, 5xx + Retry-After, bad JSON, socket error)', async (call) => {
      const cases: [Response | Error, object][] = [
        [json({}, 404), { kind: 'rejected', httpStatus: 404, retryable: false }],
        [json({}, 422), { kind: 'rejected', httpStatus: 422 }],
        [json({}, 503, { 'retry-after': '7' }), { kind: 'transient', httpStatus: 503, retryAfterMs: 7000 }],
        [json({}, 408), { kind: 'transient', httpStatus: 408 }],
        [new Response('<html/>', { status: 200 }), { kind: 'bad-response', httpStatus: 200 }],
        [json({ correlationId: 5, videoIdentificationStatus: 5 }), { kind: 'bad-response', httpStatus: 200 }],
        [Object.assign(new TypeError('fetch failed', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) })), { kind: 'network', retryable: true }],
      ]
      for (const [answer, expected] of cases) {
        const { api: a } = api(() => {
          if (answer instanceof Error) throw answer
          return answer.clone()
        })
        expect(await failure(callOf(a, call))).toMatchObject(expected)
      }
      const { api: a, calls, getAccessToken } = api(() => json({}, 401))
      expect(await failure(callOf(a, call))).toMatchObject({ kind: 'unauthorized', httpStatus: 401 })
      expect(calls).toHaveLength(2)
      expect(getAccessToken.mock.calls.map((c) => c[0])).toEqual([{ forceRefresh: false }, { forceRefresh: true }])
    })

    it('a network error keeps a plain { name, message, code } cause, never the request', async () => {
      const { api: a } = api((req) => {
        throw Object.assign(new TypeError('fetch failed', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) }), {
          request: req,
          headers: req.headers,
        })
      })
      const err = await failure(a.getStatus({ userId: 1, userType: 0 }))
      expect(err.cause).toEqual({ name: 'TypeError', message: 'fetch failed', code: 'ECONNRESET' })
      expect(Object.getPrototypeOf(err.cause)).toBe(Object.prototype)
    })

    it('maxResponseBytes cuts an in-process body too', async () => {
      const body = JSON.stringify({ message: 'y'.repeat(500) })
      const f = fakeFetch(() => new Response(body, { status: 200 }))
      const a = createHttpApi({ baseUrl: 'https://api.example', getAccessToken: () => TOKEN, fetch: f.fetch, maxResponseBytes: 100 })
      const err = await failure(a.getStatus({ userId: 1, userType: 0 }))
      expect(err).toMatchObject({ kind: 'bad-response', retryable: true, httpStatus: 200 })
      expect(err.message).toContain('maxResponseBytes')
      expect(err.message).toContain('100')
    })
  })

  it('accepts null initiate metadata and leaves it out of the body', async () => {
    const { api: a, calls } = api(() => json(ok))
    const req = {
      userId: 9, isRestartIdentification: true, correlationType: 1,
      localTimezone: null, userAgent: null, browserLanguage: null, userLanguage: 'bg', deviceName: null,
    } as unknown as InitiateRequest
    await a.initiate(req)
    expect(await calls[0]!.json()).toEqual({ userId: 9, isRestartIdentification: true, correlationType: 1, userLanguage: 'bg' })
  })
})

function callOf(a: IdentificationApi, call: 'getStatus' | 'initiate' | 'finalize', signal?: AbortSignal): Promise<unknown> {
  const opts = signal ? { signal } : undefined
  if (call === 'getStatus') return a.getStatus({ userId: 7, userType: 0 }, opts)
  if (call === 'initiate') return a.initiate({ userId: 7, isRestartIdentification: false, correlationType: 0 }, opts)
  return a.finalize({ userId: 7, bTrustAppCallBackId: null, correlationType: 0 }, opts)
}
