/**
 * Token hygiene: every scenario runs with recognisable tokens, and everything a user could see
 * or store is scanned for them — snapshots, the memory, file and Web Storage stores, error
 * messages and stacks, inspection events, CLI output with --json and without.
 */
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createBrowserIdentification } from '../../src/adapters/browser/browserIdentification.js'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { createFileSnapshotStore, createMemorySnapshotStore, runIdentification } from '../../src/adapters/node/index.js'
import { runCli } from '../../src/cli/cli.js'
import { SCENARIOS } from '../../src/simulator/scenarios.js'
import { startSimulator } from '../../src/simulator/server.js'
import { MemoryStorage } from '../../src/testing/memoryStorage.js'
import { driveClock, flush, simSetup } from '../helpers.js'

const safeJson = (v: unknown) =>
  JSON.stringify(v, (_k, x) => (typeof x === 'function' ? '[fn]' : x && typeof x === 'object' && 'sessionId' in x && 'send' in x ? '[actor]' : x))

describe('token hygiene', () => {
  it.each(SCENARIOS)('scenario %s: no token in snapshots, stores, errors, inspection events', async (scenario) => {
    const env = simSetup({ scenario })
    const seen: string[] = []
    const memory = createMemorySnapshotStore()
    const dir = await mkdtemp(join(tmpdir(), 'hyg-'))
    const file = createFileSnapshotStore(dir)
    const both = {
      get: memory.get,
      delete: async (k: string) => {
        await memory.delete(k)
        await file.delete(k)
      },
      set: async (k: string, v: unknown) => {
        await memory.set(k, v)
        await file.set(k, v)
      },
    }
    const outcome = await driveClock(
      env.clock,
      runIdentification({
        api: env.api, userId: 61, userType: 0, clock: env.clock, store: both, onAction: env.clicker(),
        onSnapshot: (s) => seen.push(safeJson(s)),
        inspect: (e) => seen.push(safeJson(e)),
      }),
    )
    seen.push(safeJson(outcome))
    if (outcome.type === 'failed') seen.push(outcome.failure.message, outcome.failure.lastError?.message ?? '')
    for (const k of memory.keys()) seen.push(safeJson(await memory.get(k)))
    for (const f of await readdir(dir)) seen.push(await readFile(join(dir, f), 'utf8'))
    // Errors straight from the client, stacks included.
    const err = await env.api.getStatus({ userId: 999_999, userType: 0 }).catch((e: Error) => e)
    if (err instanceof Error) seen.push(err.message, String(err.stack))
    // The browser adapter's Web Storage.
    const storage = new MemoryStorage()
    const flow = createBrowserIdentification({ api: env.api, userId: 62, userType: 0, storage, clock: env.clock, lock: false, navigate: () => {} })
    flow.start()
    for (let i = 0; i < 20; i++) {
      await flush()
      env.clock.increment(100)
    }
    flow.stop()
    seen.push(storage.dump())
    expect(env.tokens.length).toBeGreaterThan(0)
    const all = seen.join('\n')
    for (const t of new Set(env.tokens)) expect(all).not.toContain(t)
  })

  it('CLI output, with --json and without, never shows the token', async () => {
    const sim = await startSimulator({ timing: { captureMs: 100, staleMs: 50, signMs: 100 } })
    try {
      const token = sim.simulator.issueToken()
      const api = createHttpApi({ baseUrl: sim.url, getAccessToken: () => token })
      await api.initiate({ userId: 63, isRestartIdentification: false, correlationType: 0 })
      sim.simulator.act(63, 'identification', 'success')
      let out = ''
      const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (out += s) }, env: { TENNPAY_TOKEN: token, CI: '1' } }
      const base = ['--base-url', sim.url, '--user-id', '63']
      for (const json of [[], ['--json']]) {
        await runCli(['status', ...base, ...json], io)
        await runCli(['wait', '--phase', 'A', '--interval-ms', '100', ...base, ...json], io)
        await runCli(['finalize', ...base, ...json], io) // 400: not signed yet
        await runCli(['status', '--base-url', sim.url, '--user-id', '999', ...json], { ...io, env: { ...io.env, TENNPAY_TOKEN: `${token}x` } })
        await runCli(['demo', '--speed', '20', '--click-ms', '0', ...json], io)
      }
      expect(out).toContain('status:  PROCESSING')
      expect(out).toContain('answered 400')
      expect(out).not.toContain(token)
    } finally {
      await sim.close()
    }
  })
})
