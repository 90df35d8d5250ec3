import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { createPasswordGrantTokenSource, runIdentification } from '../../src/adapters/node/index.js'
import { startSimulator, type RunningSimulator } from '../../src/simulator/server.js'
import type { Scenario } from '../../src/simulator/scenarios.js'

/** Real loopback HTTP, real timers: short provider timings and polling so that each flow takes well under a second. */
describe('whole flow over real HTTP', () => {
  let sim: RunningSimulator
  beforeAll(async () => {
    sim = await startSimulator({ timing: { captureMs: 150, staleMs: 50, signMs: 150 } })
  })
  afterAll(() => sim.close())

  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

  it.each([
    ['happy', 'finalized', undefined],
    ['slow', 'finalized', undefined],
    ['flaky', 'finalized', undefined],
    ['expired-token', 'finalized', undefined],
    ['vendor-error', 'failed', 'vendor-error'],
    ['timeout', 'failed', 'timeout'],
    ['unknown-user', 'failed', 'rejected'],
  ] as const)('%s ends %s', async (scenario, type, reason) => {
    const userId = 500 + ['happy', 'slow', 'flaky', 'expired-token', 'vendor-error', 'timeout', 'unknown-user'].indexOf(scenario)
    sim.setScenario(userId, scenario as Scenario)
    const tokens = createPasswordGrantTokenSource({ tokenUrl: `${sim.url}/connect/token`, ...sim.simulator.credentials })
    const api = createHttpApi({ baseUrl: sim.url, getAccessToken: tokens, requestTimeoutMs: 2000 })
    const before = timers()
    const outcome = await runIdentification({
      api, userId, userType: 0,
      polling: { intervalMs: 40, maxIntervalMs: 80, phaseTimeoutMs: 1500 },
      onAction: async ({ url }) => {
        // The simulated user presses Complete on the provider's page (a real form POST).
        const res = await fetch(`${url}/complete`, { method: 'POST', redirect: 'manual' })
        await res.body?.cancel()
        return res.status === 303 ? 'success' : 'fail'
      },
    })
    expect(outcome.type).toBe(type)
    if (outcome.type === 'failed') expect(outcome.failure.reason).toBe(reason)
    expect(timers()).toBeLessThanOrEqual(before)
    const mine = sim.requests.filter((r) => r.userId === userId)
    expect(mine.filter((r) => r.endpoint === 'initiate' && r.status === 200).length).toBeLessThanOrEqual(1)
  }, 20_000)
})
