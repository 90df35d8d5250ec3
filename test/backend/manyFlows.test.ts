import { describe, expect, it } from 'vitest'
import { createIdentificationService } from '../../src/adapters/server/identificationService.js'
import { createMemoryFlowStore } from '../../src/adapters/server/memoryFlowStore.js'
import { flush, simSetup } from '../helpers.js'

describe('many flows through one service', () => {
  it('1 000 concurrent flows against the in-process simulator all finalize, one initiate each', async () => {
    const N = 1000
    const env = simSetup({ timing: { captureMs: 3000, staleMs: 1000, signMs: 3000 } })
    const service = createIdentificationService({ api: env.api, store: createMemoryFlowStore({ now: () => env.clock.now() }), clock: env.clock })
    const users = Array.from({ length: N }, (_, i) => 10_000 + i)
    const flows = await Promise.all(users.map((userId) => service.start({ userId, userType: 0 })))
    expect(flows.every((f) => f.state === 'identifying')).toBe(true)
    expect(service.running).toBe(0)
    for (const u of users) env.sim.act(u, 'identification', 'success')
    await Promise.all(flows.map((f) => service.redirect(f.id, { outcome: 'success' })))
    await flush() // each flow's polling stretch is queued once its redirect is stored
    expect(service.running).toBe(N)
    let maxRunning = 0
    const advanceUntil = async (cond: () => Promise<boolean>) => {
      for (let t = 0; t < 120_000 && !(await cond()); t += 250) {
        await flush(3)
        env.clock.increment(250)
        maxRunning = Math.max(maxRunning, service.running)
      }
    }
    const all = async (state: string) => (await Promise.all(flows.map((f) => service.get(f.id)))).every((v) => v?.state === state)
    await advanceUntil(() => all('signing'))
    expect(await all('signing')).toBe(true)
    for (const u of users) env.sim.act(u, 'signing', 'success')
    await Promise.all(flows.map((f) => service.redirect(f.id, { outcome: 'success' })))
    await advanceUntil(() => all('finalized'))
    expect(await all('finalized')).toBe(true)
    expect(maxRunning).toBeLessThanOrEqual(N)
    expect(service.running).toBe(0)
    expect(env.sim.requests.filter((r) => r.endpoint === 'initiate')).toHaveLength(N)
    expect(env.sim.requests.filter((r) => r.endpoint === 'finalize')).toHaveLength(N)
    await service.close()
    expect(env.clock.timeouts.size).toBe(0)
  }, 120_000)
})
