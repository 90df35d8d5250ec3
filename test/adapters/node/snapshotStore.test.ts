import { mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import Database from 'better-sqlite3'
import { createFileSnapshotStore, createMemorySnapshotStore } from '../../../src/adapters/node/snapshotStore.js'
import { createSqliteSnapshotStore, SQLITE_SCHEMA_VERSION } from '../../../src/adapters/node/sqliteSnapshotStore.js'

describe.each([
  ['memory', async () => createMemorySnapshotStore()],
  ['file', async () => createFileSnapshotStore(join(await mkdtemp(join(tmpdir(), 'store-')), 'nested'))],
  ['sqlite', async () => createSqliteSnapshotStore(join(await mkdtemp(join(tmpdir(), 'store-')), 'flows.db'))],
])('%s snapshot store', (_, make) => {
  it('gets what was set, undefined when absent, nothing after delete', async () => {
    const store = await make()
    expect(await store.get('a')).toBeUndefined()
    await store.set('a', { value: 'pollingA', n: [1, 2] })
    await store.set('b/../c', { other: true })
    expect(await store.get('a')).toEqual({ value: 'pollingA', n: [1, 2] })
    expect(await store.get('b/../c')).toEqual({ other: true })
    await store.delete('a')
    await store.delete('never-set')
    expect(await store.get('a')).toBeUndefined()
  })

  it('lists keys by prefix', async () => {
    const store = await make()
    for (const k of ['a:1', 'a:2', 'ab', 'b:1', 'a:3/x']) await store.set(k, 1)
    expect((await store.list!('a:')).sort()).toEqual(['a:1', 'a:2', 'a:3/x'])
    expect(await store.list!('zz')).toEqual([])
  })

  it('keeps a copy, not a reference', async () => {
    const store = await make()
    const v = { x: 1 }
    await store.set('k', v)
    v.x = 2
    expect(await store.get('k')).toEqual({ x: 1 })
  })
})

describe('file snapshot store', () => {
  it('writes atomically (temp file then rename) and keeps keys inside the folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'store-'))
    const store = createFileSnapshotStore(dir)
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.set('../escape', { i })))
    const files = await readdir(dir)
    expect(files).toEqual(['%2E%2E%2Fescape.json'])
    expect(((await store.get('../escape')) as { i: number }).i).toBeGreaterThanOrEqual(0)
  })

  it('reports a corrupt file clearly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'store-'))
    await writeFile(join(dir, 'k.json'), '{half')
    await expect(createFileSnapshotStore(dir).get('k')).rejects.toThrow(/does not hold valid JSON/)
  })
})

describe('SQLite snapshot store', () => {
  it('migrates a version-1 database forward, keeping its rows', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'sqlite-')), 'old.db')
    const v1 = new Database(file)
    v1.exec('CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)')
    v1.prepare('INSERT INTO kv (key, value) VALUES (?, ?)').run('10npay:flow:x', JSON.stringify({ kept: true }))
    v1.pragma('user_version = 1')
    v1.close()
    const store = createSqliteSnapshotStore(file)
    expect(store.schemaVersion).toBe(SQLITE_SCHEMA_VERSION)
    expect(await store.get('10npay:flow:x')).toEqual({ kept: true })
    await store.set('10npay:flow:y', { n: 2 })
    expect((await store.list('10npay:flow:')).sort()).toEqual(['10npay:flow:x', '10npay:flow:y'])
    store.close()
    const raw = new Database(file)
    expect(raw.pragma('table_info(kv)').map((c: { name: string }) => c.name)).toEqual(['key', 'value', 'updated_at'])
    raw.close()
  })

  it('creates a new database at the current version and refuses a newer one', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'sqlite-')), 'new.db')
    const store = createSqliteSnapshotStore(file)
    expect(store.schemaVersion).toBe(SQLITE_SCHEMA_VERSION)
    store.close()
    await expect(store.get('k')).rejects.toThrow(/closed/)
    const raw = new Database(file)
    raw.pragma('user_version = 99')
    raw.close()
    expect(() => createSqliteSnapshotStore(file)).toThrow(/schema version 99/)
  })
})
