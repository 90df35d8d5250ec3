import { createActor, type Snapshot, type SnapshotFrom } from 'xstate'
import { assertInspect, type InspectOption } from '../../machine/inspect.js'
import { identificationMachine, type IdentificationMachine } from '../../machine/identificationMachine.js'
import { resolveInput } from '../../machine/input.js'
import { topState, unwrapSnapshot, wrapSnapshot } from '../../machine/persistence.js'
import { systemClock, type Clock } from '../../machine/clock.js'
import { assertIdentificationApi, createIdentificationWorkers } from '../../machine/workers.js'
import type { Failure, IdentificationApi, IdentificationInput } from '../../machine/types.js'
import type { SnapshotStore } from './snapshotStore.js'

/** What the runner asks the host to do: open a URL for the user. */
export interface IdentificationAction {
  type: 'open-identification' | 'open-signing'
  /** Already checked with `isSafeUrl` (and `allowedHosts`). */
  url: string
}

/** How a step came back: the provider redirected to the Success or the Fail URL. */
export type ActionOutcome = 'success' | 'fail'

/** The result of {@link runIdentification}. */
export type IdentificationOutcome =
  | { type: 'finalized'; correlationId: string; individualId: number }
  | { type: 'failed'; failure: Failure }

/** A snapshot of the identification chart. */
export type IdentificationSnapshot = SnapshotFrom<IdentificationMachine>

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
        try {
          restored = unwrapSnapshot(stored, resolved.userId, resolved.userType)
        } catch (err) {
          onWarning?.(`The stored flow under "${key}" was rejected (${(err as Error).message}); starting afresh.`)
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
    let actor: ReturnType<typeof createActor<typeof machine>>
    try {
      actor = createActor(machine, {
        input: machineInput,
        clock,
        ...(restored && { snapshot: restored as never }),
        ...(inspect && { inspect }),
      })
    } catch (err) {
      reject(err)
      return
    }
    let settled = false
    let writes: Promise<void> = Promise.resolve()
    let writeError: unknown
    let handled = '' // the step whose action was started, so that it runs once per entry
    let lastTop = ''

    const cleanup = () => {
      settled = true
      signal?.removeEventListener('abort', onAbort)
      sub.unsubscribe()
      actor.stop()
    }
    const finish = (outcome: IdentificationOutcome) => {
      if (settled) return
      cleanup()
      writes.then(() => (writeError === undefined ? resolve(outcome) : reject(writeError)))
    }
    const fail = (err: unknown) => {
      if (settled) return
      cleanup()
      // Snapshots already handed to the store are written before the promise settles: nothing is lost.
      writes.then(
        () => reject(err),
        () => reject(err),
      )
    }
    const onAbort = () => fail(signal!.reason)
    signal?.addEventListener('abort', onAbort, { once: true })

    const persist = () => {
      if (!store) return
      const value = wrapSnapshot(actor.getPersistedSnapshot() as Snapshot<unknown>, resolved.userId, resolved.userType, clock.now())
      const write = writes.then(() => store.set(key, value))
      writes = write.catch(() => {})
      write.catch((err: unknown) => {
        writeError ??= err
        fail(err)
      })
    }

    const openStep = (step: 'identifying' | 'signing', url: string) => {
      const type = step === 'identifying' ? 'open-identification' : 'open-signing'
      const redirectStep = step === 'identifying' ? 'identification' : 'signing'
      Promise.resolve()
        .then(() => onAction({ type, url }))
        .then(
          (o) => (o === 'success' ? 'success' : 'fail'),
          () => 'fail' as const,
        )
        .then((outcome) => {
          if (settled || topState(actor.getSnapshot().value) !== step) return
          actor.send({ type: 'REDIRECT', outcome, step: redirectStep })
        })
    }

    const react = (snapshot: IdentificationSnapshot) => {
      if (settled) return
      const top = topState(snapshot.value)
      if (top !== lastTop) {
        lastTop = top
        handled = ''
      }
      if (top === 'finalized') return finish({ type: 'finalized', ...snapshot.context.result! })
      if (top === 'failed') return finish({ type: 'failed', failure: snapshot.context.failure! })
      if (handled === top) return
      if (top === 'phaseA') {
        handled = top
        actor.send({ type: 'CONTINUE' })
      } else if (top === 'identifying' || top === 'signing') {
        handled = top
        const url = top === 'identifying' ? snapshot.context.identificationUrl : snapshot.context.signingUrl
        openStep(top, url!)
      }
    }

    const sub = actor.subscribe({
      next: (snapshot) => {
        if (settled) return
        persist()
        try {
          onSnapshot?.(snapshot)
        } catch {
          /* a throwing observer must not break the flow */
        }
        react(snapshot)
      },
      error: (err) => fail(err),
    })

    actor.start()
    if (settled) return
    const top = topState(actor.getSnapshot().value)
    if (top === 'idle') {
      if (options.restart) actor.send({ type: 'RESTART' })
      else if (resumeAfter) actor.send({ type: 'REDIRECT', outcome: 'success', step: resumeAfter })
      else actor.send({ type: 'START' })
    } else if (
      (top === 'identifying' && resumeAfter === 'identification') ||
      (top === 'signing' && resumeAfter === 'signing')
    ) {
      handled = top
      actor.send({ type: 'REDIRECT', outcome: 'success', step: resumeAfter })
    } else {
      react(actor.getSnapshot())
    }
  })
}
