/** `10npay-id flows show` and `list` on PostgreSQL: the timeline of a flow a test drove through the simulator (issue 12). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../src/cli/cli.js'
import { createPostgresFlowStore } from '../../src/adapters/postgres/index.js'
import { driveFlowForHistory, io } from '../cli/flowsFixture.js'
import { createTestDatabase, type TestDatabase } from './pgHelpers.js'

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase('tenpay_flows')
})
afterAll(async () => {
  await db.drop()
})

describe('10npay-id flows, on PostgreSQL', () => {
  it('show prints the timeline; list finds flows by state and failure reason', async () => {
    const store = createPostgresFlowStore({ connectionString: db.url })
    const { id, failedId, service } = await driveFlowForHistory(store)
    try {
      const t = io()
      expect(await runCli(['flows', 'show', id, '--postgres', db.url], t.io)).toBe(0)
      const out = t.out()
      for (const s of ['identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB']) expect(out).toMatch(new RegExp(`state\\s+${s}`))
      expect(out).toMatch(/state\s+finalized — individualId \d+/)
      expect(out).toMatch(/event\s+REDIRECT received by replica-test/)
      expect(out).toMatch(/request\s+status → 200 PROCESSING/)
      const failed = io()
      expect(await runCli(['flows', 'list', '--postgres', db.url, '--reason', 'vendor-error', '--json'], failed.io)).toBe(0)
      expect(JSON.parse(failed.out()).map((f: { id: string }) => f.id)).toEqual([failedId])
      const byUser = io()
      expect(await runCli(['flows', 'show', '--user-id', '92', '--postgres', db.url, '--json'], byUser.io)).toBe(0)
      expect(JSON.parse(byUser.out()).flow).toMatchObject({ id: failedId, state: 'failed', failure: { reason: 'vendor-error', phase: 'A' } })
      expect(t.out() + failed.out() + byUser.out()).not.toMatch(/postgres:\/\//)
    } finally {
      await service.close()
      await store.close()
    }
  }, 60_000)
})
