import { mkdtemp, readFile, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { createFileSnapshotStore, createMemorySnapshotStore, runIdentification } from '../../../src/adapters/node/index.js'
import { SNAPSHOT_VERSION, topState } from '../../../src/machine/persistence.js'
import type { IdentificationApi } from '../../../src/machine/types.js'
import { driveClock, flush, simSetup } from '../../helpers.js'

const USER = 4711

function states(list: string[]) {
  return (s: { value: unknown }) => {
    const t = topState(s.value)
    if (list.at(-1) !== t) list.push(t)
  }
}

describe('runIdentification against the in-process simulator (simulated clock)', () => {
  it('finalizes the happy path, opening both URLs once, with one initiate and one finalize', async () => {
    const { clock, sim, api, clicker } = simSetup()
    const seen: string[] = []
    const onAction = vi.fn(clicker())
    const outcome = await driveClock(clock, runIdentification({ api, userId: USER, userType: 0, clock, onAction, onSnapshot: states(seen) }))
    expect(outcome).toMatchObject({ type: 'finalized', individualId: expect.any(Number), correlationId: expect.any(String) })
    expect(seen).toEqual(['idle', 'initiating', 'identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB', 'finalized'])
    expect(onAction.mock.calls.map((c) => c[0].type)).toEqual(['open-identification', 'open-signing'])
    expect(sim.requests.filter((r) => r.endpoint === 'initiate')).toHaveLength(1)
    expect(sim.requests.filter((r) => r.endpoint === 'finalize')).toHaveLength(1)
    expect(clock.timeouts.size).toBe(0)
  })

  it('polls at intervalMs right after a change: phase A (3 s) is seen within one interval', async () => {
    const { clock, sim, api, clicker } = simSetup()
    let pollingAAt = 0
    let phaseAAt = 0
    await driveClock(
      clock,
      runIdentification({
        api, userId: USER, userType: 0, clock, onAction: clicker(), random: () => 0.5,
        onSnapshot: (s) => {
          if (topState(s.value) === 'pollingA' && !pollingAAt) pollingAAt = clock.now()
          if (topState(s.value) === 'phaseA' && !phaseAAt) phaseAAt = clock.now()
        },
      }),
    )
    expect(phaseAAt - pollingAAt).toBeGreaterThanOrEqual(3000)
    expect(phaseAAt - pollingAAt).toBeLessThanOrEqual(3000 + 2000 + 100)
    const statusPolls = sim.requests.filter((r) => r.endpoint === 'status')
    expect(statusPolls.length).toBeLessThanOrEqual(8)
  })

  it('survives the flaky scenario (503, resets, HTML, 429 + Retry-After, a failed finalize)', async () => {
    const { clock, sim, api, clicker } = simSetup({ scenario: 'flaky' })
    const outcome = await driveClock(clock, runIdentification({ api, userId: USER, userType: 0, clock, onAction: clicker() }))
    expect(outcome.type).toBe('finalized')
    const finals = sim.requests.filter((r) => r.endpoint === 'finalize')
    expect(finals.map((r) => r.status)).toEqual([502, 200])
    expect(finals[0]!.body).toEqual(finals[1]!.body)
    expect(sim.requests.filter((r) => r.endpoint === 'initiate' && r.status === 200)).toHaveLength(1)
  })

  it('refreshes an expired token once and goes on', async () => {
    const { clock, sim, api, clicker, tokens } = simSetup({ scenario: 'expired-token' })
    const outcome = await driveClock(clock, runIdentification({ api, userId: USER, userType: 0, clock, onAction: clicker() }))
    expect(outcome.type).toBe('finalized')
    expect(sim.requests.filter((r) => r.status === 401)).toHaveLength(1)
    expect(new Set(tokens).size).toBeGreaterThan(1)
  })

  it.each([
    ['vendor-error', { scenario: 'vendor-error' as const }, { reason: 'vendor-error', phase: 'A', retryable: false, vendorStatus: 'ERROR' }],
    ['timeout (phase A)', { scenario: 'timeout' as const }, { reason: 'timeout', phase: 'A', retryable: true }],
    ['unknown user', { scenario: 'unknown-user' as const }, { reason: 'rejected', phase: 'initiate', httpStatus: 404 }],
    ['401 in phase B', { behaviours: { [USER]: { phaseB: 'unauthorized' as const } } }, { reason: 'unauthorized', phase: 'B', httpStatus: 401 }],
    ['404 at finalize', { behaviours: { [USER]: { finalize: 'rejected' as const } } }, { reason: 'rejected', phase: 'finalize' }],
    ['503 for ever at initiate', { behaviours: { [USER]: { initiate: 'unavailable' as const } } }, { reason: 'timeout', phase: 'initiate', httpStatus: 503 }],
    ['unsafe ID-capture URL', { behaviours: { [USER]: { initiate: 'unsafe-url' as const } } }, { reason: 'unsafe-url', phase: 'initiate' }],
    ['unsafe signing URL', { behaviours: { [USER]: { phaseA: 'unsafe-url' as const } } }, { reason: 'unsafe-url', phase: 'A' }],
    ['vendor error at initiate', { behaviours: { [USER]: { initiate: 'vendor-error' as const } } }, { reason: 'vendor-error', phase: 'initiate' }],
    ['vendor error in phase B', { behaviours: { [USER]: { phaseB: 'vendor-error' as const } } }, { reason: 'vendor-error', phase: 'B' }],
    ['timeout in phase B', { behaviours: { [USER]: { phaseB: 'timeout' as const } } }, { reason: 'timeout', phase: 'B' }],
  ])('%s ends in the right failure with a clear message, nothing left running', async (_, simOptions, expected) => {
    const { clock, api, clicker } = simSetup(simOptions)
    const opened: string[] = []
    const outcome = await driveClock(
      clock,
      runIdentification({
        api, userId: USER, userType: 0, clock,
        onAction: async (a) => {
          opened.push(a.url)
          return clicker()(a)
        },
      }),
    )
    expect(outcome.type).toBe('failed')
    if (outcome.type !== 'failed') return
    expect(outcome.failure).toMatchObject(expected)
    expect(outcome.failure.message.length).toBeGreaterThan(20)
    expect(opened.every((u) => u.startsWith('http://127.0.0.1/'))).toBe(true)
    expect(clock.timeouts.size).toBe(0)
  })

  it('times out 120 s after the last status change, not after the phase began', async () => {
    const { clock, api, clicker } = simSetup({ behaviours: { [USER]: { phaseA: 'timeout' } } })
    let pollingAAt = 0
    let failedAt = 0
    const outcome = await driveClock(
      clock,
      runIdentification({
        api, userId: USER, userType: 0, clock, onAction: clicker(),
        onSnapshot: (s) => {
          if (topState(s.value) === 'pollingA' && !pollingAAt) pollingAAt = clock.now()
          if (topState(s.value) === 'failed') failedAt = clock.now()
        },
      }),
    )
    expect(outcome).toMatchObject({ type: 'failed', failure: { reason: 'timeout' } })
    // STARTED -> PROCESSING is a change seen by the first poll, so the deadline counts from it.
    expect(failedAt - pollingAAt).toBeGreaterThanOrEqual(120_000)
    expect(failedAt - pollingAAt).toBeLessThan(120_000 + 2500)
    if (outcome.type === 'failed') expect(outcome.failure.message).toMatch(/no status change for 120 s \(last status: PROCESSING\)/)
  })

  describe('a Fail redirect is a hint: the status endpoint decides', () => {
    for (const step of ['identification', 'signing'] as const) {
      const phase = step === 'identification' ? 'A' : 'B'
      it(`${step}: the provider reports ERROR → vendor-error with the provider's message, after asking it`, async () => {
        const { clock, sim, api, clicker } = simSetup()
        const outcome = await driveClock(clock, runIdentification({ api, userId: USER, userType: 0, clock, onAction: clicker({ [step]: 'fail' }) }))
        expect(outcome).toMatchObject({ type: 'failed', failure: { reason: 'vendor-error', phase, vendorStatus: 'ERROR' } })
        if (outcome.type === 'failed') expect(outcome.failure.message).toContain('The user cancelled the step')
        expect(sim.requests.filter((r) => r.endpoint === 'status').length).toBeGreaterThan(0)
      })

      it(`${step}: the provider recorded the step as done → goes on exactly as after Success and finalizes`, async () => {
        const { clock, sim, api, clicker } = simSetup()
        const seen: string[] = []
        const outcome = await driveClock(
          clock,
          runIdentification({ api, userId: USER, userType: 0, clock, onAction: clicker({ [step]: 'fail' }, USER, { [step]: 'success' }), onSnapshot: states(seen) }),
        )
        expect(outcome.type).toBe('finalized')
        expect(seen).toContain(step === 'identification' ? 'phaseA' : 'phaseB')
        expect(sim.requests.filter((r) => r.endpoint === 'finalize').length).toBeGreaterThan(0)
      })

      it(`${step}: nothing decisive within failConfirmMs → redirect-failed, and polling stops`, async () => {
        const { clock, sim, api, clicker } = simSetup()
        let confirmingAt = 0
        let failedAt = 0
        const outcome = await driveClock(
          clock,
          runIdentification({
            api, userId: USER, userType: 0, clock, polling: { failConfirmMs: 6000 },
            onAction: clicker({ [step]: 'fail' }, USER, { [step]: 'none' }),
            onSnapshot: (s) => {
              if (s.matches({ [phase === 'A' ? 'pollingA' : 'pollingB']: 'confirming' } as never) && !confirmingAt) confirmingAt = clock.now()
              if (topState(s.value) === 'failed') failedAt = clock.now()
            },
          }),
        )
        expect(outcome).toMatchObject({ type: 'failed', failure: { reason: 'redirect-failed', phase, retryable: false } })
        expect(failedAt - confirmingAt).toBeGreaterThanOrEqual(6000)
        expect(failedAt - confirmingAt).toBeLessThan(6000 + 500)
        const polls = sim.requests.filter((r) => r.endpoint === 'status').length
        clock.increment(60_000)
        await flush()
        expect(sim.requests.filter((r) => r.endpoint === 'status').length).toBe(polls)
        expect(clock.timeouts.size).toBe(0)
      })
    }
  })

  it('treats a throwing onAction as a Fail redirect', async () => {
    const { clock, api } = simSetup()
    const outcome = await driveClock(
      clock,
      runIdentification({ api, userId: USER, userType: 0, clock, onAction: () => { throw new Error('browser crashed') } }),
    )
    expect(outcome).toMatchObject({ type: 'failed', failure: { reason: 'redirect-failed' } })
  })

  it('sends the bTrustAppCallBackId given as input with finalize', async () => {
    const { clock, sim, api, clicker } = simSetup()
    await driveClock(clock, runIdentification({ api, userId: USER, userType: 0, clock, onAction: clicker(), finalize: { bTrustAppCallBackId: 'bt-9' } }))
    expect(sim.requests.find((r) => r.endpoint === 'finalize')!.body).toEqual({ userId: USER, bTrustAppCallBackId: 'bt-9', correlationType: 0 })
  })

  it('starts polling directly with resumeAfter and no stored flow (a flow started elsewhere)', async () => {
    const { clock, sim, api, clicker } = simSetup()
    await api.initiate({ userId: USER, isRestartIdentification: false, correlationType: 0 })
    sim.act(USER, 'identification', 'success')
    const seen: string[] = []
    const outcome = await driveClock(
      clock,
      runIdentification({ api, userId: USER, userType: 0, clock, resumeAfter: 'identification', onAction: clicker(), onSnapshot: states(seen) }),
    )
    expect(outcome.type).toBe('finalized')
    expect(seen.slice(0, 2)).toEqual(['idle', 'pollingA'])
    expect(sim.requests.filter((r) => r.endpoint === 'initiate')).toHaveLength(1) // the one made above
  })

  it('initiates with isRestartIdentification on restart', async () => {
    const { clock, sim, api, clicker } = simSetup()
    await driveClock(clock, runIdentification({ api, userId: USER, userType: 0, clock, onAction: clicker(), restart: true }))
    expect(sim.requests.find((r) => r.endpoint === 'initiate')!.body).toMatchObject({ isRestartIdentification: true })
  })

  it('rejects bad options with a TypeError naming the field, before any request', async () => {
    const { api, sim } = simSetup()
    const onAction = () => 'success' as const
    await expect(runIdentification({ api, userId: 0, userType: 0, onAction })).rejects.toThrow(/userId/)
    await expect(runIdentification({ api, userId: 1, userType: 3 as 0, onAction })).rejects.toThrow(/userType/)
    await expect(runIdentification({ api, userId: 1, userType: 0, onAction, polling: { intervalMs: -1 } })).rejects.toThrow(/polling\.intervalMs/)
    await expect(runIdentification({ api: {} as IdentificationApi, userId: 1, userType: 0, onAction })).rejects.toThrow(/api/)
    await expect(runIdentification({ api, userId: 1, userType: 0, onAction: 'x' as never })).rejects.toThrow(/onAction/)
    await expect(runIdentification({ api, userId: 1, userType: 0, onAction, resumeAfter: 'later' as never })).rejects.toThrow(/resumeAfter/)
    await expect(runIdentification({ api, userId: 1, userType: 0, onAction, store: {} as never })).rejects.toThrow(/store/)
    await expect(runIdentification({ api, userId: 1, userType: 0, onAction, key: '' })).rejects.toThrow(/key/)
    await expect(runIdentification({ api, userId: 1, userType: 0, onAction, signal: 'x' as never })).rejects.toThrow(/signal/)
    expect(sim.requests).toHaveLength(0)
  })
})

describe('abort', () => {
  it.each(['initiating', 'identifying', 'pollingA', 'pollingB', 'phaseB'])(
    'in %s: rejects with an AbortError, sends nothing afterwards, leaves no timer',
    async (target) => {
      const { clock, sim, api, clicker } = simSetup({ behaviours: { [USER]: { finalize: 'unavailable', initiate: target === 'initiating' ? 'unavailable' : 'ok' } } })
      const ac = new AbortController()
      let hung: (() => void) | undefined
      const p = runIdentification({
        api, userId: USER, userType: 0, clock, signal: ac.signal,
        onAction: target === 'identifying' ? () => new Promise((r) => (hung = () => r('success'))) : clicker(),
        onSnapshot: (s) => {
          if (topState(s.value) === target) queueMicrotask(() => ac.abort())
        },
      })
      await expect(driveClock(clock, p)).rejects.toMatchObject({ name: 'AbortError' })
      const count = sim.requests.length
      hung?.()
      for (let i = 0; i < 50; i++) {
        clock.increment(10_000)
        await flush(2)
      }
      expect(sim.requests.length).toBe(count)
      expect(clock.timeouts.size).toBe(0)
    },
  )

  it('rejects at once with an already aborted signal', async () => {
    const { api, sim } = simSetup()
    const reason = new Error('stop')
    await expect(
      runIdentification({ api, userId: USER, userType: 0, onAction: () => 'success', signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason)
    expect(sim.requests).toHaveLength(0)
  })
})

describe('persistence', () => {
  it('stops mid-phase-B, resumes from the file store and finalizes without a second initiate', async () => {
    const dir = await mkdtemp(join(tmpdir(), '10npay-'))
    const store = createFileSnapshotStore(dir)
    const { clock, sim, api, clicker } = simSetup({ behaviours: { [USER]: { phaseB: 'timeout' } } })
    const ac = new AbortController()
    let polls = 0
    // The simulated clock moves on while the file store's real I/O is on its way: under load it
    // can pass minutes of simulated time meanwhile. A long phase deadline keeps that from
    // turning into a phase timeout (the deadline across a restore has its own test below).
    const polling = { phaseTimeoutMs: 24 * 3_600_000 }
    const first = runIdentification({
      api, userId: USER, userType: 0, clock, store, polling, signal: ac.signal, onAction: clicker(),
      onSnapshot: (s) => {
        if (topState(s.value) === 'pollingB' && ++polls === 3) ac.abort()
      },
    })
    await expect(driveClock(clock, first)).rejects.toMatchObject({ name: 'AbortError' })
    const stored = JSON.parse(await readFile(join(dir, (await readdir(dir))[0]!), 'utf8'))
    expect(topState(stored.snapshot.value)).toBe('pollingB')
    expect(stored.version).toBe(SNAPSHOT_VERSION)

    sim.setBehaviour(USER, {})
    const seen: string[] = []
    const onAction = vi.fn(clicker())
    const outcome = await driveClock(clock, runIdentification({ api, userId: USER, userType: 0, clock, store, polling, onAction, onSnapshot: states(seen) }))
    expect(outcome.type).toBe('finalized')
    expect(seen[0]).toBe('pollingB')
    expect(onAction).not.toHaveBeenCalled()
    expect(sim.requests.filter((r) => r.endpoint === 'initiate')).toHaveLength(1)
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([])

    // An ended flow resolves at once from the store and sends nothing.
    const before = sim.requests.length
    const again = await runIdentification({ api, userId: USER, userType: 0, clock, store, onAction })
    expect(again).toEqual(outcome)
    expect(sim.requests.length).toBe(before)
  })

  it('keeps the phase deadline across a restore (counted from the stored time)', async () => {
    const store = createMemorySnapshotStore()
    const { clock, api, clicker } = simSetup({ behaviours: { [USER]: { phaseA: 'timeout' } } })
    const ac = new AbortController()
    let deadline = 0
    const first = runIdentification({
      api, userId: USER, userType: 0, clock, store, signal: ac.signal, onAction: clicker(),
      onSnapshot: (s) => {
        if (topState(s.value) === 'pollingA' && s.context.deadlineAt && s.context.status === 'PROCESSING') {
          deadline = s.context.deadlineAt
          ac.abort()
        }
      },
    })
    await expect(driveClock(clock, first)).rejects.toMatchObject({ name: 'AbortError' })
    clock.increment(100_000) // the process was down for 100 s
    let failedAt = 0
    const outcome = await driveClock(
      clock,
      runIdentification({
        api, userId: USER, userType: 0, clock, store, onAction: clicker(),
        onSnapshot: (s) => {
          if (topState(s.value) === 'failed') failedAt = clock.now()
        },
      }),
    )
    expect(outcome).toMatchObject({ type: 'failed', failure: { reason: 'timeout' } })
    expect(failedAt).toBeGreaterThanOrEqual(deadline)
    expect(failedAt).toBeLessThan(deadline + 1000)
  })

  it('starts afresh, with a warning, from a corrupt or foreign stored value', async () => {
    for (const bad of ['{not json', { format: 'other' }, { format: '10npay-identification', version: 0 }]) {
      const store = createMemorySnapshotStore()
      const { clock, api, clicker } = simSetup()
      await store.set('10npay-identification:0:4711', bad)
      const warnings: string[] = []
      const outcome = await driveClock(clock, runIdentification({ api, userId: USER, userType: 0, clock, store, onAction: clicker(), onWarning: (w) => warnings.push(w) }))
      expect(outcome.type).toBe('finalized')
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/rejected|could not be read/)
    }
  })

  it('never stores the token', async () => {
    const store = createMemorySnapshotStore()
    const written: string[] = []
    const spyStore = { ...store, set: async (k: string, v: unknown) => { written.push(JSON.stringify(v)); return store.set(k, v) } }
    const { clock, api, clicker, tokens } = simSetup({ scenario: 'expired-token' })
    const seen: string[] = []
    await driveClock(clock, runIdentification({ api, userId: USER, userType: 0, clock, store: spyStore, onAction: clicker(), onSnapshot: (s) => seen.push(JSON.stringify(s)), inspect: (e) => seen.push(JSON.stringify(e, (_k, v) => (typeof v === 'object' && v && 'send' in v ? '[actor]' : v))) }))
    expect(tokens.length).toBeGreaterThan(0)
    expect(written.length).toBeGreaterThan(10)
    for (const t of tokens) {
      for (const w of [...written, ...seen]) expect(w).not.toContain(t)
    }
  })
})
