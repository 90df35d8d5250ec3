/**
 * The workers under transports that answer without I/O, and finalize's retries: the defects of
 * issue 9 (items 1 and 2), each pinned.
 */
import { createActor, SimulatedClock, type Snapshot } from 'xstate'
import { describe, expect, it } from 'vitest'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { TenNPayError } from '../../src/adapters/http/errors.js'
import { identificationMachine } from '../../src/machine/identificationMachine.js'
import { topState } from '../../src/machine/persistence.js'
import type { IdentificationApi, StatusResponse } from '../../src/machine/types.js'
import { createIdentificationWorkers } from '../../src/machine/workers.js'
import { createSimulator } from '../../src/simulator/simulator.js'
import { flush } from '../helpers.js'

const PROCESSING: StatusResponse = { videoIdentificationUrl: null, videoIdentificationStatus: 'PROCESSING', message: null }
/** More requests than any correct run sends: past it the fake refuses, so a spinning loop ends (as `rejected`) instead of hanging the test. */
const SPIN_GUARD = 2000

/** Runs a flow on the real clock until it fails or finalizes; resolves with the final snapshot and the time it took. */
function runUntilEnd(api: IdentificationApi, polling: Record<string, number>, start: (a: { send: (e: never) => void }) => void, snapshot?: Snapshot<unknown>) {
  const machine = identificationMachine.provide({ actors: createIdentificationWorkers({ api }) })
  const actor = createActor(machine, { input: { userId: 7, userType: 0, polling }, ...(snapshot && { snapshot: snapshot as never }) })
  const t0 = performance.now()
  return new Promise<{ state: string; reason: string | undefined; ms: number; actor: typeof actor }>((resolve) => {
    actor.subscribe((s) => {
      const top = topState(s.value)
      if (top === 'failed' || top === 'finalized') resolve({ state: top, reason: s.context.failure?.reason, ms: performance.now() - t0, actor })
    })
    actor.start()
    start(actor as never)
  })
}

/** The largest lateness of a 20 ms timer that re-arms itself while `during` runs. */
async function timerLag<T>(during: Promise<T>): Promise<{ result: T; maxLagMs: number }> {
  let maxLagMs = 0
  let done = false
  const tick = () => {
    const at = performance.now()
    setTimeout(() => {
      maxLagMs = Math.max(maxLagMs, performance.now() - at - 20)
      if (!done) tick()
    }, 20)
  }
  tick()
  const result = await during
  done = true
  return { result, maxLagMs }
}

describe('the poll loop never spins (issue 9, item 1)', () => {
  it('with the in-process simulator, a 300 ms phase deadline ends in timeout within 2 s, ten runs in a row, and a 20 ms timer elsewhere never waits 250 ms', async () => {
    for (let run = 0; run < 10; run++) {
      const sim = createSimulator({ scenario: 'timeout', timing: { captureMs: 0 } })
      let calls = 0
      const api = createHttpApi({
        baseUrl: 'http://127.0.0.1',
        getAccessToken: () => sim.issueToken(),
        fetch: (input, init) => (++calls > SPIN_GUARD ? Promise.resolve(new Response('{}', { status: 404 })) : sim.fetch(input, init)),
      })
      await api.initiate({ userId: 7, isRestartIdentification: false, correlationType: 0 })
      sim.act(7, 'identification', 'success')
      const { result, maxLagMs } = await timerLag(
        runUntilEnd(api, { phaseTimeoutMs: 300, intervalMs: 50, maxIntervalMs: 50 }, (a) => a.send({ type: 'REDIRECT', outcome: 'success' } as never)),
      )
      result.actor.stop()
      expect(result).toMatchObject({ state: 'failed', reason: 'timeout' })
      expect(result.ms).toBeLessThan(2000)
      expect(maxLagMs).toBeLessThan(250)
      expect(calls).toBeLessThan(50)
    }
  })

  it('with a transport that rejects at once (Node fetch to a blocked port), retries wait and the deadline ends the phase', async () => {
    let calls = 0
    const api: IdentificationApi = {
      initiate: () => Promise.reject(new TenNPayError('network', 'refused')),
      getStatus: () => Promise.reject(++calls > SPIN_GUARD ? new TenNPayError('rejected', 'spin guard') : new TenNPayError('network', 'fetch failed: bad port')),
      finalize: () => Promise.reject(new TenNPayError('network', 'refused')),
    }
    const { result, maxLagMs } = await timerLag(runUntilEnd(api, { phaseTimeoutMs: 300 }, (a) => a.send({ type: 'REDIRECT', outcome: 'success' } as never)))
    result.actor.stop()
    expect(result).toMatchObject({ state: 'failed', reason: 'timeout' })
    expect(result.ms).toBeLessThan(2000)
    expect(maxLagMs).toBeLessThan(250)
    expect(calls).toBeLessThanOrEqual(2) // one at once, one at the deadline at most
  })

  it('a flow restored after its deadline fails with timeout at once and sends nothing', async () => {
    let calls = 0
    const api: IdentificationApi = {
      initiate: () => Promise.reject(new Error('unused')),
      getStatus: () => Promise.reject(++calls > SPIN_GUARD ? new TenNPayError('rejected', 'spin guard') : new TenNPayError('network', 'fetch failed')),
      finalize: () => Promise.reject(new Error('unused')),
    }
    // A snapshot taken while polling phase A, whose deadline has passed by the time it is restored.
    const clock = new SimulatedClock()
    clock.set(Date.now() - 600_000)
    const m = identificationMachine.provide({ actors: createIdentificationWorkers({ api: { ...api, getStatus: async () => PROCESSING }, clock }) })
    const first = createActor(m, { input: { userId: 7, userType: 0 }, clock })
    first.start()
    first.send({ type: 'REDIRECT', outcome: 'success' })
    await flush()
    expect(first.getSnapshot().context.deadlineAt).toBeLessThan(Date.now())
    const snapshot = first.getPersistedSnapshot() as Snapshot<unknown>
    first.stop()

    const { result } = await timerLag(runUntilEnd(api, {}, () => {}, JSON.parse(JSON.stringify(snapshot))))
    result.actor.stop()
    expect(result).toMatchObject({ state: 'failed', reason: 'timeout' })
    expect(calls).toBe(0)
  })
})

describe('finalize (issue 9, item 2)', () => {
  function finalizeApi(answers: (n: number) => Promise<{ correlationId: string; individualId: number }>) {
    const payloads: unknown[] = []
    let initiates = 0
    const api: IdentificationApi = {
      initiate: async () => {
        initiates++
        return { videoIdentificationUrl: 'https://id.example/1', videoIdentificationStatus: 'STARTED', message: null }
      },
      getStatus: async () => ({ videoIdentificationUrl: null, videoIdentificationStatus: 'DOCUMENT_SIGN_SUCCESS', message: null }),
      finalize: (req) => {
        payloads.push(req)
        return answers(payloads.length)
      },
    }
    return { api, payloads, initiates: () => initiates }
  }
  const drive = async (clock: SimulatedClock, until: () => boolean, maxMs = 60_000) => {
    for (let t = 0; t < maxMs && !until(); t += 100) {
      await flush()
      clock.increment(100)
    }
    await flush()
  }

  it('a 400 after DOCUMENT_SIGN_SUCCESS is retried on the schedule with the same payload until it succeeds', async () => {
    const clock = new SimulatedClock()
    const f = finalizeApi(async (n) => {
      if (n <= 3) throw new TenNPayError('rejected', 'POST finalize answered 400: the flow has not reached DOCUMENT_SIGN_SUCCESS', { httpStatus: 400 })
      return { correlationId: 'c-1', individualId: 9 }
    })
    const actor = createActor(identificationMachine.provide({ actors: createIdentificationWorkers({ api: f.api, clock, random: () => 0.5 }) }), {
      input: { userId: 7, userType: 0, finalize: { bTrustAppCallBackId: 'bt-1' } },
      clock,
    })
    actor.start()
    actor.send({ type: 'REDIRECT', outcome: 'success', step: 'signing' })
    await drive(clock, () => actor.getSnapshot().status === 'done')
    expect(topState(actor.getSnapshot().value)).toBe('finalized')
    expect(f.payloads).toHaveLength(4)
    expect(new Set(f.payloads.map((p) => JSON.stringify(p)))).toEqual(new Set([JSON.stringify({ userId: 7, bTrustAppCallBackId: 'bt-1', correlationType: 0 })]))
    actor.stop()
  })

  it.each([
    ['400 until finalizeTimeoutMs', () => new TenNPayError('rejected', 'answered 400', { httpStatus: 400 }), 'timeout'],
    ['404', () => new TenNPayError('rejected', 'answered 404', { httpStatus: 404 }), 'rejected'],
    ['401 after a refresh', () => new TenNPayError('unauthorized', 'answered 401', { httpStatus: 401 }), 'unauthorized'],
    ['503 until finalizeTimeoutMs', () => new TenNPayError('transient', 'answered 503', { httpStatus: 503 }), 'timeout'],
  ] as const)('%s: failed with phase finalize, RETRY accepted; RETRY finalizes again with the same payload and never initiates', async (_name, error, reason) => {
    const clock = new SimulatedClock()
    let failing = true
    const f = finalizeApi(async () => {
      if (failing) throw error()
      return { correlationId: 'c-2', individualId: 10 }
    })
    const actor = createActor(identificationMachine.provide({ actors: createIdentificationWorkers({ api: f.api, clock }) }), {
      input: { userId: 7, userType: 0, polling: { finalizeTimeoutMs: 20_000 } },
      clock,
    })
    actor.start()
    actor.send({ type: 'REDIRECT', outcome: 'success', step: 'signing' })
    await drive(clock, () => topState(actor.getSnapshot().value) === 'failed')
    const failed = actor.getSnapshot()
    expect(failed.context.failure).toMatchObject({ reason, phase: 'finalize', retryable: true })
    expect(failed.can({ type: 'RETRY' })).toBe(true)
    const before = f.payloads.length
    failing = false
    actor.send({ type: 'RETRY' })
    expect(topState(actor.getSnapshot().value)).toBe('phaseB')
    await drive(clock, () => actor.getSnapshot().status === 'done')
    expect(actor.getSnapshot().output).toEqual({ correlationId: 'c-2', individualId: 10 })
    expect(f.payloads.length).toBe(before + 1)
    expect(new Set(f.payloads.map((p) => JSON.stringify(p))).size).toBe(1)
    expect(f.initiates()).toBe(0)
    actor.stop()
  })

  it.each([
    ['the provider answers 200 to the last finalize', true, 'finalized'],
    ['the provider fails the last finalize', false, 'failed'],
  ] as const)('CANCEL while finalize is in flight: %s → %s (a result the provider has is kept)', async (_name, answers, expected) => {
    const clock = new SimulatedClock()
    const pending: { resolve: (v: { correlationId: string; individualId: number }) => void; reject: (e: unknown) => void; signal?: AbortSignal }[] = []
    const payloads: unknown[] = []
    const api: IdentificationApi = {
      initiate: () => Promise.reject(new Error('unused')),
      getStatus: async () => ({ videoIdentificationUrl: null, videoIdentificationStatus: 'DOCUMENT_SIGN_SUCCESS', message: null }),
      finalize: (req, opts) => {
        payloads.push(req)
        return new Promise((resolve, reject) => pending.push({ resolve, reject, ...(opts?.signal && { signal: opts.signal }) }))
      },
    }
    const actor = createActor(identificationMachine.provide({ actors: createIdentificationWorkers({ api, clock }) }), { input: { userId: 7, userType: 0 }, clock })
    actor.start()
    actor.send({ type: 'REDIRECT', outcome: 'success', step: 'signing' })
    await drive(clock, () => pending.length === 1)
    expect(topState(actor.getSnapshot().value)).toBe('phaseB')
    actor.send({ type: 'CANCEL' })
    expect(actor.getSnapshot().value).toEqual({ phaseB: 'cancelling' })
    expect(pending[0]!.signal?.aborted).toBe(true) // the first request is given up
    await drive(clock, () => pending.length === 2)
    if (answers) pending[1]!.resolve({ correlationId: 'c-9', individualId: 99 })
    else pending[1]!.reject(new TenNPayError('transient', 'answered 503', { httpStatus: 503 }))
    await drive(clock, () => topState(actor.getSnapshot().value) !== 'phaseB')
    const s = actor.getSnapshot()
    expect(topState(s.value)).toBe(expected)
    if (answers) expect(s.output).toEqual({ correlationId: 'c-9', individualId: 99 })
    else expect(s.context.failure).toMatchObject({ reason: 'cancelled' })
    expect(payloads).toHaveLength(2)
    expect(JSON.stringify(payloads[0])).toBe(JSON.stringify(payloads[1]))
    actor.stop()
    expect(clock.timeouts.size).toBe(0)
  })
})
