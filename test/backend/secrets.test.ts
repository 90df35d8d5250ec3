import { describe, expect, it, vi } from 'vitest'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { createIdentificationHandler } from '../../src/adapters/server/identificationHandler.js'
import { createIdentificationService } from '../../src/adapters/server/identificationService.js'
import { createMemoryFlowStore } from '../../src/adapters/server/memoryFlowStore.js'
import { createPasswordGrantTokenSource } from '../../src/adapters/node/tokenSource.js'
import { createSimulator } from '../../src/simulator/simulator.js'

describe('secrets stay on the server', () => {
  it('no token, password or client secret reaches a response, an SSE event, the store or a log line', async () => {
    const SECRET = 'client-SECRET-4d1f9'
    const PASSWORD = 'merchant-PASSWORD-77aa'
    let now = 1_700_000_000_000
    const sim = createSimulator({ credentials: { clientSecret: SECRET, password: PASSWORD }, timing: { captureMs: 0, staleMs: 0, signMs: 0 }, now: () => now })
    sim.setScenario(41, 'expired-token')
    sim.setScenario(42, 'flaky')
    sim.setScenario(43, 'unknown-user')
    const source = createPasswordGrantTokenSource({
      tokenUrl: 'http://127.0.0.1/connect/token', clientId: 'demo-client', clientSecret: SECRET, username: 'demo', password: PASSWORD, fetch: sim.fetch,
    })
    const tokens: string[] = []
    const api = createHttpApi({
      baseUrl: 'http://127.0.0.1', fetch: sim.fetch,
      getAccessToken: async (o) => {
        const t = await source(o)
        tokens.push(t)
        return t
      },
    })
    const store = createMemoryFlowStore()
    const logs: string[] = []
    for (const m of ['log', 'error', 'warn', 'info'] as const) vi.spyOn(console, m).mockImplementation((...a) => void logs.push(a.map(String).join(' ')))
    const service = createIdentificationService({
      api, store, polling: { intervalMs: 10, maxIntervalMs: 20, phaseTimeoutMs: 3000 },
      onError: (e) => logs.push(String(e)), onFailed: (v) => logs.push(JSON.stringify(v)),
    })
    const handler = createIdentificationHandler(service, { authorize: () => true })
    const seen: string[] = []
    const call = async (req: Request) => {
      const res = await handler(req)
      seen.push(`${res.status} ${[...res.headers].join(';')} ${res.headers.get('content-type') === 'text/event-stream' ? '' : await res.text()}`)
      return res
    }
    const sse: Promise<void>[] = []
    for (const userId of [41, 42, 43]) {
      const res = await call(new Request('http://app/identifications', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId, userType: 0 }) }))
      const v = JSON.parse(seen.at(-1)!.slice(seen.at(-1)!.indexOf('{')))
      if (res.status !== 201 || v.state !== 'identifying') continue
      const events = await handler(new Request(`http://app/identifications/${v.id}/events`))
      sse.push(events.text().then((t) => void seen.push(t)))
      sim.act(userId, 'identification', 'success')
      await call(new Request(`http://app/identifications/${v.id}/success`))
      for (let i = 0; i < 200 && (await service.get(v.id))?.state !== 'signing'; i++) await new Promise((r) => setTimeout(r, 10))
      sim.act(userId, 'signing', 'success')
      now += 1
      await call(new Request(`http://app/identifications/${v.id}/success`))
      for (let i = 0; i < 300 && (await service.get(v.id))?.state !== 'finalized'; i++) await new Promise((r) => setTimeout(r, 10))
      await call(new Request(`http://app/identifications/${v.id}`))
    }
    await Promise.all(sse)
    await service.close()
    vi.restoreAllMocks()
    expect(tokens.length).toBeGreaterThan(3)
    const stored = await Promise.all(store.ids().map(async (id) => [await store.get(id), await store.history(id), await store.events(id, 0)]))
    const everything = [...seen, ...logs, JSON.stringify(stored)].join('\n')
    expect(everything).toContain('finalized')
    for (const secret of [SECRET, PASSWORD, ...new Set(tokens)]) expect(everything).not.toContain(secret)
  }, 30_000)
})
