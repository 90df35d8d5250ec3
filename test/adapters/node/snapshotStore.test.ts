import { mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createFileSnapshotStore, createMemorySnapshotStore } from '../../../src/adapters/node/snapshotStore.js'

describe.each([
  ['memory', async () => createMemorySnapshotStore()],
  ['file', async () => createFileSnapshotStore(join(await mkdtemp(join(tmpdir(), 'store-')), 'nested'))],
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
