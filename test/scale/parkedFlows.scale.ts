import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createIdentificationService } from '../../src/adapters/server/identificationService.js'
import { createSqliteFlowStore } from '../../src/adapters/node/sqliteFlowStore.js'
import type { IdentificationApi } from '../../src/machine/types.js'

const N = Number(process.env['PARKED_FLOWS'] ?? 100_000)

/** A provider that answers initiate at once: the test measures the service, not a simulator's memory. */
const api: IdentificationApi = {
  initiate: async (req) => ({ videoIdentificationUrl: `https://id.10npay.example/s/${req.userId}`, videoIdentificationStatus: 'STARTED', message: '' }),
  getStatus: async () => ({ videoIdentificationUrl: null, videoIdentificationStatus: 'PROCESSING', message: null }),
  finalize: async () => ({ correlationId: 'c', individualId: 1 }),
}

function heapMb() {
  ;(globalThis as { gc?: () => void }).gc?.()
  return process.memoryUsage().heapUsed / 1024 / 1024
}

describe('flows that wait for the user live in the store, not in memory', () => {
  it(`parks ${N.toLocaleString('en')} flows with the heap under 150 MB`, async () => {
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('function')
    const store = createSqliteFlowStore(join(await mkdtemp(join(tmpdir(), 'scale-')), 'flows.db'))
    const service = createIdentificationService({ api, store })
    const before = heapMb()
    const t0 = Date.now()
    const batch = 500
    for (let i = 0; i < N; i += batch) {
      const views = await Promise.all(
        Array.from({ length: Math.min(batch, N - i) }, (_, j) => service.start({ userId: 1 + i + j, userType: 0 })),
      )
      if (views.some((v) => v.state !== 'identifying')) throw new Error(`a flow did not park: ${JSON.stringify(views.find((v) => v.state !== 'identifying'))}`)
    }
    const seconds = (Date.now() - t0) / 1000
    const after = heapMb()
    const counts = await store.counts()
    const stored = counts.parked
    console.log(
      `parked ${N} flows in ${seconds.toFixed(1)} s (${Math.round(N / seconds)}/s); heap ${before.toFixed(1)} MB → ${after.toFixed(1)} MB; ` +
        `${service.running} actors in memory; ${stored} flows in SQLite`,
    )
    expect(stored).toBe(N)
    expect(service.running).toBe(0)
    expect(after).toBeLessThan(150)
    await service.close()
    await store.close()
  })
})
