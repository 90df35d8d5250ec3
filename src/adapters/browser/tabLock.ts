import type { Clock } from '../../machine/clock.js'

/** A lock that one tab at a time holds for a flow. */
export interface TabLock {
  /** Resolves once this tab holds the lock (at once when it already does). */
  acquire(): Promise<void>
  /** Gives the lock up (and stops waiting for it). */
  release(): void
  /** Whether this tab holds it now. */
  readonly held: boolean
}

interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal }, cb: () => Promise<void>): Promise<unknown>
}

/**
 * A lock through the Web Locks API: held until released or until the page goes away (the
 * browser then releases it by itself).
 */
export function createWebLock(name: string, locks: LockManagerLike): TabLock {
  let held = false
  let pending: Promise<void> | undefined
  let releaseHeld: (() => void) | undefined
  let controller: AbortController | undefined
  return {
    get held() {
      return held
    },
    acquire() {
      if (held) return Promise.resolve()
      if (pending) return pending
      controller = new AbortController()
      pending = new Promise<void>((resolve, reject) => {
        locks
          .request(name, { signal: controller!.signal }, () => {
            held = true
            resolve()
            return new Promise<void>((r) => (releaseHeld = r))
          })
          .catch((err: unknown) => {
            pending = undefined
            reject(err)
          })
      })
      return pending
    },
    release() {
      controller?.abort()
      releaseHeld?.()
      releaseHeld = undefined
      held = false
      pending = undefined
    },
  }
}

/** Options of {@link createLeaseLock}. */
export interface LeaseOptions {
  /** Shared between the tabs: `localStorage`. */
  storage: Storage
  clock: Clock
  /** How long a lease lasts without renewal. @default 6000 */
  ttlMs?: number
  /** This tab's id. @default a random id */
  owner?: string
}

/**
 * The fallback where Web Locks are missing: a lease in shared storage (`{ owner, until }`),
 * renewed every third of its life. A tab that closes without releasing it loses it when it
 * expires.
 */
export function createLeaseLock(name: string, options: LeaseOptions): TabLock {
  const { storage, clock } = options
  const ttl = options.ttlMs ?? 6000
  const owner = options.owner ?? Math.random().toString(36).slice(2)
  let held = false
  let timer: unknown
  let pending: Promise<void> | undefined
  let resolvePending: (() => void) | undefined

  const read = (): { owner: string; until: number } | undefined => {
    try {
      const v = JSON.parse(storage.getItem(name) ?? 'null') as { owner?: unknown; until?: unknown } | null
      return v && typeof v.owner === 'string' && typeof v.until === 'number' ? { owner: v.owner, until: v.until } : undefined
    } catch {
      return undefined
    }
  }
  const write = () => storage.setItem(name, JSON.stringify({ owner, until: clock.now() + ttl }))

  const tick = () => {
    const cur = read()
    if (held) {
      if (cur && cur.owner !== owner && cur.until > clock.now()) {
        held = false // another tab took it over after ours expired
      } else write()
    } else if (!cur || cur.owner === owner || cur.until <= clock.now()) {
      write()
      held = read()?.owner === owner
      if (held) resolvePending?.()
    }
    timer = clock.setTimeout(tick, held ? ttl / 3 : ttl / 6)
  }

  return {
    get held() {
      return held
    },
    acquire() {
      if (held) return Promise.resolve()
      if (pending) return pending
      pending = new Promise<void>((resolve) => {
        resolvePending = () => {
          pending = undefined
          resolvePending = undefined
          resolve()
        }
      })
      const p = pending
      clock.clearTimeout(timer)
      tick()
      return p
    },
    release() {
      clock.clearTimeout(timer)
      timer = undefined
      if (held && read()?.owner === owner) storage.removeItem(name)
      held = false
      pending = undefined
      resolvePending = undefined
    },
  }
}
