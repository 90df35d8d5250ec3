import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'

/**
 * Where persisted snapshots live. Values are plain JSON; the token is never among them.
 * Small on purpose, so that any database can back it.
 */
export interface SnapshotStore {
  /** The stored value, or `undefined` when there is none. */
  get(key: string): Promise<unknown | undefined>
  /** Stores a value (replacing any earlier one). */
  set(key: string, snapshot: unknown): Promise<void>
  /** Forgets a value; no error when there is none. */
  delete(key: string): Promise<void>
  /**
   * The keys that start with `prefix`, in no set order. Optional for `runIdentification`; the
   * identification service needs it to find the flows to resume when a process starts.
   */
  list?(prefix: string): Promise<string[]>
}

/**
 * A store in memory. Values are kept as JSON text, so a caller can never change a stored
 * snapshot through a reference it still holds.
 */
export function createMemorySnapshotStore(): Required<SnapshotStore> & { keys(): string[] } {
  const map = new Map<string, string>()
  return {
    async get(key) {
      const v = map.get(key)
      return v === undefined ? undefined : JSON.parse(v)
    },
    async set(key, snapshot) {
      map.set(key, JSON.stringify(snapshot))
    },
    async delete(key) {
      map.delete(key)
    },
    async list(prefix) {
      return [...map.keys()].filter((k) => k.startsWith(prefix))
    },
    keys: () => [...map.keys()],
  }
}

/** The file a key is stored in: the key, percent-encoded, plus `.json`. */
export function fileNameForKey(key: string): string {
  if (typeof key !== 'string' || key === '') throw new TypeError('snapshot store: key must be a non-empty string')
  return `${encodeURIComponent(key).replace(/\./g, '%2E')}.json`
}

/**
 * A store of one JSON file per key in `dir` (created when missing). Writes are atomic: the
 * snapshot goes to a temporary file in the same folder, which is then renamed over the old one,
 * so a crash never leaves half a snapshot behind.
 *
 * @param dir the folder
 * @example const store = createFileSnapshotStore('.identification-state')
 */
export function createFileSnapshotStore(dir: string): Required<SnapshotStore> {
  if (typeof dir !== 'string' || dir === '') throw new TypeError('createFileSnapshotStore: dir must be a non-empty string')
  let ready: Promise<unknown> | undefined
  const ensureDir = () => (ready ??= mkdir(dir, { recursive: true }))
  return {
    async get(key) {
      const file = join(dir, fileNameForKey(key))
      let text: string
      try {
        text = await readFile(file, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
        throw err
      }
      try {
        return JSON.parse(text)
      } catch {
        throw new SyntaxError(`snapshot store: ${file} does not hold valid JSON`)
      }
    },
    async set(key, snapshot) {
      await ensureDir()
      const file = join(dir, fileNameForKey(key))
      const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
      try {
        await writeFile(tmp, JSON.stringify(snapshot), { mode: 0o600 })
        await rename(tmp, file)
      } catch (err) {
        await rm(tmp, { force: true })
        throw err
      }
    },
    async delete(key) {
      await rm(join(dir, fileNameForKey(key)), { force: true })
    },
    async list(prefix) {
      let names: string[]
      try {
        names = await readdir(dir)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
        throw err
      }
      return names
        .filter((n) => n.endsWith('.json'))
        .map((n) => decodeURIComponent(n.slice(0, -'.json'.length)))
        .filter((k) => k.startsWith(prefix))
    },
  }
}
