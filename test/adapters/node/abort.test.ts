/** Cancellation: abort at every state — nothing sent afterwards, no timer left, settled within 50 ms. */
import { describe, expect, it } from 'vitest'
import { runIdentification } from '../../../src/adapters/node/runIdentification.js'
import { createMemorySnapshotStore } from '../../../src/adapters/node/snapshotStore.js'
import { topState } from '../../../src/machine/persistence.js'
import { startSimulator } from '../../../src/simulator/server.js'
import { createHttpApi } from '../../../src/adapters/http/httpApi.js'

/** Real timers and real HTTP: the 50 ms bound is about wall time. */
describe('abort at every state over real HTTP', () => {
  it.each([
    ['initiating (request in flight)', 'initiating', { initiate: 'unavailable' }],
    ['identifying (waiting for the user)', 'identifying', {}],
    ['pollingA (waiting between polls)', 'pollingA', { phaseA: 'timeout' }],
    ['pollingB (waiting between polls)', 'pollingB', { phaseB: 'timeout' }],
    ['phaseB (finalize retried)', 'phaseB', { finalize: 'unavailable' }],
  ] as const)('%s', async (_, state, behaviour) => {
    const sim = await startSimulator({ timing: { captureMs: 100, staleMs: 20, signMs: 100 }, behaviours: { 71: behaviour } })
    // When each request left (its arrival at the simulator can come later on a busy machine).
    const sent: number[] = []
    const api = createHttpApi({
      baseUrl: sim.url,
      getAccessToken: () => sim.simulator.issueToken(),
      fetch: (input, init) => (sent.push(performance.now()), fetch(input, init)),
    })
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const ac = new AbortController()
    let abortedAt = 0
    const p = runIdentification({
      api, userId: 71, userType: 0, signal: ac.signal, store: createMemorySnapshotStore(),
      polling: { intervalMs: 100, maxIntervalMs: 200 },
      onAction: async ({ url, type }) => {
        if (state === 'identifying') return new Promise(() => {}) // the user never comes back
        sim.simulator.act(71, type === 'open-identification' ? 'identification' : 'signing', 'success')
        void url
        return 'success'
      },
      onSnapshot: (s) => {
        if (topState(s.value) === state && !abortedAt) {
          setTimeout(() => {
            abortedAt = performance.now()
            ac.abort()
          }, 150)
        }
      },
    })
    const err = await p.catch((e: Error) => e)
    const settledMs = performance.now() - abortedAt
    expect((err as Error).name).toBe('AbortError')
    expect(settledMs).toBeLessThan(50)
    await new Promise((r) => setTimeout(r, 600))
    expect(sent.filter((t) => t >= abortedAt)).toEqual([]) // nothing sent after the abort
    expect(sim.requests.length).toBeLessThanOrEqual(sent.length) // and nothing else reached the provider
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(timersBefore)
    await sim.close()
  })
})
