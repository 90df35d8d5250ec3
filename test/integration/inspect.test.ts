/**
 * `inspect` takes an observer as well as a function (issue 9, item 10): Stately's inspector
 * hands `{ next }`. A whole flow is watched through `@statelyai/inspect` over loopback: its
 * inspector server relays what `createWebSocketInspector` sends to a receiver, where the
 * events are counted.
 */
import { createServer } from 'node:net'
import { createInspectorServer } from '@statelyai/inspect/server'
import { createWebSocketInspector, createWebSocketReceiver, type StatelyInspectionEvent } from '@statelyai/inspect'
import { describe, expect, it } from 'vitest'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { runIdentification } from '../../src/adapters/node/runIdentification.js'
import { createBrowserIdentification } from '../../src/adapters/browser/browserIdentification.js'
import { createSimulator } from '../../src/simulator/simulator.js'
import { MemoryStorage } from '../../src/testing/memoryStorage.js'

/** A port that was free a moment ago (the inspector server takes a port, not 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

const until = async (cond: () => boolean, ms = 5000) => {
  for (const t0 = Date.now(); !cond() && Date.now() - t0 < ms; ) await new Promise((r) => setTimeout(r, 20))
}

describe('inspect: a function or an observer', () => {
  it('runIdentification({ inspect: inspector.inspect }) streams a whole flow to the Stately inspector server', async () => {
    const port = await freePort()
    const server = createInspectorServer({ port, autoOpen: false })
    const received: StatelyInspectionEvent[] = []
    const receiver = createWebSocketReceiver({ server: `ws://127.0.0.1:${port}` })
    const sub = receiver.subscribe((e) => received.push(e))
    const inspector = createWebSocketInspector({ url: `ws://127.0.0.1:${port}` })
    try {
      const sim = createSimulator({ timing: { captureMs: 20, staleMs: 0, signMs: 20 } })
      const api = createHttpApi({ baseUrl: 'http://127.0.0.1', fetch: sim.fetch, getAccessToken: () => sim.issueToken() })
      const outcome = await runIdentification({
        api, userId: 31, userType: 0, polling: { intervalMs: 20, maxIntervalMs: 20 },
        inspect: inspector.inspect,
        onAction: ({ type }) => {
          sim.act(31, type === 'open-identification' ? 'identification' : 'signing', 'success')
          return 'success'
        },
      })
      expect(outcome.type).toBe('finalized')
      await until(() => received.some((e) => e.type === '@xstate.snapshot' && JSON.stringify(e.snapshot).includes('"finalized"')))
      const counts = received.reduce<Record<string, number>>((m, e) => ({ ...m, [e.type]: (m[e.type] ?? 0) + 1 }), {})
      // The chart and its workers, every event and every snapshot up to finalized.
      expect(counts['@xstate.actor']).toBeGreaterThanOrEqual(4)
      expect(counts['@xstate.event']).toBeGreaterThanOrEqual(8)
      expect(counts['@xstate.snapshot']).toBeGreaterThanOrEqual(8)
      const states = received
        .filter((e): e is Extract<StatelyInspectionEvent, { type: '@xstate.snapshot' }> => e.type === '@xstate.snapshot')
        .map((e) => JSON.stringify((e.snapshot as { value?: unknown }).value))
      for (const s of ['initiating', 'identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB', 'finalized']) {
        expect(states.some((v) => v?.includes(`"${s}"`))).toBe(true)
      }
    } finally {
      inspector.stop()
      sub.unsubscribe()
      server.stop()
    }
  })

  it('the browser adapter takes an observer too, and both refuse anything else with a TypeError naming the option', async () => {
    const sim = createSimulator()
    const api = createHttpApi({ baseUrl: 'http://127.0.0.1', fetch: sim.fetch, getAccessToken: () => sim.issueToken() })
    const seen: string[] = []
    const flow = createBrowserIdentification({ api, userId: 5, userType: 0, storage: new MemoryStorage(), lock: false, navigate: () => {}, inspect: { next: (e) => seen.push(e.type) } })
    flow.start()
    flow.stop()
    expect(seen).toContain('@xstate.event')
    expect(() => createBrowserIdentification({ api, userId: 5, userType: 0, storage: new MemoryStorage(), inspect: { nope: 1 } as never })).toThrow(/inspect must be a function or an observer/)
    await expect(runIdentification({ api, userId: 5, userType: 0, onAction: () => 'success', inspect: 42 as never })).rejects.toThrow(/runIdentification: inspect/)
  })
})
