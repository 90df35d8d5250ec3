/**
 * The hostile faults of the simulator's fault profile (issue 9, items 1, 4, 6 and 7): a refusal
 * with no I/O, a redirect to another origin, a body that trickles, a body that is huge; and the
 * token endpoint's faults. In process and over real HTTP on 127.0.0.1.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { TenNPayError } from '../../src/adapters/http/errors.js'
import { createPasswordGrantTokenSource } from '../../src/adapters/node/tokenSource.js'
import { drawFault, drawTokenFault, seededRandom, type FaultProfile } from '../../src/simulator/faults.js'
import { createSimulator } from '../../src/simulator/simulator.js'
import { startSimulator, type RunningSimulator } from '../../src/simulator/server.js'

const STATUS = '/Enrollment/5/0/true/get-identification-process-status'
const MiB = 1024 * 1024

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(cleanups.splice(0).map((c) => c()))
})

/** A loopback server that only counts what reaches it (the "other origin"). */
async function otherOrigin(): Promise<{ url: string; hits: () => number }> {
  let hits = 0
  const server: Server = createServer((_req, res) => {
    hits++
    res.end('{}')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  cleanups.push(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits }
}

async function running(faults: FaultProfile): Promise<RunningSimulator> {
  const sim = await startSimulator({ faults })
  cleanups.push(() => sim.close())
  return sim
}

/** A simulator whose user 5 has a session, with `faults` for user 5's requests from now on. */
async function inProcess(faults: FaultProfile) {
  const s = createSimulator()
  const token = s.issueToken()
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  await s.fetch('http://127.0.0.1/Enrollment/initiate-external-identification', { method: 'POST', headers, body: JSON.stringify({ userId: 5 }) })
  s.setFaults(5, faults)
  return { s, token, status: () => s.fetch(`http://127.0.0.1${STATUS}`, { headers }) }
}

/** Watches the timers of one delay (the trickle's) being set and cleared. */
function watchTimers(ms: number) {
  const realSet = globalThis.setTimeout
  const realClear = globalThis.clearTimeout
  const live = new Set<unknown>()
  let started = 0
  const set = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, delay?: number) => {
    const h: ReturnType<typeof setTimeout> = realSet(() => {
      live.delete(h)
      fn()
    }, delay)
    if (delay === ms) {
      started++
      live.add(h)
    }
    return h
  }) as typeof setTimeout)
  const clear = vi.spyOn(globalThis, 'clearTimeout').mockImplementation((h) => {
    live.delete(h)
    realClear(h)
  })
  return { pending: () => live.size, started: () => started, restore: () => (set.mockRestore(), clear.mockRestore()) }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => e,
  )
}

describe('drawing the new faults', () => {
  it('each new kind is drawn with its parameters; a profile without them never draws them', () => {
    const r = seededRandom(1)
    expect(drawFault({ refused: 1 }, r)).toEqual({ kind: 'refused' })
    expect(drawFault({ crossOriginRedirect: 1, redirectTo: 'http://127.0.0.2:1' }, r)).toMatchObject({ kind: 'redirect', status: expect.toBeOneOf([307, 308]), to: 'http://127.0.0.2:1' })
    expect(drawFault({ crossOriginRedirect: 1 }, r)).toMatchObject({ to: 'https://elsewhere.invalid' })
    expect(drawFault({ slowBody: 1 }, r)).toEqual({ kind: 'slow-body', byteMs: 1000 })
    expect(drawFault({ hugeBody: 1 }, r)).toEqual({ kind: 'huge-body', bytes: 16 * MiB })
    expect(drawTokenFault({ tokenServerError: 1 }, r)).toEqual({ kind: 'server-error', status: 503 })
    expect(drawTokenFault({ serverError: 1 }, r)).toEqual({ kind: 'none' })
    const old: FaultProfile = { serverError: 0.2, reset: 0.2, latency: 0.2 }
    const kinds = new Set(Array.from({ length: 2000 }, () => drawFault(old, r).kind))
    expect([...kinds].sort()).toEqual(['latency', 'none', 'reset', 'server-error'])
  })

  it('both redirect statuses come up', () => {
    const r = seededRandom(7)
    const statuses = new Set(Array.from({ length: 200 }, () => (drawFault({ crossOriginRedirect: 1 }, r) as { status: number }).status))
    expect([...statuses].sort()).toEqual([307, 308])
  })
})

describe('refused (item 1)', () => {
  it('in process: rejects like a refused port, before any I/O callback could run', async () => {
    const { s, status } = await inProcess({ refused: 1 })
    let ioRan = false
    setImmediate(() => (ioRan = true))
    const err = (await rejection(status())) as TypeError & { cause: { code: string } }
    expect(ioRan).toBe(false)
    expect(err).toBeInstanceOf(TypeError)
    expect(err.message).toBe('fetch failed')
    expect(err.cause.code).toBe('ECONNREFUSED')
    expect(s.requests.at(-1)).toMatchObject({ endpoint: 'status', userId: 5, fault: 'refused' })
  })

  it('through the client it is a retryable network error', async () => {
    const { s } = await inProcess({ refused: 1 })
    const api = createHttpApi({ baseUrl: 'http://127.0.0.1', fetch: s.fetch, getAccessToken: () => s.issueToken() })
    const err = await rejection(api.getStatus({ userId: 5, userType: 0 }))
    expect(err).toMatchObject({ kind: 'network', retryable: true })
    expect((err as Error).message).toContain('ECONNREFUSED')
  })

  it('over HTTP the socket is dropped without an answer', async () => {
    const sim = await running({ refused: 1 })
    const api = createHttpApi({ baseUrl: sim.url, getAccessToken: () => sim.simulator.issueToken() })
    const err = await rejection(api.initiate({ userId: 5, isRestartIdentification: false, correlationType: 0 }))
    expect(err).toMatchObject({ kind: 'network', retryable: true })
    expect(sim.requests.at(-1)).toMatchObject({ endpoint: 'initiate', fault: 'refused' })
  })
})

describe('cross-origin redirect (item 4)', () => {
  it('in process: a 307/308 to the same path on the other origin, the session untouched', async () => {
    const { s, status } = await inProcess({ crossOriginRedirect: 1, redirectTo: 'https://evil.example/' })
    const res = await status()
    expect([307, 308]).toContain(res.status)
    expect(res.headers.get('location')).toBe(`https://evil.example${STATUS}`)
    expect(s.requests.at(-1)).toMatchObject({ fault: 'redirect', status: res.status })
  })

  it('over HTTP, for all three calls: a retryable bad-response, and the other origin receives nothing', async () => {
    const other = await otherOrigin()
    const sim = await running({ crossOriginRedirect: 1, redirectTo: other.url })
    const api = createHttpApi({ baseUrl: sim.url, getAccessToken: () => sim.simulator.issueToken() })
    const calls = [
      () => api.initiate({ userId: 5, isRestartIdentification: false, correlationType: 0 }),
      () => api.getStatus({ userId: 5, userType: 0 }),
      () => api.finalize({ userId: 5, bTrustAppCallBackId: null, correlationType: 0 }),
    ]
    for (const call of calls) {
      const err = await rejection(call())
      expect(err).toMatchObject({ kind: 'bad-response', retryable: true, httpStatus: expect.toBeOneOf([307, 308]) })
    }
    expect(sim.requests.filter((r) => r.fault === 'redirect')).toHaveLength(3)
    expect(other.hits()).toBe(0)
  })

  it('the token endpoint: a non-retryable error, and the password never reaches the other origin', async () => {
    const other = await otherOrigin()
    const sim = await running({ tokenRedirect: 1, redirectTo: other.url })
    const tokens = createPasswordGrantTokenSource({ tokenUrl: `${sim.url}/connect/token`, ...sim.simulator.credentials })
    const err = await rejection(tokens())
    expect(err).toBeInstanceOf(TenNPayError)
    expect(err).toMatchObject({ retryable: false, httpStatus: expect.toBeOneOf([307, 308]) })
    expect(sim.requests).toEqual([expect.objectContaining({ endpoint: 'token', fault: 'redirect' })])
    expect(other.hits()).toBe(0)
  })
})

describe('slow body (item 6)', () => {
  it('in process: headers and the first byte at once, the rest one byte per slowBodyByteMs; a cancel clears the timer', async () => {
    const { status } = await inProcess({ slowBody: 1, slowBodyByteMs: 60_000 })
    const trickle = watchTimers(60_000)
    const res = await status()
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    const first = await reader.read()
    expect(new TextDecoder().decode(first.value)).toBe('{')
    let second = false
    void reader.read().then(() => (second = true), () => (second = true))
    await new Promise((r) => setImmediate(r))
    expect(second).toBe(false)
    expect(trickle.pending()).toBe(1)
    await reader.cancel()
    expect(trickle.pending()).toBe(0)
    trickle.restore()
  })

  it('the body is the real answer, sent whole when the client waits for it', async () => {
    const { status } = await inProcess({ slowBody: 1, slowBodyByteMs: 0 })
    expect(await (await status()).json()).toMatchObject({ videoIdentificationStatus: 'STARTED' })
  })

  it('over HTTP: the client times out at requestTimeoutMs, and the stream stops', async () => {
    const sim = await running({ slowBody: 1, slowBodyByteMs: 60_000 })
    const api = createHttpApi({ baseUrl: sim.url, getAccessToken: () => sim.simulator.issueToken(), requestTimeoutMs: 300 })
    const trickle = watchTimers(60_000)
    const err = await rejection(api.initiate({ userId: 5, isRestartIdentification: false, correlationType: 0 }))
    expect(err).toMatchObject({ kind: 'timeout', retryable: true })
    expect((err as Error).message).toMatch(/body/)
    expect(sim.requests.at(-1)).toMatchObject({ endpoint: 'initiate', fault: 'slow-body', status: 200 })
    // The server sees the socket close and cancels the stream: the pending 60 s timer is cleared.
    for (let i = 0; i < 200 && trickle.pending() > 0; i++) await new Promise((r) => setImmediate(r))
    expect(trickle.started()).toBeGreaterThanOrEqual(1)
    expect(trickle.pending()).toBe(0)
    trickle.restore()
  })
})

describe('huge body (item 7)', () => {
  it('in process: valid JSON of exactly hugeBodyBytes, the right answer plus padding', async () => {
    const { status } = await inProcess({ hugeBody: 1, hugeBodyBytes: 2 * MiB })
    const res = await status()
    expect(res.headers.get('content-length')).toBeNull()
    const text = await res.text()
    expect(text.length).toBe(2 * MiB)
    const body = JSON.parse(text)
    expect(body).toMatchObject({ videoIdentificationStatus: 'STARTED' })
    expect(body.padding).toMatch(/^a+$/)
  })

  it('through the client: cut at maxResponseBytes, a retryable bad-response', async () => {
    const { s } = await inProcess({ hugeBody: 1, hugeBodyBytes: 64 * MiB })
    const api = createHttpApi({ baseUrl: 'http://127.0.0.1', fetch: s.fetch, getAccessToken: () => s.issueToken(), maxResponseBytes: 100_000 })
    const err = await rejection(api.getStatus({ userId: 5, userType: 0 }))
    expect(err).toMatchObject({ kind: 'bad-response', retryable: true, httpStatus: 200 })
    expect((err as Error).message).toContain('maxResponseBytes')
  })

  it('over HTTP: cut at the default 1 MiB', async () => {
    const sim = await running({ hugeBody: 1, hugeBodyBytes: 64 * MiB })
    const api = createHttpApi({ baseUrl: sim.url, getAccessToken: () => sim.simulator.issueToken() })
    const err = await rejection(api.initiate({ userId: 5, isRestartIdentification: false, correlationType: 0 }))
    expect(err).toMatchObject({ kind: 'bad-response', retryable: true })
    expect((err as Error).message).toContain('1048576')
  })
})

describe('token endpoint down', () => {
  it('tokenServerError answers 503 and is logged as a fault', async () => {
    const s = createSimulator({ faults: { tokenServerError: 1 } })
    const res = await s.fetch('http://127.0.0.1/connect/token', { method: 'POST' })
    expect(res.status).toBe(503)
    expect(s.requests).toEqual([expect.objectContaining({ endpoint: 'token', status: 503, fault: 'server-error' })])
  })
})
