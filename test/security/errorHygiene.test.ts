/**
 * Error hygiene: every kind of error the provider client and the password-grant token source can
 * throw, produced against a provider that echoes the bearer token, the password and the client
 * secret in its bodies (and the Location of a redirect), is scanned for those secrets in every
 * form a host could print or store it: `util.inspect` with hidden fields, `JSON.stringify`,
 * `String`, the stack, and the cause. The cause is a plain `{ name, message, code }`, never a
 * `Request`, `Headers`, `Response`, options object or a ky error.
 */
import { inspect } from 'node:util'
import type { AddressInfo } from 'node:net'
import { createServer } from 'node:http'
import { HTTPError, TimeoutError } from 'ky'
import { afterEach, describe, expect, it } from 'vitest'
import { createHttpApi, type HttpApiOptions } from '../../src/adapters/http/httpApi.js'
import { TenNPayError } from '../../src/adapters/http/errors.js'
import { createPasswordGrantTokenSource, type PasswordGrantOptions } from '../../src/adapters/node/tokenSource.js'
import type { ErrorKind, IdentificationApi } from '../../src/machine/types.js'
import { CALLS, closeAll, deferred, invoke, manualClock, rejection, startLoopback } from '../adapters/http/loopback.js'

const TOKEN = 'tok-HYGIENE-3f9a.b_c-Z0'
const TOKEN2 = 'tok-HYGIENE-refreshed-77'
const PASSWORD = 'pw-HYGIENE-x7!Q'
const SECRET = 'cs-HYGIENE-q2w9'
const SECRETS = [TOKEN, TOKEN2, PASSWORD, SECRET]

/** What a careless gateway echoes back: the headers, the token, the form that was sent. */
const echoText = (token: string) =>
  `Authorization: Bearer ${token}\n{"access_token":"${token}","refresh_token":"${token}"}\npassword=${PASSWORD}&client_secret=${SECRET}\npassword: ${PASSWORD}\n`
const echoProblem = (token: string) =>
  JSON.stringify({
    title: `Bearer ${token} refused`,
    detail: `authorization: Bearer ${token}; password=${PASSWORD}; client_secret=${SECRET}; "access_token":"${token}"`,
    access_token: token,
    password: PASSWORD,
    client_secret: SECRET,
  })
const ECHOES = [echoText, echoProblem]

afterEach(closeAll)

function scan(err: unknown): void {
  expect(err).toBeInstanceOf(TenNPayError)
  const e = err as TenNPayError
  const views = [
    inspect(e, { depth: Infinity, showHidden: true }),
    JSON.stringify(e),
    String(e),
    String(e.stack),
    e.message,
    inspect(e.cause, { depth: Infinity, showHidden: true }),
    JSON.stringify(e.cause) ?? '',
  ]
  for (const view of views) for (const s of SECRETS) expect(view, `${e.kind}: ${e.message}`).not.toContain(s)
  if (e.cause !== undefined) {
    expect(Object.getPrototypeOf(e.cause)).toBe(Object.prototype)
    expect(Object.keys(e.cause as object).every((k) => k === 'name' || k === 'message' || k === 'code')).toBe(true)
    for (const v of Object.values(e.cause as object)) expect(typeof v).toBe('string')
  }
}

/** The bearer token the request carried (the refreshed one on the retry after a 401). */
const bearerOf = (input: RequestInfo | URL, init?: RequestInit) =>
  (new Request(input, init).headers.get('authorization') ?? '').replace(/^Bearer /, '')

function client(fetchFn: typeof fetch, extra: Partial<HttpApiOptions> = {}): IdentificationApi {
  return createHttpApi({
    baseUrl: 'https://api.example',
    getAccessToken: ({ forceRefresh }) => (forceRefresh ? TOKEN2 : TOKEN),
    fetch: fetchFn,
    ...extra,
  })
}

/** A fake transport that answers `respond(token)` for every request. */
const answering = (respond: (token: string) => Response): typeof fetch =>
  (async (input: RequestInfo | URL, init?: RequestInit) => respond(bearerOf(input, init))) as typeof fetch

/** A socket error as undici reports it, plus what a wrapper might hang on it. */
function socketError(input: RequestInfo | URL, init: RequestInit | undefined, code: string): Error {
  const request = new Request(input, init)
  return Object.assign(new TypeError('fetch failed', { cause: Object.assign(new Error(`read ${code} Bearer ${bearerOf(input, init)}`), { code }) }), {
    request,
    headers: request.headers,
    options: init,
    response: new Response(echoText(TOKEN)),
  })
}

describe('error hygiene: the provider client', () => {
  it.each(CALLS)('%s: every error kind, with a provider that echoes the secrets', async (call) => {
    const kinds = new Set<ErrorKind>()
    const check = async (api: IdentificationApi, kind: ErrorKind, extra: object = {}) => {
      const err = await rejection(invoke(api, call))
      expect(err).toMatchObject({ kind, ...extra })
      scan(err)
      kinds.add(err.kind)
      return err
    }
    for (const echo of ECHOES) {
      const body = (status: number, headers: Record<string, string> = {}) => answering((t) => new Response(echo(t), { status, headers }))
      // unauthorized: a 401 again after the forced refresh.
      await check(client(body(401)), 'unauthorized', { httpStatus: 401 })
      // rejected: 400, 404.
      await check(client(body(400)), 'rejected', { httpStatus: 400 })
      await check(client(body(404)), 'rejected', { httpStatus: 404 })
      // transient: 429 and 5xx with Retry-After.
      await check(client(body(429, { 'retry-after': '5' })), 'transient', { httpStatus: 429, retryAfterMs: 5000 })
      await check(client(body(503, { 'retry-after': '2' })), 'transient', { httpStatus: 503, retryAfterMs: 2000 })
      // bad-response: not JSON, the wrong shape, a redirect, too large.
      await check(client(answering((t) => new Response(`<html>${echo(t)}</html>`, { status: 200 }))), 'bad-response', { httpStatus: 200 })
      await check(
        client(answering((t) => new Response(JSON.stringify({ videoIdentificationStatus: 5, correlationId: 5, access_token: t, password: PASSWORD }), { status: 200 }))),
        'bad-response',
      )
      await check(
        client(answering((t) => new Response(echo(t), { status: 307, headers: { location: `https://evil.example/x?access_token=${t}&password=${PASSWORD}` } }))),
        'bad-response',
        { httpStatus: 307 },
      )
      await check(client(body(200), { maxResponseBytes: 64 }), 'bad-response')
      await check(client(body(500), { maxResponseBytes: 64 }), 'bad-response')
      // network: a reset and a refused connection, with the request, headers and options hung on the error.
      await check(client(async (input, init) => Promise.reject(socketError(input, init, 'ECONNRESET'))), 'network')
      await check(client(async (input, init) => Promise.reject(socketError(input, init, 'ECONNREFUSED'))), 'network')
      // timeout: before the headers, and while the (echoing) body trickles in.
      for (const during of ['headers', 'body'] as const) {
        const clock = manualClock()
        const arrived = deferred()
        const api = client(
          answering((t) => {
            arrived.resolve()
            if (during === 'headers') return new Promise<Response>(() => {}) as never
            return new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode(echo(t))) }), { status: 200 })
          }) as typeof fetch,
          { clock },
        )
        const p = invoke(api, call)
        await arrived.promise
        await new Promise((r) => setImmediate(r))
        clock.fire()
        const err = await rejection(p)
        expect(err.kind).toBe('timeout')
        scan(err)
        kinds.add(err.kind)
      }
    }
    // A getAccessToken that fails with a secret in its message.
    const broken = createHttpApi({
      baseUrl: 'https://api.example',
      fetch: answering(() => new Response('{}')),
      getAccessToken: () => {
        throw Object.assign(new Error(`vault: password=${PASSWORD} client_secret: ${SECRET} Bearer ${TOKEN}`), { request: new Request('https://vault.example', { headers: { authorization: `Bearer ${TOKEN}` } }) })
      },
    })
    scan(await rejection(invoke(broken, call)))
    expect([...kinds].sort()).toEqual(['bad-response', 'network', 'rejected', 'timeout', 'transient', 'unauthorized'])
  })

  it.each(CALLS)('%s: real sockets: reset, refused, redirect with the token in the Location', async (call) => {
    const reset = await startLoopback((req) => req.socket.destroy())
    const refusedServer = createServer()
    await new Promise<void>((r) => refusedServer.listen(0, '127.0.0.1', r))
    const refusedPort = (refusedServer.address() as AddressInfo).port
    await new Promise<void>((r) => refusedServer.close(() => r()))
    const redirect = await startLoopback((_req, res) => {
      res.writeHead(308, { location: `http://127.0.0.1:${refusedPort}/x?access_token=${TOKEN}` })
      res.end(echoText(TOKEN))
    })
    for (const [baseUrl, kind] of [
      [reset.url, 'network'],
      [`http://127.0.0.1:${refusedPort}`, 'network'],
      [redirect.url, 'bad-response'],
    ] as const) {
      const err = await rejection(invoke(createHttpApi({ baseUrl, getAccessToken: () => TOKEN }), call))
      expect(err.kind).toBe(kind)
      scan(err)
      if (kind === 'network') expect((err.cause as { code?: string } | undefined)?.code).toMatch(/^(E[A-Z]+|UND_ERR_[A-Z_]+)$/)
    }
  })
})

describe('error hygiene: the password-grant token source', () => {
  const base = (fetchFn: typeof fetch, extra: Partial<PasswordGrantOptions> = {}) =>
    createPasswordGrantTokenSource({
      tokenUrl: 'https://auth.example/connect/token',
      clientId: 'client',
      clientSecret: SECRET,
      username: 'merchant',
      password: PASSWORD,
      fetch: fetchFn,
      ...extra,
    })
  const answer = (body: string, status: number, headers: Record<string, string> = {}) =>
    (async () => new Response(body, { status, headers })) as typeof fetch

  it('every error, with an endpoint that echoes the secrets', async () => {
    const cases: [string, typeof fetch, ErrorKind, Partial<PasswordGrantOptions>?][] = []
    for (const echo of ECHOES) {
      cases.push(
        ['400 bad credentials', answer(echo(TOKEN), 400), 'unauthorized'],
        ['401 bad client', answer(echo(TOKEN), 401), 'unauthorized'],
        ['400 with an OAuth error', answer(JSON.stringify({ error: 'invalid_grant', error_description: `password=${PASSWORD}` }), 400), 'unauthorized'],
        ['503', answer(echo(TOKEN), 503, { 'retry-after': '3' }), 'transient'],
        ['redirect', answer(echo(TOKEN), 307, { location: `https://evil.example/t?password=${PASSWORD}&client_secret=${SECRET}` }), 'rejected'],
        ['non-JSON', answer(`<html>${echo(TOKEN)}</html>`, 200), 'bad-response'],
        ['no access_token', answer(JSON.stringify({ refresh_token: TOKEN, password: PASSWORD }), 200), 'bad-response'],
        ['too large', answer(echo(TOKEN).repeat(5000), 200), 'bad-response'],
        ['network', (async (input: RequestInfo | URL, init?: RequestInit) => Promise.reject(socketError(input, init, 'ECONNRESET'))) as typeof fetch, 'network'],
      )
    }
    for (const [name, fetchFn, kind] of cases) {
      const err = (await base(fetchFn)().catch((e: unknown) => e)) as TenNPayError
      expect(err, name).toBeInstanceOf(TenNPayError)
      expect(err.kind, name).toBe(kind)
      scan(err)
    }
    // timeout, before headers and during the body
    for (const during of ['headers', 'body'] as const) {
      const clock = manualClock()
      const arrived = deferred()
      const source = base(
        (async () => {
          arrived.resolve()
          if (during === 'headers') return new Promise<Response>(() => {})
          return new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode(echoText(TOKEN))) }), { status: 200 })
        }) as typeof fetch,
        { clock },
      )
      const p = source().catch((e: unknown) => e)
      await arrived.promise
      await new Promise((r) => setImmediate(r))
      clock.fire()
      const err = (await p) as TenNPayError
      expect(err.kind).toBe('timeout')
      scan(err)
    }
  })

  it('the backing-off error is as clean as the first, and passes through the client as it is', async () => {
    let t = 0
    const source = base(answer(echoText(TOKEN), 503), { now: () => t })
    scan(await source().catch((e: unknown) => e))
    t += 100
    const api = createHttpApi({ baseUrl: 'https://api.example', getAccessToken: source, fetch: answer('{}', 200) })
    const err = await rejection(api.getStatus({ userId: 1, userType: 0 }))
    expect(err.message).toMatch(/backing off/)
    scan(err)
  })

  it('real sockets: a redirect that would carry the password elsewhere', async () => {
    const target = await startLoopback((_req, res) => res.end('{}'))
    const auth = await startLoopback((_req, res) => {
      res.writeHead(307, { location: `${target.url}/t?password=${PASSWORD}` })
      res.end(echoText(TOKEN))
    })
    const err = (await base(globalThis.fetch, { tokenUrl: `${auth.url}/connect/token` })().catch((e: unknown) => e)) as TenNPayError
    expect(err.kind).toBe('rejected')
    scan(err)
    expect(target.requests).toHaveLength(0)
  })
})

describe('error hygiene: TenNPayError itself', () => {
  it('keeps a plain cause even when handed a ky HTTPError / TimeoutError, a Request or a Response', () => {
    const request = new Request('https://api.example/x', { headers: { authorization: `Bearer ${TOKEN}` } })
    const response = new Response(echoText(TOKEN), { status: 500 })
    const causes: unknown[] = [
      new HTTPError(response, request, { headers: { authorization: `Bearer ${TOKEN}` } } as never),
      new TimeoutError(request),
      request,
      response,
      request.headers,
      { method: 'GET', headers: { authorization: `Bearer ${TOKEN}` }, body: `password=${PASSWORD}&client_secret=${SECRET}` },
      Object.assign(new Error(`boom Bearer ${TOKEN}`), { request, response, options: { password: PASSWORD }, code: 'ECONNRESET' }),
    ]
    for (const cause of causes) {
      const err = new TenNPayError('transient', `provider said: Authorization: Bearer ${TOKEN}`, { cause })
      scan(err)
      expect(err.cause).not.toBe(cause)
    }
  })
})
