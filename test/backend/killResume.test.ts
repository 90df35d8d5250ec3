import type { ChildProcess } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { kill, startBackend as start } from './fixtures/backendProcess.js'
import { afterEach, describe, expect, it } from 'vitest'
import { startSimulator } from '../../src/simulator/server.js'

const children: ChildProcess[] = []
const startBackend = async (env: Record<string, string>) => {
  const b = await start(env)
  children.push(b.child)
  return b
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
})

const view = async (base: string, id: string) => (await fetch(`${base}/${id}`)).json() as Promise<{ state: string; url: string | null; result: unknown }>
async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (ok(v)) return v
    if (Date.now() > end) throw new Error(`timed out; last: ${JSON.stringify(v)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('a backend process killed with SIGKILL mid-phase-B', () => {
  it('resumes on the same SQLite file: the flow finalizes with one initiate and identical finalize payloads', async () => {
    const sim = await startSimulator({ timing: { captureMs: 300, staleMs: 200, signMs: 2500 } })
    sim.simulator.setBehaviour(31, {})
    const db = join(await mkdtemp(join(tmpdir(), 'kill-')), 'flows.db')
    try {
      const first = await startBackend({ SIM_URL: sim.url, DB: db })
      const started = await (await fetch(first.base, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 31, userType: 0 }) })).json()
      await (await fetch(`${started.url}/complete`, { method: 'POST', redirect: 'manual' })).body?.cancel()
      await (await fetch(`${first.base}/${started.id}/success`, { redirect: 'manual' })).body?.cancel()
      const signing = await waitFor(() => view(first.base, started.id), (v) => v.state === 'signing')
      await (await fetch(`${signing.url}/complete`, { method: 'POST', redirect: 'manual' })).body?.cancel()
      await (await fetch(`${first.base}/${started.id}/success`, { redirect: 'manual' })).body?.cancel()
      await waitFor(() => view(first.base, started.id), (v) => v.state === 'pollingB')
      const phaseBPolls = () => sim.requests.filter((r) => r.userId === 31 && r.endpoint === 'status').length
      const before = phaseBPolls()
      await waitFor(async () => phaseBPolls(), (n) => n >= before + 2)
      await kill(first.child)

      const second = await startBackend({ SIM_URL: sim.url, DB: db })
      const done = await waitFor(() => view(second.base, started.id), (v) => v.state === 'finalized')
      expect(done.result).toMatchObject({ individualId: expect.any(Number) })
      const mine = sim.requests.filter((r) => r.userId === 31)
      expect(mine.filter((r) => r.endpoint === 'initiate')).toHaveLength(1)
      const finals = mine.filter((r) => r.endpoint === 'finalize')
      expect(finals.length).toBeGreaterThanOrEqual(1)
      expect(new Set(finals.map((r) => JSON.stringify(r.body))).size).toBe(1)
      await kill(second.child)
    } finally {
      await sim.close()
    }
  }, 60_000)
})
