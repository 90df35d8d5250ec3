/** `10npay-id flows`: what happened to a user's identification, from the store (issue 12). */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli } from '../../src/cli/cli.js'
import { createSqliteFlowStore } from '../../src/adapters/node/sqliteFlowStore.js'
import { driveFlowForHistory, io } from './flowsFixture.js'

describe('10npay-id flows, on SQLite', () => {
  it('show prints the timeline of a flow a test drove through the simulator (while the service still runs)', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'flows-')), 'flows.db')
    const store = createSqliteFlowStore(file)
    const { id, service, failedId } = await driveFlowForHistory(store)
    try {
      const t = io()
      expect(await runCli(['flows', 'show', id, '--db', file], t.io)).toBe(0)
      const out = t.out()
      expect(out).toContain(`flow     ${id}`)
      expect(out).toMatch(/state\s+finalized — individualId \d+/)
      for (const s of ['identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB', 'finalized']) expect(out).toMatch(new RegExp(`state\\s+${s}`))
      expect(out).toMatch(/event\s+REDIRECT received by replica-test/)
      expect(out).toMatch(/request\s+status → 200 PROCESSING \(\d+ ms\)/)
      expect(out).toMatch(/request\s+finalize → 200/)
      // By user: the latest flow of user 91.
      const byUser = io()
      expect(await runCli(['flows', 'show', '--user-id', '91', '--db', file, '--json'], byUser.io)).toBe(0)
      expect(JSON.parse(byUser.out()).flow.id).toBe(id)
      // list by state and by failure reason
      const fin = io()
      expect(await runCli(['flows', 'list', '--db', file, '--state', 'finalized'], fin.io)).toBe(0)
      expect(fin.out()).toContain(id)
      expect(fin.out()).not.toContain(failedId)
      const failed = io()
      expect(await runCli(['flows', 'list', '--db', file, '--reason', 'vendor-error', '--json'], failed.io)).toBe(0)
      expect(JSON.parse(failed.out()).map((f: { id: string }) => f.id)).toEqual([failedId])
      const old = io()
      expect(await runCli(['flows', 'list', '--db', file, '--older-than', '1d'], old.io)).toBe(0)
      expect(old.out()).toBe('no flows match\n')
      const none = io()
      expect(await runCli(['flows', 'show', '00000000-0000-4000-8000-000000000000', '--db', file], none.io)).toBe(1)
      expect(none.err()).toMatch(/no flow/)
      const bad = io()
      expect(await runCli(['flows', 'list'], bad.io)).toBe(2)
      expect(bad.err()).toMatch(/--db .*--postgres/)
    } finally {
      await service.close()
      await store.close()
    }
  }, 60_000)
})
