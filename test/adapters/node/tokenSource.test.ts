import { describe, expect, it, vi } from 'vitest'
import { createPasswordGrantTokenSource } from '../../../src/adapters/node/tokenSource.js'
import { createSimulator } from '../../../src/simulator/simulator.js'

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
})
