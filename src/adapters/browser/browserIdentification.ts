import type { Actor, Snapshot } from 'xstate'
import { createFlowHost, restoreFlow, type FlowHost, type IdentificationSnapshot } from '../../host/flowHost.js'
import type { HostEvent } from '../../machine/events.js'
import { assertInspect, type InspectOption } from '../../machine/inspect.js'
import { systemClock, type Clock } from '../../machine/clock.js'
import { identificationMachine, type IdentificationMachine } from '../../machine/identificationMachine.js'
import { resolveInput } from '../../machine/input.js'
import { topState } from '../../machine/persistence.js'
import type { Failure, IdentificationApi, IdentificationInput, IdentificationResult, IdentificationState } from '../../machine/types.js'
import { isSafeUrl } from '../../machine/urls.js'
import { assertIdentificationApi, createIdentificationWorkers } from '../../machine/workers.js'
import { createLeaseLock, createWebLock, type TabLock } from './tabLock.js'

export type { IdentificationSnapshot }

/** Options of {@link createBrowserIdentification}: the chart's input plus the adapter's own. */
export interface BrowserIdentificationOptions extends IdentificationInput {
  /** The provider's API (`createHttpApi(...)`, pointing at your backend proxy or the provider). */
  api: IdentificationApi
  /**
   * Where the snapshot (never the token) is kept across the provider's redirects.
   * @default sessionStorage
   */
  storage?: Storage
  /**
   * The key in `storage`, also the name of the tab lock.
   * @default `10npay-identification:${userType}:${userId}`
   */
  key?: string
  /**
   * Opens a provider URL (already checked with `isSafeUrl` and `allowedHosts`). Replace it for
   * a popup, a WebView bridge or a router.
   * @default (url) => location.assign(url)
   */
  navigate?: (url: string) => void
  /**
   * Send `CONTINUE` as soon as the signing URL is known, instead of waiting for `continue()`.
   * @default false
   */
  autoContinue?: boolean
  /**
   * How two tabs of the same flow avoid polling twice: `'web-locks'` (the Web Locks API),
   * `'lease'` (a lease in `leaseStorage`), or `false` (no lock).
   * @default 'web-locks' where available, else 'lease'
   */
  lock?: 'web-locks' | 'lease' | false
  /**
   * Shared storage for the `'lease'` lock.
   * @default localStorage
   */
  leaseStorage?: Storage
  /**
   * XState inspection events: a function, or an observer such as `@statelyai/inspect`'s
   * `createBrowserInspector().inspect`.
   */
  inspect?: InspectOption
  /** Storage failures and rejected stored values (the flow goes on in memory). */
  onWarning?: (message: string) => void
  /** The time source. @default the system clock */
  clock?: Clock
  /** Random numbers in `[0, 1)` for jitter. @default Math.random */
  random?: () => number
}

/** What the app's redirect page passes to {@link BrowserIdentification.resume}. */
export interface ResumeOptions {
  /** Which URL the provider redirected to. */
  outcome: 'success' | 'fail'
  /** From the redirect's query, when the signing provider gives one. */
  bTrustAppCallBackId?: string | null
}

/** A flow in the browser. Methods never throw for flow reasons: the snapshot tells. */
export interface BrowserIdentification {
  /** The running XState actor (replaced after `stop()` and a later call). For `@xstate/react` and inspection. */
  readonly actor: Actor<IdentificationMachine>
  /** The current snapshot. */
  getSnapshot(): IdentificationSnapshot
  /** Calls `fn` with every new snapshot; returns the unsubscribe function. */
  subscribe(fn: (snapshot: IdentificationSnapshot) => void): () => void
  /** Initiates (or restarts a failed flow), then navigates to the ID-capture URL. */
  start(): void
  /**
   * On the app's Success/Fail redirect page: restores the stored flow and reports the redirect.
   * With no stored flow the state becomes `failed` with a message asking to restart.
   */
  resume(options: ResumeOptions): void
  /** In `phaseA`: navigates to the signing URL. */
  continue(): void
  /** In `failed` with a retryable failure: the failed step again. */
  retry(): void
  /** Initiates again with `isRestartIdentification: true`. */
  restart(): void
  /** Ends the flow as `failed` (`cancelled`). */
  cancel(): void
  /** Opens the current step's URL again (after a reload in `identifying` or `signing`). */
  open(): void
  /** Stops the actor and releases the tab lock; the stored flow stays. A later call starts it again from storage. */
  stop(): void
  /** Removes the stored flow and starts afresh in `idle`. */
  clear(): void
  /** The top-level state: `idle`, `initiating`, … `finalized`, `failed`. */
  readonly state: IdentificationState
  /** `context.failure`, or `null`. */
  readonly failure: Failure | null
  /** The ids after `finalized`, or `null`. */
  readonly result: IdentificationResult | null
}

const OWN_OPTIONS = [
  'api', 'storage', 'key', 'navigate', 'autoContinue', 'lock', 'leaseStorage', 'inspect', 'onWarning', 'clock', 'random',
] as const

/** The audit fields initiate sends, read from the browser where the app gave none. */
export function browserInitiateFields(given: IdentificationInput['initiate'] = {}): NonNullable<IdentificationInput['initiate']> {
  const nav = (globalThis as { navigator?: Navigator & { userAgentData?: { platform?: string } } }).navigator
  const out = { ...given }
  const clip = (s: string) => s.slice(0, 512)
  try {
    out.localTimezone ??= Intl.DateTimeFormat().resolvedOptions().timeZone
  } catch {
    /* no Intl time zone */
  }
  if (nav?.userAgent) out.userAgent ??= clip(nav.userAgent)
  if (nav?.language) out.browserLanguage ??= clip(nav.language)
  const platform = nav?.userAgentData?.platform
  if (platform) out.deviceName ??= clip(platform)
  for (const k of Object.keys(out) as (keyof typeof out)[]) if (out[k] === undefined) delete out[k]
  return out
}

/**
 * Runs the identification in a browser, across the full-page redirects it makes: the snapshot
 * (never the token) is written to `sessionStorage` after every transition and before every
 * navigation; `resume()` on the redirect page restores it; a reload while polling goes on
 * polling; two tabs of one flow never poll at once.
 *
 * @example
 * const flow = createBrowserIdentification({ api, userId: 42, userType: 0 })
 * startButton.onclick = () => flow.start()
 * // on the Success / Fail redirect page:
 * flow.resume({ outcome: location.pathname.endsWith('/success') ? 'success' : 'fail' })
 */
export function createBrowserIdentification(options: BrowserIdentificationOptions): BrowserIdentification {
  if (!options || typeof options !== 'object') throw new TypeError('createBrowserIdentification: options are required')
  const { api, onWarning, inspect } = options
  assertIdentificationApi(api, 'createBrowserIdentification')
  assertInspect(inspect, 'createBrowserIdentification')
  const storage = options.storage ?? (globalThis as { sessionStorage?: Storage }).sessionStorage
  if (!storage || typeof storage.getItem !== 'function') throw new TypeError('createBrowserIdentification: storage must be a Web Storage object')
  const navigate =
    options.navigate ??
    ((url: string) => {
      globalThis.location.assign(url)
    })
  if (typeof navigate !== 'function') throw new TypeError('createBrowserIdentification: navigate must be a function')
  const rawInput: Record<string, unknown> = { ...options }
  for (const k of OWN_OPTIONS) delete rawInput[k]
  const input = { ...(rawInput as unknown as IdentificationInput) }
  input.initiate = browserInitiateFields(input.initiate)
  const resolved = resolveInput(input) // TypeError naming the field
  const key = options.key ?? `10npay-identification:${resolved.userType}:${resolved.userId}`
  if (typeof key !== 'string' || key === '') throw new TypeError('createBrowserIdentification: key must be a non-empty string')
  const clock = options.clock ?? systemClock

  const lockMode =
    options.lock ?? ((globalThis as { navigator?: { locks?: unknown } }).navigator?.locks ? 'web-locks' : 'lease')
  let lock: TabLock | undefined
  if (lockMode === 'web-locks') {
    const locks = (globalThis as { navigator?: { locks?: Parameters<typeof createWebLock>[1] } }).navigator?.locks
    if (!locks) throw new TypeError('createBrowserIdentification: lock "web-locks" needs navigator.locks')
    lock = createWebLock(`${key}:lock`, locks)
  } else if (lockMode === 'lease') {
    const leaseStorage = options.leaseStorage ?? (globalThis as { localStorage?: Storage }).localStorage
    if (leaseStorage) lock = createLeaseLock(`${key}:lease`, { storage: leaseStorage, clock })
  }

  const warn = (m: string) => {
    try {
      onWarning?.(m)
    } catch {
      /* an observer must not break the flow */
    }
  }
  const machine = identificationMachine.provide({
    actors: createIdentificationWorkers({
      api,
      clock,
      ...(options.random && { random: options.random }),
      ...(lock && { gate: () => lock!.acquire() }),
    }),
  })

  /** The last value written, so that a restart of the actor works even where storage failed. */
  let lastSaved: unknown
  const loadStored = (): Snapshot<unknown> | undefined => {
    let raw: string | null = null
    try {
      raw = storage.getItem(key)
    } catch (err) {
      warn(`Could not read the stored flow (${(err as Error).message}).`)
    }
    const value = raw === null ? lastSaved : safeParse(raw)
    if (value === undefined) return undefined
    const r = restoreFlow(value, resolved.userId, resolved.userType)
    if ('snapshot' in r) return r.snapshot
    warn(`The stored flow was rejected (${r.rejected}); starting afresh.`)
    try {
      storage.removeItem(key)
    } catch {
      /* ignore */
    }
    return undefined
  }
  const safeParse = (raw: string): unknown => {
    try {
      return JSON.parse(raw)
    } catch {
      return { corrupt: true }
    }
  }

  const listeners = new Set<(s: IdentificationSnapshot) => void>()
  let host: FlowHost | undefined
  let restoredFromStorage = false

  const go = (url: string | null) => {
    // The chart only keeps URLs that passed isSafeUrl; checked again right before use.
    if (url && isSafeUrl(url, resolved)) navigate(url)
  }

  const boot = (): FlowHost => {
    if (host) return host
    const restored = loadStored()
    restoredFromStorage = restored !== undefined
    const h: FlowHost = createFlowHost({
      machine,
      input,
      clock,
      autoContinue: options.autoContinue ?? false,
      ...(restored && { snapshot: restored }),
      ...(inspect && { inspect }),
      // Stored after every transition and before any navigation: the redirect page finds it.
      onSnapshot: (s) => {
        const value = h.persisted(clock.now())
        lastSaved = value
        try {
          storage.setItem(key, JSON.stringify(value))
        } catch (err) {
          warn(`Could not store the flow (${(err as Error).message}); it will not survive a page load.`)
        }
        for (const fn of listeners) {
          try {
            fn(s)
          } catch {
            /* a throwing listener must not break the flow */
          }
        }
      },
      onEffect: (effect) => {
        if (effect.type === 'open') go(effect.url)
        else if (effect.outcome.type === 'finalized') lock?.release()
      },
      onError: (err) => warn(`The flow stopped on an error: ${(err as Error).message}`),
    })
    host = h
    // A restored state is where the user already is: no navigation for it (open() does it on demand).
    h.start()
    return h
  }

  const send = (e: HostEvent) => boot().send(e)

  const restart = () => {
    if (boot().state === 'finalized') clear()
    send({ type: 'RESTART' })
  }
  const clear = () => {
    host?.stop()
    host = undefined
    lastSaved = undefined
    try {
      storage.removeItem(key)
    } catch {
      /* ignore */
    }
    boot()
  }

  return {
    get actor() {
      return boot().actor
    },
    getSnapshot: () => boot().getSnapshot(),
    subscribe(fn) {
      boot()
      listeners.add(fn)
      return () => void listeners.delete(fn)
    },
    start() {
      const h = boot()
      if (!h.send({ type: 'START' }) && h.getSnapshot().hasTag('ended')) restart()
    },
    resume({ outcome, bTrustAppCallBackId }) {
      const h = boot()
      if (h.state === 'idle' && !restoredFromStorage) {
        h.send({ type: 'LOST' })
        return
      }
      // Only where the chart waits for a redirect; anywhere else (the redirect page reloaded
      // after resume()) the flow goes on as stored.
      if (h.state !== 'idle') h.send({ type: 'REDIRECT', outcome, ...(bTrustAppCallBackId != null && { bTrustAppCallBackId }) })
    },
    continue: () => void send({ type: 'CONTINUE' }),
    retry: () => void send({ type: 'RETRY' }),
    restart,
    cancel: () => void send({ type: 'CANCEL' }),
    open() {
      const s = boot().getSnapshot()
      const top = topState(s.value)
      if (top === 'identifying') go(s.context.identificationUrl)
      else if (top === 'signing') go(s.context.signingUrl)
    },
    stop() {
      host?.stop()
      host = undefined
      lock?.release()
    },
    clear,
    get state() {
      return boot().state
    },
    get failure() {
      return boot().getSnapshot().context.failure
    },
    get result() {
      return boot().getSnapshot().context.result
    },
  }
}
