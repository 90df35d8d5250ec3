import type { SnapshotStore } from '../node/snapshotStore.js'

/**
 * A {@link SnapshotStore} on Web Storage (`sessionStorage` by default: one tab, survives the
 * provider's redirects, gone when the tab closes). Values are JSON text under `prefix + key`.
 */
export function createWebStorageSnapshotStore(storage: Storage = globalThis.sessionStorage, prefix = ''): SnapshotStore {
  if (!storage || typeof storage.getItem !== 'function') {
    throw new TypeError('createWebStorageSnapshotStore: storage must be a Web Storage object (sessionStorage or localStorage)')
  }
  return {
    async get(key) {
      const v = storage.getItem(prefix + key)
      if (v === null) return undefined
      try {
        return JSON.parse(v)
      } catch {
        throw new SyntaxError(`web storage: "${prefix + key}" does not hold valid JSON`)
      }
    },
    async set(key, snapshot) {
      storage.setItem(prefix + key, JSON.stringify(snapshot))
    },
    async delete(key) {
      storage.removeItem(prefix + key)
    },
  }
}
