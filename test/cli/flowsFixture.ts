/** A flow driven through the service and the simulator, for the `flows` command's tests (SQLite and PostgreSQL). */
import { createIdentificationService } from '../../src/adapters/server/identificationService.js'
import type { FlowStore } from '../../src/adapters/server/types.js'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { createSimulator } from '../../src/simulator/simulator.js'

export function io() {
  let stdout = ''
  let stderr = ''
  return {
    io: { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { CI: '1' } },
    out: () => stdout,
    err: () => stderr,
  }
}

/** User 91 finalizes (with a few polls in each phase), user 92 fails with a vendor error. */
export async function driveFlowForHistory(store: FlowStore) {
  const sim = createSimulator({ timing: { captureMs: 150, staleMs: 50, signMs: 150 }, behaviours: { 92: { phaseA: 'vendor-error' } } })
  const api = createHttpApi({ baseUrl: 'http://127.0.0.1', fetch: sim.fetch, getAccessToken: () => sim.issueToken() })
  const service = createIdentificationService({ api, store, replicaId: 'replica-test', polling: { intervalMs: 40, maxIntervalMs: 40 } })
  const until = async (id: string, state: string) => {
    for (let i = 0; i < 300 && (await service.get(id))?.state !== state; i++) await new Promise((r) => setTimeout(r, 20))
  }
  const f = await service.start({ userId: 91, userType: 0 })
  sim.act(91, 'identification', 'success')
  await service.redirect(f.id, { outcome: 'success' })
  await until(f.id, 'signing')
  sim.act(91, 'signing', 'success')
  await service.redirect(f.id, { outcome: 'success' })
  await until(f.id, 'finalized')
  const g = await service.start({ userId: 92, userType: 0 })
  sim.act(92, 'identification', 'success')
  await service.redirect(g.id, { outcome: 'success' })
  await until(g.id, 'failed')
  return { id: f.id, failedId: g.id, service }
}
