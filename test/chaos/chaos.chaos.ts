/**
 * The chaos suite (`npm run test:chaos`): hundreds of flows over real loopback HTTP with
 * injected faults, stories that end badly, the backend killed mid-run, and 10 000-run fuzzing.
 * Prints its figures and writes them to docs/reliability.md.
 */
import { writeFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { runIdentification, type IdentificationOutcome } from '../../src/adapters/node/runIdentification.js'
import { createPasswordGrantTokenSource } from '../../src/adapters/node/tokenSource.js'
import type { FaultProfile } from '../../src/simulator/faults.js'
import type { Behaviour } from '../../src/simulator/scenarios.js'
import { startSimulator, type RunningSimulator } from '../../src/simulator/server.js'
import { kill, startBackend, type Backend } from '../backend/fixtures/backendProcess.js'
import { arbitraryEvent, arbitraryResponse, clientOnlyThrowsTenNPayError, machineHoldsItsInvariants } from '../fuzz/properties.js'
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
}
const POLLING = { intervalMs: 100, maxIntervalMs: 250, phaseTimeoutMs: 30_000, finalizeTimeoutMs: 60_000 }
const API_ENDPOINTS = new Set(['initiate', 'status', 'finalize'])

const figures: ChaosFigures = {
  date: new Date().toISOString().slice(0, 10),
  machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, Node ${process.version}`,
  profile: { seed: SEED, ...PROFILE },
}

afterAll(() => {
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

/** Runs `n` flows, `concurrency` at a time; returns each user's outcome (or 'stuck'). */
async function runFlows(
  sim: RunningSimulator,
  users: number[],
  concurrency: number,
  pollingFor: (userId: number) => typeof POLLING,
): Promise<Map<number, IdentificationOutcome | 'stuck'>> {
  const tokens = createPasswordGrantTokenSource({ tokenUrl: `${sim.url}/connect/token`, ...sim.simulator.credentials })
  const api = createHttpApi({ baseUrl: sim.url, getAccessToken: tokens, requestTimeoutMs: 600 })
  const results = new Map<number, IdentificationOutcome | 'stuck'>()
  let next = 0
  const worker = async () => {
    while (next < users.length) {
      const userId = users[next++]!
      const ac = new AbortController()
      const stuckTimer = setTimeout(() => ac.abort(new Error('stuck')), 180_000)
      try {
        const outcome = await runIdentification({
          api, userId, userType: 0, polling: pollingFor(userId), signal: ac.signal,
          onAction: async ({ url }) => {
            const res = await fetch(`${url}/complete`, { method: 'POST', redirect: 'manual' })
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

describe.sequential('chaos', () => {
  it('1. 500 flows, 50 at once, with faults, over loopback HTTP: all finalize', async () => {
    const baseline = process.getActiveResourcesInfo()
    const rejections: unknown[] = []
    const onRejection = (r: unknown) => rejections.push(r)
    process.on('unhandledRejection', onRejection)
    const sim = await startSimulator({ timing: { captureMs: 300, staleMs: 100, signMs: 300 }, faults: PROFILE, seed: SEED })
    const t0 = Date.now()
    const users = Array.from({ length: 500 }, (_, i) => 100_000 + i)
    const results = await runFlows(sim, users, 50, () => POLLING)
    const seconds = (Date.now() - t0) / 1000
    await sim.close()
    await settle(200)
    process.off('unhandledRejection', onRejection)
    const per = users.map((u) => sim.requests.filter((r) => r.userId === u && API_ENDPOINTS.has(r.endpoint)))
    const finals = users.map((u) => sim.requests.filter((r) => r.userId === u && r.endpoint === 'finalize'))
    const outcomes = [...results.values()]
    const good: RunFigures = {
      flows: users.length,
      concurrency: 50,
      finalized: outcomes.filter((o) => o !== 'stuck' && o.type === 'finalized').length,
      failed: outcomes.filter((o) => o !== 'stuck' && o.type === 'failed').length,
      stuck: outcomes.filter((o) => o === 'stuck').length,
      requestsPerFlow: { p50: quantile(per.map((p) => p.length), 0.5), p95: quantile(per.map((p) => p.length), 0.95), max: Math.max(...per.map((p) => p.length)) },
      finalizeCallsPerFlow: { p50: quantile(finals.map((f) => f.length), 0.5), max: Math.max(...finals.map((f) => f.length)) },
      finalizeRetriesIdentical: finals.every((f) => new Set(f.map((r) => JSON.stringify(r.body))).size <= 1),
      unhandledRejections: rejections.length,
      openHandlesAfter: openHandles(baseline),
      seconds,
    }
    figures.good = good
    console.log('run 1', good)
    const failures = outcomes.filter((o) => o !== 'stuck' && o.type === 'failed')
    expect(failures, JSON.stringify(failures.slice(0, 3))).toEqual([])
    expect(good.finalized).toBe(500)
    expect(good.stuck).toBe(0)
    expect(good.finalizeRetriesIdentical).toBe(true)
    expect(good.unhandledRejections).toBe(0)
    expect(good.openHandlesAfter).toEqual([])
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
    const sim = await startSimulator({ timing: { captureMs: 200, staleMs: 50, signMs: 200 }, faults: noExpiry, seed: SEED + 1, behaviours })
    const users = [...storyOf.keys()]
    // A short deadline for the timeout story only: with 3 s, retried faults could outlast the
    // deadline before the 404 or 401 a story ends in arrives, and the right reason would be timeout.
    const results = await runFlows(sim, users, 60, (u) =>
      storyOf.get(u) === 'no status change (timeout)' ? { ...POLLING, phaseTimeoutMs: 3000 } : POLLING,
    )
    await sim.close()
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
    figures.bad = { flows: users.length, right, byStory, stuck, unhandledRejections: rejections.length, openHandlesAfter: openHandles(baseline) }
    console.log('run 2', JSON.stringify(figures.bad))
    expect(right).toBe(users.length)
    expect(rejections).toHaveLength(0)
    expect(figures.bad.openHandlesAfter).toEqual([])
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
      const v = await (await call('', { method: 'POST', body: JSON.stringify({ userId, userType: 0 }) })).json()
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
})
