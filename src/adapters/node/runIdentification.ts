import type { Snapshot } from 'xstate'
import { assertInspect, type InspectOption } from '../../machine/inspect.js'
import { identificationMachine } from '../../machine/identificationMachine.js'
import { createFlowHost, restoreFlow, type FlowHost, type IdentificationOutcome, type IdentificationSnapshot } from '../../host/flowHost.js'
import { resolveInput } from '../../machine/input.js'
import { systemClock, type Clock } from '../../machine/clock.js'
import { assertIdentificationApi, createIdentificationWorkers } from '../../machine/workers.js'
import type { IdentificationApi, IdentificationInput } from '../../machine/types.js'
import type { SnapshotStore } from './snapshotStore.js'

/** What the runner asks the host to do: open a URL for the user. */
export interface IdentificationAction {
  type: 'open-identification' | 'open-signing'
  /** Already checked with `isSafeUrl` (and `allowedHosts`). */
  url: string
}

/** How a step came back: the provider redirected to the Success or the Fail URL. */
export type ActionOutcome = 'success' | 'fail'

export type { IdentificationOutcome, IdentificationSnapshot }

/** Options of {@link runIdentification}: the chart's input plus the runner's own. */
export interface RunIdentificationOptions extends IdentificationInput {
  /** The provider's API: `createHttpApi(...)`, or any object with the same three methods. */
  api: IdentificationApi
  /**
   * Opens a URL for the user and tells how the redirect came back. Called on entering
   * `identifying` and `signing`; a throw or any other answer counts as `'fail'`.
   */
  onAction: (action: IdentificationAction) => ActionOutcome | Promise<ActionOutcome>
  /**
   * The user was just redirected back with Success from this step: a stored flow waiting in
   * that step goes on polling; with no stored flow, polling starts for that step (a flow
   * started elsewhere) instead of a new initiate.
   */
  resumeAfter?: 'identification' | 'signing'
  /**
   * Discard any stored flow and initiate with `isRestartIdentification: true`.
   * @default false
   */
  restart?: boolean
  /** Persists the snapshot after every transition, and resumes from it when one exists. */
  store?: SnapshotStore
  /**
   * The key in `store`.
   * @default `10npay-identification:${userType}:${userId}`
   */
  key?: string
  /** Aborts the flow: the promise rejects with the signal's reason; no request or timer is left. */
  signal?: AbortSignal
  /** Called with every snapshot (after it is persisted, when a store is given). */
  onSnapshot?: (snapshot: IdentificationSnapshot) => void
  /**
   * XState inspection events (transitions, actors, events), for logging and Stately's inspector:
   * a function, or an observer such as `@statelyai/inspect`'s `inspector.inspect`.
   */
  inspect?: InspectOption
  /** Called when a stored value could not be restored and the flow started afresh. */
  onWarning?: (message: string) => void
  /** The time source (XState's `SimulatedClock` in tests). @default the system clock */
  clock?: Clock
  /** Random numbers in `[0, 1)` for jitter. @default Math.random */
  random?: () => number
}

const RUNNER_OPTIONS = [
  'api',
  'onAction',
  'resumeAfter',
  'restart',
  'store',
  'key',
  'signal',
  'onSnapshot',
  'inspect',
  'onWarning',
  'clock',
  'random',
] as const

/** Splits the runner's options from the chart's input and validates the runner's own. */
export function splitRunOptions(options: RunIdentificationOptions): IdentificationInput {
  if (!options || typeof options !== 'object') throw new TypeError('runIdentification: options are required')
  const { api, onAction, resumeAfter, store, key, signal, onSnapshot, inspect, onWarning, clock, random, restart } = options
  assertIdentificationApi(api, 'runIdentification')
  if (typeof onAction !== 'function') throw new TypeError('runIdentification: onAction must be a function')
  if (resumeAfter !== undefined && resumeAfter !== 'identification' && resumeAfter !== 'signing') {
    throw new TypeError(`runIdentification: resumeAfter must be 'identification' or 'signing' (got ${JSON.stringify(resumeAfter)})`)
  }
  if (restart !== undefined && typeof restart !== 'boolean') throw new TypeError('runIdentification: restart must be a boolean')
  if (store !== undefined && (!store || ['get', 'set', 'delete'].some((m) => typeof (store as never)[m] !== 'function'))) {
    throw new TypeError('runIdentification: store must have get, set and delete methods')
  }
  if (key !== undefined && (typeof key !== 'string' || key === '')) throw new TypeError('runIdentification: key must be a non-empty string')
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('runIdentification: signal must be an AbortSignal')
  assertInspect(inspect, 'runIdentification')
  for (const [name, fn] of [['onSnapshot', onSnapshot], ['onWarning', onWarning], ['random', random]] as const) {
    if (fn !== undefined && typeof fn !== 'function') throw new TypeError(`runIdentification: ${name} must be a function`)
  }
  if (clock !== undefined && (typeof clock?.now !== 'function' || typeof clock.setTimeout !== 'function')) {
    throw new TypeError('runIdentification: clock must have now, setTimeout and clearTimeout')
  }
  const input: Record<string, unknown> = { ...options }
  for (const k of RUNNER_OPTIONS) delete input[k]
  return input as unknown as IdentificationInput
}

/**
 * Runs one identification flow to its end in Node: initiate, open the ID-capture URL through
 * `onAction`, poll phase A, open the signing URL, poll phase B, finalize.
 *
 * Resolves with `finalized` (the ids) or `failed` (the failure; a stored flow that already
 * ended resolves at once and sends nothing). Rejects only on invalid options (`TypeError`
 * naming the field), on abort (the signal's reason) or when the store fails.
 *
 * @example
 * const outcome = await runIdentification({
 *   api, userId: 42, userType: 0,
 *   onAction: async ({ url }) => { console.log('Open', url); return waitForRedirect() },
 * })
 */
export async function runIdentification(options: RunIdentificationOptions): Promise<IdentificationOutcome> {
  const machineInput = splitRunOptions(options)
  const resolved = resolveInput(machineInput) // throws TypeError naming the field
  const { api, onAction, resumeAfter, store, signal, onSnapshot, inspect, onWarning } = options
  const clock = options.clock ?? systemClock
  const key = options.key ?? `10npay-identification:${resolved.userType}:${resolved.userId}`
  signal?.throwIfAborted()

  let restored: Snapshot<unknown> | undefined
  if (store) {
    if (options.restart) await store.delete(key)
    else {
      let stored: unknown
      try {
        stored = await store.get(key)
      } catch (err) {
        onWarning?.(`The stored flow under "${key}" could not be read (${(err as Error).message}); starting afresh.`)
      }
      if (stored !== undefined) {
        const r = restoreFlow(stored, resolved.userId, resolved.userType)
        if ('snapshot' in r) restored = r.snapshot
        else {
          onWarning?.(`The stored flow under "${key}" was rejected (${r.rejected}); starting afresh.`)
          await store.delete(key)
        }
      }
    }
    signal?.throwIfAborted()
  }

  const machine = identificationMachine.provide({
    actors: createIdentificationWorkers({ api, clock, ...(options.random && { random: options.random }) }),
  })

  return new Promise<IdentificationOutcome>((resolve, reject) => {
    let settled = false
    let writes: Promise<void> = Promise.resolve()
    let writeError: unknown

    const settle = (then: () => void) => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      host.stop()
      // Snapshots already handed to the store are written before the promise settles: nothing is lost.
      writes.then(then, then)
    }
    const onAbort = () => settle(() => reject(signal!.reason))

    /** Opens a step's URL through onAction; its answer is the redirect (a throw or anything else: Fail). */
    const open = (step: 'identification' | 'signing', url: string) => {
      Promise.resolve()
        .then(() => onAction({ type: step === 'identification' ? 'open-identification' : 'open-signing', url }))
        .then(
          (o) => (o === 'success' ? 'success' : 'fail'),
          () => 'fail' as const,
        )
        .then((outcome) => {
          if (!settled && host.state === (step === 'identification' ? 'identifying' : 'signing')) host.send({ type: 'REDIRECT', outcome, step })
        })
    }

    let host: FlowHost
    try {
      host = createFlowHost({
        machine,
        input: machineInput,
        clock,
        autoContinue: true,
        ...(restored && { snapshot: restored }),
        ...(inspect && { inspect }),
        onSnapshot: (snapshot) => {
          if (settled) return
          if (store) {
            const value = host.persisted(clock.now())
            const write = writes.then(() => store.set(key, value))
            writes = write.catch(() => {})
            write.catch((err: unknown) => {
              writeError ??= err
              settle(() => reject(writeError))
            })
          }
          try {
            onSnapshot?.(snapshot)
          } catch {
            /* a throwing observer must not break the flow */
          }
        },
        onEffect: (effect) => {
          if (settled) return
          if (effect.type === 'open') open(effect.step, effect.url)
          else settle(() => (writeError === undefined ? resolve(effect.outcome) : reject(writeError)))
        },
        onError: (err) => settle(() => reject(err)),
      })
    } catch (err) {
      reject(err)
      return
    }
    signal?.addEventListener('abort', onAbort, { once: true })

    host.start()
    if (settled) return
    const state = host.state
    if (state === 'idle') {
      if (options.restart) host.send({ type: 'RESTART' })
      else if (resumeAfter) host.send({ type: 'REDIRECT', outcome: 'success', step: resumeAfter })
      else host.send({ type: 'START' })
    } else if ((state === 'identifying' && resumeAfter === 'identification') || (state === 'signing' && resumeAfter === 'signing')) {
      host.send({ type: 'REDIRECT', outcome: 'success', step: resumeAfter })
    } else host.replay()
  })
}
