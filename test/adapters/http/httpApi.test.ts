import { describe, expect, it, vi } from 'vitest'
import { createHttpApi } from '../../../src/adapters/http/httpApi.js'
import { parseRetryAfter, TenNPayError } from '../../../src/adapters/http/errors.js'

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
})
