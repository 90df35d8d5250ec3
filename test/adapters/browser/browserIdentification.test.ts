import { build } from 'esbuild'
import { builtinModules } from 'node:module'
import { fileURLToPath } from 'node:url'
import { SimulatedClock } from 'xstate'
import { describe, expect, it } from 'vitest'
import { createBrowserIdentification, type BrowserIdentificationOptions } from '../../../src/adapters/browser/browserIdentification.js'
import { createLeaseLock } from '../../../src/adapters/browser/tabLock.js'
import { createWebStorageSnapshotStore } from '../../../src/adapters/browser/webStorageSnapshotStore.js'
import { topState } from '../../../src/machine/persistence.js'
import { flush, simSetup, until } from '../../helpers.js'
import { MemoryStorage } from '../../../src/testing/memoryStorage.js'

const USER = 901

/** A "page": a flow on shared storage, with navigation recorded instead of performed. */
function page(env: ReturnType<typeof simSetup>, storage: MemoryStorage, extra: Partial<BrowserIdentificationOptions> = {}) {
  const navigations: string[] = []
  const flow = createBrowserIdentification({
    api: env.api, userId: USER, userType: 0, storage, clock: env.clock, lock: false,
    navigate: (url) => navigations.push(url),
    ...extra,
  })
  return { flow, navigations }
}


describe('createBrowserIdentification', () => {
  it('carries the flow across the redirects: start → ID capture → resume → signing → resume → finalized', async () => {
    const env = simSetup()
    const storage = new MemoryStorage()
    const p1 = page(env, storage)
    p1.flow.start()
    await until(env.clock, () => p1.navigations.length === 1)
    expect(p1.navigations[0]).toMatch(/^http:\/\/127\.0\.0\.1\/capture\//)
    expect(topState(JSON.parse(storage.getItem(`10npay-identification:0:${USER}`)!).snapshot.value)).toBe('identifying')
    p1.flow.stop() // the page goes away

    env.sim.act(USER, 'identification', 'success')
    const p2 = page(env, storage) // the redirect page
    expect(p2.flow.state).toBe('identifying')
    expect(p2.navigations).toEqual([]) // a restored state is not navigated to again
    p2.flow.resume({ outcome: 'success' })
    await until(env.clock, () => p2.flow.state === 'phaseA')
    p2.flow.continue()
    expect(p2.navigations).toHaveLength(1)
    expect(p2.navigations[0]).toMatch(/\/sign\//)
    p2.flow.stop()

    env.sim.act(USER, 'signing', 'success')
    const p3 = page(env, storage)
    p3.flow.resume({ outcome: 'success', bTrustAppCallBackId: 'bt-77' })
    await until(env.clock, () => p3.flow.state === 'finalized')
    expect(p3.flow.result).toMatchObject({ individualId: expect.any(Number) })
    expect(env.sim.requests.filter((r) => r.endpoint === 'initiate')).toHaveLength(1)
    expect(env.sim.requests.find((r) => r.endpoint === 'finalize')!.body).toMatchObject({ bTrustAppCallBackId: 'bt-77' })
    p3.flow.stop()
    expect(env.clock.timeouts.size).toBe(0)
  })

  it('goes on polling after a reload mid-polling, without a second initiate', async () => {
    const env = simSetup({ behaviours: { [USER]: { phaseA: 'timeout' } } })
    const storage = new MemoryStorage()
    const p1 = page(env, storage)
    p1.flow.start()
    await until(env.clock, () => p1.flow.state === 'identifying')
    env.sim.act(USER, 'identification', 'success')
    p1.flow.resume({ outcome: 'success' })
    await until(env.clock, () => env.sim.requests.filter((r) => r.endpoint === 'status').length >= 2)
    p1.flow.stop() // reload
    const polls = env.sim.requests.filter((r) => r.endpoint === 'status').length
    env.sim.setBehaviour(USER, {})
    const p2 = page(env, storage)
    expect(p2.flow.state).toBe('pollingA')
    await until(env.clock, () => p2.flow.state === 'phaseA')
    expect(env.sim.requests.filter((r) => r.endpoint === 'status').length).toBeGreaterThan(polls)
    expect(env.sim.requests.filter((r) => r.endpoint === 'initiate')).toHaveLength(1)
    p2.flow.stop()
  })

  it('resume({ outcome: "fail" }) asks the provider first: ERROR fails with its message, a recorded success goes on (issue 9, item 3)', async () => {
    for (const [click, expected] of [['fail', 'failed'], ['success', 'phaseA']] as const) {
      const env = simSetup()
      const storage = new MemoryStorage()
      const p1 = page(env, storage)
      p1.flow.start()
      await until(env.clock, () => p1.flow.state === 'identifying')
      p1.flow.stop()
      env.sim.act(USER, 'identification', click)
      const p2 = page(env, storage)
      p2.flow.resume({ outcome: 'fail' })
      expect(p2.flow.state).toBe('pollingA')
      await until(env.clock, () => p2.flow.state === expected)
      if (expected === 'failed') expect(p2.flow.failure).toMatchObject({ reason: 'vendor-error', message: expect.stringContaining('cancelled') })
      expect(env.sim.requests.filter((r) => r.endpoint === 'status').length).toBeGreaterThan(0)
      p2.flow.stop()
    }
  })

  it('resume() with no stored flow ends in failed with a message to restart, not an exception', () => {
    const env = simSetup()
    const { flow } = page(env, new MemoryStorage())
    expect(() => flow.resume({ outcome: 'success' })).not.toThrow()
    expect(flow.state).toBe('failed')
    expect(flow.failure?.message).toMatch(/restart/i)
    expect(env.sim.requests).toHaveLength(0)
    flow.stop()
  })

  it('never navigates to an unsafe signing URL', async () => {
    const env = simSetup({ behaviours: { [USER]: { phaseA: 'unsafe-url' } } })
    const p = page(env, new MemoryStorage(), { autoContinue: true })
    p.flow.start()
    await until(env.clock, () => p.flow.state === 'identifying')
    env.sim.act(USER, 'identification', 'success')
    p.flow.resume({ outcome: 'success' })
    await until(env.clock, () => p.flow.state === 'failed')
    expect(p.flow.failure?.reason).toBe('unsafe-url')
    expect(p.navigations).toHaveLength(1)
    expect(p.navigations.some((u) => u.startsWith('javascript'))).toBe(false)
    p.flow.stop()
  })

  it('fills the initiate audit fields from the browser, never the token into storage', async () => {
    const env = simSetup()
    const storage = new MemoryStorage()
    const nav = { userAgent: 'TestBrowser/1.0', language: 'bg-BG', userAgentData: { platform: 'Linux' } }
    const had = Object.getOwnPropertyDescriptor(globalThis, 'navigator')
    Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true })
    try {
      const p = page(env, storage, { initiate: { userLanguage: 'en' } })
      p.flow.start()
      await until(env.clock, () => p.flow.state === 'identifying')
      const body = env.sim.requests.find((r) => r.endpoint === 'initiate')!.body
      expect(body).toMatchObject({ userAgent: 'TestBrowser/1.0', browserLanguage: 'bg-BG', deviceName: 'Linux', userLanguage: 'en', localTimezone: expect.any(String) })
      p.flow.stop()
    } finally {
      if (had) Object.defineProperty(globalThis, 'navigator', had)
      else delete (globalThis as { navigator?: unknown }).navigator
    }
    for (const t of env.tokens) expect(storage.dump()).not.toContain(t)
  })

  it('restarts a failed flow with isRestartIdentification', async () => {
    const env = simSetup({ behaviours: { [USER]: { initiate: 'vendor-error' } } })
    const p = page(env, new MemoryStorage())
    p.flow.start()
    await until(env.clock, () => p.flow.state === 'failed')
    env.sim.setBehaviour(USER, {})
    p.flow.restart()
    await until(env.clock, () => p.flow.state === 'identifying')
    expect(env.sim.requests.filter((r) => r.endpoint === 'initiate').map((r) => (r.body as { isRestartIdentification: boolean }).isRestartIdentification)).toEqual([false, true])
    p.flow.stop()
  })

  it('validates its options, naming the field', () => {
    const env = simSetup()
    expect(() => createBrowserIdentification({ api: env.api, userId: -1, userType: 0, storage: new MemoryStorage(), lock: false })).toThrow(/userId/)
    expect(() => createBrowserIdentification({ api: {} as never, userId: 1, userType: 0, storage: new MemoryStorage(), lock: false })).toThrow(/api/)
    expect(() => createBrowserIdentification({ api: env.api, userId: 1, userType: 0, storage: {} as Storage, lock: false })).toThrow(/storage/)
  })
})

describe('two tabs of one flow', () => {
  it('only the tab holding the lease polls; the other takes over when it is released', async () => {
    const env = simSetup({ behaviours: { [USER]: { phaseA: 'timeout' } } })
    const shared = new MemoryStorage() // localStorage, shared by the tabs
    const mk = (storage: MemoryStorage) => page(env, storage, { lock: 'lease', leaseStorage: shared })
    const s1 = new MemoryStorage()
    const t1 = mk(s1)
    t1.flow.start()
    await until(env.clock, () => t1.flow.state === 'identifying')
    env.sim.act(USER, 'identification', 'success')
    t1.flow.resume({ outcome: 'success' })
    // The second tab: a duplicate of the first (sessionStorage is copied).
    const s2 = new MemoryStorage()
    s2.setItem(`10npay-identification:0:${USER}`, s1.getItem(`10npay-identification:0:${USER}`)!)
    const t2 = mk(s2)
    expect(t2.flow.state).toBe('pollingA')
    const before = env.sim.requests.filter((r) => r.endpoint === 'status').length
    env.clock.increment(0)
    for (let i = 0; i < 100; i++) {
      await flush()
      env.clock.increment(100)
    }
    const polls = env.sim.requests.filter((r) => r.endpoint === 'status')
    // One poller: about one poll per 2 s over 10 s, not two.
    expect(polls.length - before).toBeLessThanOrEqual(7)
    t1.flow.stop()
    const after = env.sim.requests.filter((r) => r.endpoint === 'status').length
    for (let i = 0; i < 100; i++) {
      await flush()
      env.clock.increment(100)
    }
    expect(env.sim.requests.filter((r) => r.endpoint === 'status').length).toBeGreaterThan(after)
    t2.flow.stop()
  })

  it('a lease is renewed while its tab lives and expires when the tab vanishes', async () => {
    // Each tab has its own timers; both read the same time.
    const clockA = new SimulatedClock()
    const clockB = new SimulatedClock()
    const storage = new MemoryStorage()
    const a = createLeaseLock('l', { storage, clock: clockA, ttlMs: 3000, owner: 'a' })
    const b = createLeaseLock('l', { storage, clock: clockB, ttlMs: 3000, owner: 'b' })
    await a.acquire()
    let bHeld = false
    void b.acquire().then(() => (bHeld = true))
    for (let i = 0; i < 100; i++) {
      clockA.increment(100)
      clockB.increment(100)
      await flush(1)
    }
    expect(a.held).toBe(true)
    expect(bHeld).toBe(false)
    // Tab a is killed: its timers never run again, its lease stays in storage until it expires.
    for (let i = 0; i < 40 && !bHeld; i++) {
      clockB.increment(100)
      await flush(1)
    }
    expect(bHeld).toBe(true)
    b.release()
    expect(storage.getItem('l')).toBeNull()
  })
})

describe('web storage snapshot store', () => {
  it('gets, sets and deletes JSON', async () => {
    const s = new MemoryStorage()
    const store = createWebStorageSnapshotStore(s, 'p:')
    await store.set('k', { a: 1 })
    expect(s.getItem('p:k')).toBe('{"a":1}')
    expect(await store.get('k')).toEqual({ a: 1 })
    await store.delete('k')
    expect(await store.get('k')).toBeUndefined()
  })
})

describe('browser bundle', () => {
  it('bundles for the browser with no Node built-in in its graph', async () => {
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)])
    for (const entry of ['browser/index.ts', 'react/index.ts']) {
      const result = await build({
        entryPoints: [fileURLToPath(new URL(`../../../src/adapters/${entry}`, import.meta.url))],
        bundle: true,
        platform: 'browser',
        format: 'esm',
        write: false,
        metafile: true,
        external: ['react', 'react-dom'],
        logLevel: 'silent',
      })
      const imports = Object.values(result.metafile.inputs).flatMap((i) => i.imports.map((x) => x.path))
      expect(imports.filter((p) => builtins.has(p) || p.startsWith('node:'))).toEqual([])
    }
  })
})
