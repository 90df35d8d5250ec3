/**
 * The one-process defects of issue 10, each pinned: a store write that fails once, a store
 * that hangs, a cancel that meets a finalize the provider answered, a redirect after close(),
 * and the handler's hardening (authorize before any lookup, ids in any case, SSE ids and replay).
 */
import { describe, expect, it } from 'vitest'
import { DependencyError, FlowNotFoundError, ServiceClosedError } from '../../src/adapters/server/errors.js'
import { createIdentificationHandler } from '../../src/adapters/server/identificationHandler.js'
import { createIdentificationService } from '../../src/adapters/server/identificationService.js'
import { createMemoryFlowStore } from '../../src/adapters/server/memoryFlowStore.js'
import type { FlowStore, FlowView } from '../../src/adapters/server/types.js'
import type { IdentificationApi } from '../../src/machine/types.js'
import { captureAndSign, flush, simSetup, until } from '../helpers.js'

/** A memory store whose methods can be made to fail or hang. */
function faultyStore(now: () => number) {
  const inner = createMemoryFlowStore({ now })
  const faults: { method?: keyof FlowStore; times: number; mode: 'throw' | 'hang' } = { times: 0, mode: 'throw' }
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown
      if (typeof v !== 'function') return v
      return (...args: unknown[]) => {
        if ((faults.method === prop || faults.method === undefined) && faults.times > 0) {
          faults.times--
          if (faults.mode === 'hang') return new Promise(() => {})
          return Promise.reject(new Error(`injected ${String(prop)} failure`))
        }
        return (v as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  return { store, faults }
}


describe('one process: the store fails or hangs', () => {
  it('a write that fails once leaves the flow consistent; start() does not hang, and the flow goes on from its stored state', async () => {
    const env = simSetup()
    const { store, faults } = faultyStore(() => env.clock.now())
    const errors: unknown[] = []
    const service = createIdentificationService({ api: env.api, store, clock: env.clock, leaseMs: 3000, dependencyTimeoutMs: 500, onError: (e) => errors.push(e) })
    await service.ready
    faults.method = 'write'
    faults.times = 1
    const pending = service.start({ userId: 41, userType: 0 })
    let settled: FlowView | unknown
    pending.then((v) => (settled = v), (e: unknown) => (settled = e))
    // The driver's first write failed: it stopped; the lease runs out and the reconciler takes the flow up again.
    await until(env.clock, () => settled !== undefined, 120_000)
    expect(settled).toMatchObject({ state: 'identifying' })
    expect(errors.some((e) => e instanceof DependencyError && /injected write failure/.test((e as Error).message))).toBe(true)
    // A second start for the user gives the same flow.
    expect((await service.start({ userId: 41, userType: 0 })).id).toBe((settled as FlowView).id)
    await service.close()
  })

  it('a store that hangs: start() rejects within the dependency timeout naming the store; close() returns; a later call succeeds', async () => {
    const env = simSetup()
    const { store, faults } = faultyStore(() => env.clock.now())
    const service = createIdentificationService({ api: env.api, store, clock: env.clock, dependencyTimeoutMs: 300, onError: () => {} })
    await service.ready
    faults.mode = 'hang'
    faults.times = 1
    const t0 = Date.now()
    const err = await service.start({ userId: 42, userType: 0 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DependencyError)
    expect((err as DependencyError).message).toMatch(/^memory: .* did not answer within 300 ms/)
    expect(Date.now() - t0).toBeLessThan(2000)
    const view = await service.start({ userId: 42, userType: 0 })
    expect(view.state).toBe('identifying')
    faults.times = 1000
    const t1 = Date.now()
    await service.close()
    expect(Date.now() - t1).toBeLessThan(3000)
  })
})

describe('one process: cancel meets finalize', () => {
  it('a cancel while finalize is in flight keeps the provider\'s 200 (finalized), and onFinalized is called once', async () => {
    const env = simSetup()
    let release: (() => void) | undefined
    const api: IdentificationApi = {
      ...env.api,
      finalize: async (req, opts) => {
        const first = release === undefined
        if (first) await new Promise<void>((r) => (release = r))
        return env.api.finalize(req, opts)
      },
    }
    const finalized: FlowView[] = []
    const service = createIdentificationService({ api, store: createMemoryFlowStore({ now: () => env.clock.now() }), clock: env.clock, onFinalized: (v) => finalized.push(v) })
    const f = await service.start({ userId: 43, userType: 0 })
    await captureAndSign(env, service, 43, f.id)
    await until(env.clock, () => release !== undefined) // finalize is in flight
    const cancelled = service.cancel(f.id)
    release!()
    const view = await cancelled
    await until(env.clock, async () => (await service.get(f.id))?.state === 'finalized')
    expect(['phaseB', 'finalized']).toContain(view.state)
    expect((await service.get(f.id))?.result).toMatchObject({ individualId: expect.any(Number) })
    await until(env.clock, () => finalized.length === 1)
    await service.close()
    expect(finalized).toHaveLength(1)
  })
})

describe('one process: after close()', () => {
  it('redirect() and every other call reject with ServiceClosedError, and no actor polls', async () => {
    const env = simSetup()
    const service = createIdentificationService({ api: env.api, store: createMemoryFlowStore({ now: () => env.clock.now() }), clock: env.clock })
    const f = await service.start({ userId: 44, userType: 0 })
    await service.close()
    const before = env.sim.requests.length
    await expect(service.redirect(f.id, { outcome: 'success' })).rejects.toBeInstanceOf(ServiceClosedError)
    await expect(service.start({ userId: 45, userType: 0 })).rejects.toBeInstanceOf(ServiceClosedError)
    await expect(service.cancel(f.id)).rejects.toBeInstanceOf(ServiceClosedError)
    for (let i = 0; i < 50; i++) {
      await flush()
      env.clock.increment(100)
    }
    expect(env.sim.requests.length).toBe(before)
    expect(service.running).toBe(0)
    expect(env.clock.timeouts.size).toBe(0)
  })
})

describe('handler hardening', () => {
  const B = 'http://app.test/identifications'
  function setup(authorize: (r: Request, id: string | null) => boolean | Promise<boolean>) {
    const env = simSetup()
    const service = createIdentificationService({ api: env.api, store: createMemoryFlowStore({ now: () => env.clock.now() }), clock: env.clock })
    return { env, service, handler: createIdentificationHandler(service, { authorize }) }
  }

  it('authorize runs before any lookup: a denied request cannot tell whether a flow exists', async () => {
    const seen: (string | null)[] = []
    const { service, handler } = setup((_r, id) => (seen.push(id), id === null))
    const { id } = await service.start({ userId: 46, userType: 0 })
    const unknown = '00000000-0000-4000-8000-000000000000'
    for (const path of ['', '/events', '/history', '/success']) {
      const a = await handler(new Request(`${B}/${id}${path}`))
      const b = await handler(new Request(`${B}/${unknown}${path}`))
      expect([a.status, b.status]).toEqual([403, 403])
      expect(await a.text()).toBe(await b.text())
    }
    expect(seen.filter((x) => x !== null)).toHaveLength(8)
    await service.close()
  })

  it('ids match in any case', async () => {
    const { service, handler } = setup(() => true)
    const { id } = await service.start({ userId: 47, userType: 0 })
    const res = await handler(new Request(`${B}/${id.toUpperCase()}`))
    expect(res.status).toBe(200)
    expect((await res.json()).id).toBe(id)
    expect((await service.get(id.toUpperCase()))?.id).toBe(id)
    await service.close()
  })

  it('413 before authorize reads the body; a parsed body from the framework is taken (express.json())', async () => {
    let authorizeCalls = 0
    const { service, handler } = setup(() => (authorizeCalls++, true))
    const big = new Request(B, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 1, userType: 0, pad: 'x'.repeat(20_000) }) })
    expect((await handler(big)).status).toBe(413)
    expect(authorizeCalls).toBe(0)
    // As after express.json(): the stream is used up, the parsed body is handed over.
    const consumed = new Request(B, { method: 'POST', headers: { 'content-type': 'application/json' } })
    const res = await handler(consumed, { body: { userId: 48, userType: 0 } })
    expect(res.status).toBe(201)
    expect((await res.json()).userId).toBe(48)
    await service.close()
  })

  it('SSE: every event has id = the flow version; Last-Event-ID replays what the client missed', async () => {
    const { env, service, handler } = setup(() => true)
    const f = await service.start({ userId: 49, userType: 0 })
    env.sim.act(49, 'identification', 'success')
    await service.redirect(f.id, { outcome: 'success' })
    await until(env.clock, async () => (await service.get(f.id))?.state === 'signing')
    const read = async (lastEventId?: string) => {
      const ac = new AbortController()
      const res = await handler(new Request(`${B}/${f.id}/events`, { signal: ac.signal, ...(lastEventId && { headers: { 'last-event-id': lastEventId } }) }))
      const reader = res.body!.getReader()
      let text = ''
      for (let i = 0; i < 20; i++) {
        const r = await Promise.race([reader.read(), new Promise<{ done: true; value?: undefined }>((ok) => setTimeout(() => ok({ done: true }), 50))])
        if (r.done) break
        text += new TextDecoder().decode(r.value)
      }
      ac.abort()
      return [...text.matchAll(/^id: (\d+)\nevent: state\ndata: (.*)$/gm)].map((m) => ({ id: Number(m[1]), state: JSON.parse(m[2]!).state as string }))
    }
    const now = await read()
    expect(now).toHaveLength(1)
    expect(now[0]!.state).toBe('signing')
    const all = await read('0')
    expect(all.map((e) => e.state)).toEqual(['initiating', 'identifying', 'pollingA', 'phaseA', 'signing'])
    const ids = all.map((e) => e.id)
    expect([...ids].sort((a, b) => a - b)).toEqual(ids)
    expect(ids.at(-1)).toBe(now[0]!.id)
    const missed = await read(String(ids[2]))
    expect(missed.map((e) => e.state)).toEqual(['phaseA', 'signing'])
    await service.close()
  })

  it('an unknown flow is 404 for whoever may see it', async () => {
    const { service, handler } = setup(() => true)
    expect((await handler(new Request(`${B}/00000000-0000-4000-8000-000000000000`))).status).toBe(404)
    await expect(service.cancel('00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(FlowNotFoundError)
    await service.close()
  })
})
