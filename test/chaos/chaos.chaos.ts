/**
 * The chaos suite (`npm run test:chaos`): hundreds of flows over real loopback HTTP (and in
 * process, over `simulator.fetch`) with injected faults — the hostile ones of issue 9 included:
 * refused connections, cross-origin redirects, bodies that trickle, bodies that never end —
 * stories that end badly, the backend killed mid-run, 10 000-run fuzzing, and the measured
 * "Hostile provider" figures. Prints its figures and writes them to docs/reliability.md.
 */
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { runIdentification, type IdentificationOutcome } from '../../src/adapters/node/runIdentification.js'
import { createPasswordGrantTokenSource } from '../../src/adapters/node/tokenSource.js'
import type { IdentificationApi } from '../../src/machine/types.js'
import type { FaultProfile } from '../../src/simulator/faults.js'
import type { Behaviour } from '../../src/simulator/scenarios.js'
import { createSimulator, type SimulatorRequest } from '../../src/simulator/simulator.js'
import { startSimulator } from '../../src/simulator/server.js'
import { kill, startBackend, type Backend } from '../backend/fixtures/backendProcess.js'
import { arbitraryEvent, arbitraryResponse, clientOnlyThrowsTenNPayError, machineHoldsItsInvariants } from '../fuzz/properties.js'
import { measureCli, measureHugeBodyInChild, measureSlowBody, measureSpin, measureTokenDown, rssPeak, timerLag } from './hostile.js'
import { reliabilityMarkdown, type ChaosFigures, type RunFigures } from './report.js'

const SEED = 20261126
const PROFILE: FaultProfile = {
  serverError: 0.05,
  rateLimit: 0.03,
  retryAfterSeconds: 1,
  reset: 0.03,
  hang: 0.02,
  hangMs: 1500,
  truncated: 0.02,
  html: 0.02,
  wrongShape: 0.02,
  latency: 0.05,
  latencyMs: 150,
  expireFirstTokenAfter: 400,
  staleAnswersAfterSign: 3,
  // Issue 9: a refusal with no I/O (item 1), a redirect to another origin (item 4), headers and
  // then one byte a second past the 600 ms request timeout (item 6), a 16 MiB body (item 7).
  refused: 0.03,
  crossOriginRedirect: 0.02,
  slowBody: 0.02,
  slowBodyByteMs: 1000,
  hugeBody: 0.02,
  hugeBodyBytes: 16 * 1024 * 1024,
}
/** A flow sends far fewer API requests than this; a loop that spins sends thousands. */
const MAX_REQUESTS_PER_FLOW = 100
/** The fault kinds of issue 9 that every "good" run must have served at least once. */
const HOSTILE_KINDS = ['refused', 'redirect', 'slow-body', 'huge-body'] as const
const POLLING = { intervalMs: 100, maxIntervalMs: 250, phaseTimeoutMs: 30_000, finalizeTimeoutMs: 60_000 }
const API_ENDPOINTS = new Set(['initiate', 'status', 'finalize'])

const figures: ChaosFigures = {
  date: new Date().toISOString().slice(0, 10),
  machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}`,
  profile: { seed: SEED, ...PROFILE, redirectTo: 'a second loopback server, which counts what reaches it' },
  loadAverage: { start: Math.round(loadavg()[0]! * 100) / 100 },
}

afterAll(() => {
  figures.loadAverage!.end = Math.round(loadavg()[0]! * 100) / 100
  writeFileSync(new URL('../../docs/reliability.md', import.meta.url), reliabilityMarkdown(figures))
  console.log(JSON.stringify(figures, null, 2))
})

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!
}

/** Resources left open, minus the ones that were there before. */
function openHandles(baseline: string[]): string[] {
  const left = [...process.getActiveResourcesInfo()]
  for (const b of baseline) {
    const i = left.indexOf(b)
    if (i >= 0) left.splice(i, 1)
  }
  return left.filter((r) => r !== 'CloseReq' && r !== 'FSReqCallback')
}

async function settle(ms: number) {
  await new Promise((r) => setTimeout(r, ms))
}

/** Another origin on loopback: redirect faults point here, and it must receive nothing. */
async function startOtherOrigin(): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0
  const server = createServer((req, res) => {
    req.resume()
    res.end('{"access_token":"stolen","correlationId":"stolen","individualId":1}')
  })
  // A connection counts even if no request follows it.
  server.on('connection', () => hits++)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => hits,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

/** What a flow runs against: the client, and how the simulated user presses Complete on a provider page. */
interface Target {
  api: IdentificationApi
  complete: (url: string) => Promise<Response>
}

/** The client and the pages over loopback HTTP. */
function overHttp(url: string, credentials: ReturnType<typeof createSimulator>['credentials']): Target {
  const tokens = createPasswordGrantTokenSource({ tokenUrl: `${url}/connect/token`, ...credentials })
  return {
    api: createHttpApi({ baseUrl: url, getAccessToken: tokens, requestTimeoutMs: 600 }),
    complete: (page) => fetch(`${page}/complete`, { method: 'POST', redirect: 'manual' }),
  }
}

/** The client and the pages in process, over `simulator.fetch` (no socket at all). */
function inProcess(sim: ReturnType<typeof createSimulator>): Target {
  const tokens = createPasswordGrantTokenSource({ tokenUrl: 'http://127.0.0.1/connect/token', ...sim.credentials, fetch: sim.fetch })
  return {
    api: createHttpApi({ baseUrl: 'http://127.0.0.1', getAccessToken: tokens, requestTimeoutMs: 600, fetch: sim.fetch }),
    complete: (page) => sim.fetch(`${page}/complete`, { method: 'POST', redirect: 'manual' }),
  }
}

/** Runs `n` flows, `concurrency` at a time; returns each user's outcome (or 'stuck'). */
async function runFlows(
  target: Target,
  users: number[],
  concurrency: number,
  pollingFor: (userId: number) => typeof POLLING,
): Promise<Map<number, IdentificationOutcome | 'stuck'>> {
  const results = new Map<number, IdentificationOutcome | 'stuck'>()
  let next = 0
  const worker = async () => {
    while (next < users.length) {
      const userId = users[next++]!
      const ac = new AbortController()
      const stuckTimer = setTimeout(() => ac.abort(new Error('stuck')), 180_000)
      try {
        const outcome = await runIdentification({
          api: target.api, userId, userType: 0, polling: pollingFor(userId), signal: ac.signal,
          onAction: async ({ url }) => {
            const res = await target.complete(url)
            await res.body?.cancel()
            return res.status === 303 ? 'success' : 'fail'
          },
        })
        results.set(userId, outcome)
      } catch {
        results.set(userId, 'stuck')
      } finally {
        clearTimeout(stuckTimer)
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return results
}

/** The figures of a "good" run from its outcomes and the simulator's request log. */
function goodFigures(
  transport: RunFigures['transport'],
  users: number[],
  concurrency: number,
  results: Map<number, IdentificationOutcome | 'stuck'>,
  requests: SimulatorRequest[],
  extra: Pick<RunFigures, 'unhandledRejections' | 'openHandlesAfter' | 'seconds' | 'otherOriginRequests' | 'rssPeakGrowthMb' | 'maxTimerLagMs'>,
): RunFigures {
  const mine = new Set(users)
  const per = new Map<number, SimulatorRequest[]>(users.map((u) => [u, []]))
  for (const r of requests) if (r.userId !== undefined && mine.has(r.userId) && API_ENDPOINTS.has(r.endpoint)) per.get(r.userId)!.push(r)
  const counts = [...per.values()].map((p) => p.length)
  const finals = [...per.values()].map((p) => p.filter((r) => r.endpoint === 'finalize'))
  const faultsServed: Record<string, number> = {}
  for (const p of per.values()) for (const r of p) if (r.fault) faultsServed[r.fault] = (faultsServed[r.fault] ?? 0) + 1
  const outcomes = [...results.values()]
  return {
    transport,
    flows: users.length,
    concurrency,
    finalized: outcomes.filter((o) => o !== 'stuck' && o.type === 'finalized').length,
    failed: outcomes.filter((o) => o !== 'stuck' && o.type === 'failed').length,
    stuck: outcomes.filter((o) => o === 'stuck').length,
    requestsPerFlow: { p50: quantile(counts, 0.5), p95: quantile(counts, 0.95), max: Math.max(...counts) },
    finalizeCallsPerFlow: { p50: quantile(finals.map((f) => f.length), 0.5), max: Math.max(...finals.map((f) => f.length)) },
    finalizeRetriesIdentical: finals.every((f) => new Set(f.map((r) => JSON.stringify(r.body))).size <= 1),
    apiRequests: counts.reduce((a, b) => a + b, 0),
    faultsServed,
    ...extra,
  }
}

/** The assertions every "good" run keeps. */
function expectGood(g: RunFigures, results: Map<number, IdentificationOutcome | 'stuck'>) {
  const failures = [...results.values()].filter((o) => o !== 'stuck' && o.type === 'failed')
  expect(failures, JSON.stringify(failures.slice(0, 3))).toEqual([])
  expect(g.finalized).toBe(g.flows)
  expect(g.stuck).toBe(0)
  expect(g.requestsPerFlow.max).toBeLessThanOrEqual(MAX_REQUESTS_PER_FLOW)
  expect(g.finalizeRetriesIdentical).toBe(true)
  expect(g.unhandledRejections).toBe(0)
  expect(g.openHandlesAfter).toEqual([])
  expect(g.otherOriginRequests).toBe(0)
  for (const kind of HOSTILE_KINDS) expect(g.faultsServed[kind] ?? 0, kind).toBeGreaterThan(0)
}

describe.sequential('chaos', () => {
  it('1. 500 flows, 50 at once, with faults, over loopback HTTP: all finalize', async () => {
    const baseline = process.getActiveResourcesInfo()
    const rejections: unknown[] = []
    const onRejection = (r: unknown) => rejections.push(r)
    process.on('unhandledRejection', onRejection)
    const other = await startOtherOrigin()
    const sim = await startSimulator({
      timing: { captureMs: 300, staleMs: 100, signMs: 300 },
      faults: { ...PROFILE, redirectTo: other.url },
      seed: SEED,
    })
    const t0 = Date.now()
    const users = Array.from({ length: 500 }, (_, i) => 100_000 + i)
    const { result: results, growthMb } = await rssPeak(() => runFlows(overHttp(sim.url, sim.simulator.credentials), users, 50, () => POLLING))
    const seconds = (Date.now() - t0) / 1000
    await sim.close()
    await other.close()
    await settle(200)
    process.off('unhandledRejection', onRejection)
    const good = goodFigures('loopback HTTP', users, 50, results, sim.requests, {
      unhandledRejections: rejections.length,
      openHandlesAfter: openHandles(baseline),
      seconds,
      otherOriginRequests: other.hits(),
      rssPeakGrowthMb: growthMb,
    })
    figures.good = good
    console.log('run 1', good)
    expectGood(good, results)
  })

  it('1b. 500 flows, 50 at once, with the same faults, in process (simulator.fetch): all finalize, the event loop stays free', async () => {
    const baseline = process.getActiveResourcesInfo()
    const rejections: unknown[] = []
    const onRejection = (r: unknown) => rejections.push(r)
    process.on('unhandledRejection', onRejection)
    const other = await startOtherOrigin()
    const sim = createSimulator({ timing: { captureMs: 300, staleMs: 100, signMs: 300 }, faults: { ...PROFILE, redirectTo: other.url }, seed: SEED + 3 })
    const t0 = Date.now()
    const users = Array.from({ length: 500 }, (_, i) => 150_000 + i)
    const { result: measured, maxLagMs } = await timerLag(() => rssPeak(() => runFlows(inProcess(sim), users, 50, () => POLLING)))
    const seconds = (Date.now() - t0) / 1000
    await other.close()
    await settle(200)
    process.off('unhandledRejection', onRejection)
    const good = goodFigures('in process', users, 50, measured.result, sim.requests, {
      unhandledRejections: rejections.length,
      openHandlesAfter: openHandles(baseline),
      seconds,
      otherOriginRequests: other.hits(),
      rssPeakGrowthMb: measured.growthMb,
      maxTimerLagMs: maxLagMs,
    })
    figures.goodInProcess = good
    console.log('run 1b', good)
    expectGood(good, measured.result)
  })

  it('2. stories that end badly end 100 % in the right failure reason', async () => {
    const baseline = process.getActiveResourcesInfo()
    const rejections: unknown[] = []
    const onRejection = (r: unknown) => rejections.push(r)
    process.on('unhandledRejection', onRejection)
    const stories: Record<string, { behaviour: Behaviour; reason: string }> = {
      'vendor ERROR in phase A': { behaviour: { phaseA: 'vendor-error' }, reason: 'vendor-error' },
      'permanent 401 in phase B': { behaviour: { phaseB: 'unauthorized' }, reason: 'unauthorized' },
      '404 at initiate': { behaviour: { initiate: 'rejected' }, reason: 'rejected' },
      'no status change (timeout)': { behaviour: { phaseA: 'timeout' }, reason: 'timeout' },
    }
    const behaviours: Record<number, Behaviour> = {}
    const storyOf = new Map<number, string>()
    let u = 200_000
    for (const [name, s] of Object.entries(stories)) {
      for (let i = 0; i < 30; i++) {
        behaviours[u] = s.behaviour
        storyOf.set(u++, name)
      }
    }
    const { expireFirstTokenAfter: _, ...noExpiry } = PROFILE
    const other = await startOtherOrigin()
    const sim = await startSimulator({ timing: { captureMs: 200, staleMs: 50, signMs: 200 }, faults: { ...noExpiry, redirectTo: other.url }, seed: SEED + 1, behaviours })
    // The token endpoint answering 307/308 to another origin: its own provider (the token
    // endpoint has no user), the same API faults. The password must never reach the other origin.
    const TOKEN_REDIRECT = 'token endpoint redirects to another origin'
    stories[TOKEN_REDIRECT] = { behaviour: {}, reason: 'rejected' }
    const redirecting = await startSimulator({ faults: { ...noExpiry, tokenRedirect: 1, redirectTo: other.url }, seed: SEED + 4 })
    const redirectUsers = Array.from({ length: 30 }, (_, i) => u + i)
    for (const r of redirectUsers) storyOf.set(r, TOKEN_REDIRECT)
    const users = [...storyOf.keys()]
    // A short deadline for the timeout story only: with 3 s, retried faults could outlast the
    // deadline before the 404 or 401 a story ends in arrives, and the right reason would be timeout.
    const [main, viaRedirect] = await Promise.all([
      runFlows(overHttp(sim.url, sim.simulator.credentials), users.filter((x) => !redirectUsers.includes(x)), 60, (x) =>
        storyOf.get(x) === 'no status change (timeout)' ? { ...POLLING, phaseTimeoutMs: 3000 } : POLLING,
      ),
      runFlows(overHttp(redirecting.url, redirecting.simulator.credentials), redirectUsers, 10, () => POLLING),
    ])
    const results = new Map([...main, ...viaRedirect])
    await sim.close()
    await redirecting.close()
    await other.close()
    await settle(200)
    process.off('unhandledRejection', onRejection)
    const byStory: NonNullable<ChaosFigures['bad']>['byStory'] = {}
    let right = 0
    let stuck = 0
    for (const [userId, o] of results) {
      const story = storyOf.get(userId)!
      const entry = (byStory[story] ??= { flows: 0, right: 0, reasons: {} })
      entry.flows++
      const reason = o === 'stuck' ? 'stuck' : o.type === 'failed' ? o.failure.reason : 'finalized'
      if (o === 'stuck') stuck++
      entry.reasons[reason] = (entry.reasons[reason] ?? 0) + 1
      if (reason === stories[story]!.reason) {
        entry.right++
        right++
      }
    }
    const tokenRedirects = redirecting.requests.filter((r) => r.endpoint === 'token' && r.fault === 'redirect').length
    figures.bad = {
      flows: users.length, right, byStory, stuck, unhandledRejections: rejections.length, openHandlesAfter: openHandles(baseline),
      otherOriginRequests: other.hits(), tokenRedirects,
      apiRequestsWithoutToken: redirecting.requests.filter((r) => API_ENDPOINTS.has(r.endpoint)).length,
    }
    console.log('run 2', JSON.stringify(figures.bad))
    expect(right).toBe(users.length)
    expect(rejections).toHaveLength(0)
    expect(figures.bad.openHandlesAfter).toEqual([])
    expect(tokenRedirects).toBeGreaterThan(0)
    expect(figures.bad.otherOriginRequests).toBe(0)
  })

  it('3. the backend on SQLite, killed with SIGKILL twice mid-run: 200 flows finalize, one initiate each', async () => {
    const sim = await startSimulator({
      timing: { captureMs: 800, staleMs: 200, signMs: 1500 },
      faults: { serverError: 0.03, reset: 0.02, latency: 0.05, latencyMs: 100, staleAnswersAfterSign: 2 },
      seed: SEED + 2,
    })
    const db = join(await mkdtemp(join(tmpdir(), 'chaos-')), 'flows.db')
    const env = { SIM_URL: sim.url, DB: db, INTERVAL_MS: '150' }
    let backend: Backend = await startBackend(env)
    const t0 = Date.now()
    /** A browser retries while the backend is down. */
    const call = async (path: string, init?: RequestInit): Promise<Response> => {
      for (let i = 0; ; i++) {
        try {
          const res = await fetch(`${backend.base}${path}`, { redirect: 'manual', ...init })
          if (res.status < 500) return res
          await res.body?.cancel()
        } catch {
          /* the backend is down: try again */
        }
        if (i > 400) throw new Error(`backend unreachable for ${path}`)
        await settle(50)
      }
    }
    const viewOf = async (id: string) => (await (await call(`/${id}`)).json()) as { state: string; url: string | null }
    const N = 200
    const users = Array.from({ length: N }, (_, i) => 300_000 + i)
    const flows: { userId: number; id: string; url: string }[] = []
    for (const userId of users) {
      const v = await (await call('', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId, userType: 0 }) })).json()
      flows.push({ userId, id: v.id, url: v.url })
    }
    const click = async (url: string) => (await fetch(`${url}/complete`, { method: 'POST', redirect: 'manual' })).body?.cancel()
    let kills = 0
    const restart = async () => {
      await kill(backend.child)
      kills++
      backend = await startBackend(env)
    }
    // Phase A for every flow; the first kill while they poll.
    await Promise.all(flows.map(async (f) => {
      await click(f.url)
      await (await call(`/${f.id}/success`)).body?.cancel()
    }))
    await settle(300)
    await restart()
    // Each flow: wait for the signing URL, sign, come back. The second kill while phase B polls.
    const signed = Promise.all(flows.map(async (f) => {
      let v = await viewOf(f.id)
      for (let i = 0; v.state !== 'signing'; i++) {
        if (i > 600 || ['failed', 'finalized'].includes(v.state)) throw new Error(`flow ${f.id} is ${v.state}`)
        await settle(100)
        v = await viewOf(f.id)
      }
      await click(v.url!)
      await (await call(`/${f.id}/success`)).body?.cancel()
    }))
    await signed
    await settle(400)
    await restart()
    const finalViews = await Promise.all(flows.map(async (f) => {
      let v = await viewOf(f.id)
      for (let i = 0; v.state !== 'finalized' && v.state !== 'failed' && i < 600; i++) {
        await settle(100)
        v = await viewOf(f.id)
      }
      return v
    }))
    await kill(backend.child)
    await sim.close()
    const initiates = users.map((u) => sim.requests.filter((r) => r.userId === u && r.endpoint === 'initiate' && r.status === 200).length)
    const finals = users.map((u) => sim.requests.filter((r) => r.userId === u && r.endpoint === 'finalize'))
    figures.backend = {
      flows: N,
      finalized: finalViews.filter((v) => v.state === 'finalized').length,
      kills,
      initiatesPerFlowMax: Math.max(...initiates),
      finalizePayloadsIdentical: finals.every((f) => new Set(f.map((r) => JSON.stringify(r.body))).size === 1),
      finalizeCallsMax: Math.max(...finals.map((f) => f.length)),
      seconds: (Date.now() - t0) / 1000,
    }
    console.log('run 3', figures.backend)
    expect(figures.backend.finalized).toBe(N)
    expect(kills).toBe(2)
    expect(figures.backend.initiatesPerFlowMax).toBe(1)
    expect(figures.backend.finalizePayloadsIdentical).toBe(true)
  })

  it('4. fuzzing: 10 000 runs into the client and 10 000 into the chart', async () => {
    await fc.assert(fc.asyncProperty(arbitraryResponse, clientOnlyThrowsTenNPayError), { numRuns: 10_000, seed: SEED })
    fc.assert(fc.property(fc.array(arbitraryEvent, { maxLength: 60 }), machineHoldsItsInvariants), { numRuns: 10_000, seed: SEED })
    figures.fuzz = { clientRuns: 10_000, machineRuns: 10_000 }
  })

  it('5. hostile provider: the figures of issue 9, items 1, 6, 7 and 9, measured', async () => {
    const baseline = process.getActiveResourcesInfo()
    const hostile: NonNullable<ChaosFigures['hostile']> = {}
    figures.hostile = hostile

    // Item 1: a 300 ms phase deadline against transports that answer without I/O.
    hostile.spin = await measureSpin(10)
    console.log('hostile spin', JSON.stringify(hostile.spin))
    for (const v of hostile.spin.variants) {
      expect(v.outcomes, v.name).toEqual({ 'failed/timeout': v.runs })
      expect(v.msToEnd.max, v.name).toBeLessThan(2000)
      expect(v.maxTimerLagMs, v.name).toBeLessThan(250)
    }
    // Item 1: the CLI against the blocked port 9, 20 times.
    hostile.cli = await measureCli(20)
    console.log('hostile cli', JSON.stringify(hostile.cli))
    expect(hostile.cli.exitCodes).toEqual({ '1': 20 })
    expect(hostile.cli.seconds.max).toBeLessThan(10)

    // Item 6: headers, then one byte a second, with a 2 s request timeout.
    hostile.slowBody = await measureSlowBody(3, 2000)
    console.log('hostile slow body', JSON.stringify(hostile.slowBody))
    expect(hostile.slowBody.errors).toEqual({ timeout: 3 })
    expect(hostile.slowBody.socketsClosed).toBe(3)

    // Item 7: a 200 MiB status answer, then a flow through many of them (in a fresh process).
    hostile.hugeBody = await measureHugeBodyInChild()
    console.log('hostile huge body', JSON.stringify(hostile.hugeBody))
    expect(hostile.hugeBody.single.error).toMatch(/^bad-response: .*maxResponseBytes/)
    expect(hostile.hugeBody.single.rssGrowthMb).toBeLessThan(100)
    expect(hostile.hugeBody.flow.outcome).toBe('finalized')
    expect(hostile.hugeBody.flow.hugeAnswers).toBeGreaterThan(0)
    expect(hostile.hugeBody.flow.rssGrowthMb).toBeLessThan(100)

    // Item 9: 20 flows polling every 100 ms for 3 s against a token endpoint answering 503.
    hostile.tokenDown = await measureTokenDown(20, 3)
    console.log('hostile token down', JSON.stringify(hostile.tokenDown))
    expect(hostile.tokenDown.tokenRequests).toBeGreaterThan(0)
    expect(hostile.tokenDown.tokenRequests).toBeLessThanOrEqual(15)

    await settle(300)
    expect(openHandles(baseline)).toEqual([])
  })
})
