import { createActor, type Actor, type Snapshot, type SnapshotFrom } from 'xstate'
import type { Clock } from '../machine/clock.js'
import type { HostEvent } from '../machine/events.js'
import type { IdentificationMachine } from '../machine/identificationMachine.js'
import type { InspectOption } from '../machine/inspect.js'
import { topState, unwrapSnapshot, wrapSnapshot, type PersistedFlow } from '../machine/persistence.js'
import type { Failure, IdentificationInput, IdentificationState, IdentificationView, UserType } from '../machine/types.js'

/** A snapshot of the identification chart. */
export type IdentificationSnapshot = SnapshotFrom<IdentificationMachine>

/** How a flow ended. */
export type IdentificationOutcome =
  | { type: 'finalized'; correlationId: string; individualId: number }
  | { type: 'failed'; failure: Failure }

/**
 * What the host must do, once per entry of a state: open a provider URL for the user
 * (`identifying`, `signing`; the URL already passed `isSafeUrl`), or report the end of the
 * flow (`finalized`, `failed`).
 */
export type HostEffect =
  | { type: 'open'; step: 'identification' | 'signing'; url: string }
  | { type: 'ended'; outcome: IdentificationOutcome }

/** Options of {@link createFlowHost}. */
export interface FlowHostOptions {
  /** The chart with its workers provided (`identificationMachine.provide({ actors })`). */
  machine: IdentificationMachine
  /** The chart's input (ignored by XState when a snapshot is restored). */
  input: IdentificationInput
  /** A snapshot to go on from, already checked with {@link restoreFlow}. */
  snapshot?: Snapshot<unknown>
  /** The time source of the actor (delays; the workers have their own). */
  clock?: Clock
  /** XState inspection: a function or an observer. */
  inspect?: InspectOption
  /** Send `CONTINUE` as soon as `phaseA` is entered (the signing URL is known). @default false */
  autoContinue?: boolean
  /**
   * Called with every snapshot, before the effects of entering its state: persist here, so that
   * a navigation that follows never outruns the stored flow. `entered`: the top-level state
   * changed.
   */
  onSnapshot?: (snapshot: IdentificationSnapshot, change: { entered: boolean; state: IdentificationState }) => void
  /** Called once per entry of a state that needs the host (see {@link HostEffect}). */
  onEffect?: (effect: HostEffect, snapshot: IdentificationSnapshot) => void
  /** The actor stopped on an error (a bug: the chart's own errors are states). */
  onError?: (error: unknown) => void
}

/** One flow's actor with the host logic every adapter shares. */
export interface FlowHost {
  /** The XState actor. */
  readonly actor: Actor<IdentificationMachine>
  /** The current snapshot. */
  getSnapshot(): IdentificationSnapshot
  /** The top-level state. */
  readonly state: IdentificationState
  /** Whether the current state accepts `event` (the chart decides, `snapshot.can`). */
  can(event: HostEvent): boolean
  /** Sends a host event when the current state accepts it; returns whether it did. */
  send(event: HostEvent): boolean
  /** Starts the actor (the restored state's effects are not replayed: see {@link FlowHost.replay}). */
  start(): void
  /** Emits the effects of the current state as if it had just been entered (a runner that resumes). */
  replay(): void
  /** Stops the actor and its workers. */
  stop(): void
  /** The current snapshot, persisted, in its envelope (plain JSON). */
  persisted(savedAt: number): PersistedFlow
}

/** Where a snapshot stands, as a discriminated union on `state` (see {@link IdentificationView}). */
export function viewOf(snapshot: IdentificationSnapshot): IdentificationView {
  const state = topState(snapshot.value)
  if (state === 'finalized' && snapshot.context.result) return { state, result: snapshot.context.result, failure: null }
  if (state === 'failed' && snapshot.context.failure) return { state, failure: snapshot.context.failure, result: null }
  return { state: state as Exclude<IdentificationState, 'finalized' | 'failed'>, failure: null, result: null }
}

/** The outcome of an ended snapshot (`finalized` or `failed`), else `undefined`. */
export function outcomeOf(snapshot: IdentificationSnapshot): IdentificationOutcome | undefined {
  const top = topState(snapshot.value)
  if (top === 'finalized' && snapshot.context.result) return { type: 'finalized', ...snapshot.context.result }
  if (top === 'failed' && snapshot.context.failure) return { type: 'failed', failure: snapshot.context.failure }
  return undefined
}

/**
 * Checks a stored value before it is restored (envelope, version, user, state).
 * @returns the snapshot, or why it cannot be used (the caller discards it and starts afresh)
 */
export function restoreFlow(stored: unknown, userId: number, userType: UserType): { snapshot: Snapshot<unknown> } | { rejected: string } {
  try {
    return { snapshot: unwrapSnapshot(stored, userId, userType) }
  } catch (err) {
    return { rejected: err instanceof Error ? err.message : String(err) }
  }
}

/**
 * Runs one flow's actor with what every host needs and writes only once: restore, a hook to
 * persist after every transition, the host effects once per state entry, and `CONTINUE` on
 * entering `phaseA` when asked. Which events a state accepts comes from the chart
 * (`snapshot.can`), which states need the host from its tags.
 */
export function createFlowHost(options: FlowHostOptions): FlowHost {
  const { machine, onSnapshot, onEffect, onError, autoContinue = false } = options
  const actor = createActor(machine, {
    input: options.input,
    ...(options.clock && { clock: options.clock }),
    ...(options.snapshot && { snapshot: options.snapshot as never }),
    ...(options.inspect && { inspect: options.inspect as never }),
  })
  let last = topState(actor.getSnapshot().value)
  let stopped = false

  const effects = (s: IdentificationSnapshot) => {
    const state = topState(s.value)
    if (state === 'phaseA' && autoContinue) actor.send({ type: 'CONTINUE' })
    if (!onEffect) return
    if (state === 'identifying' && s.context.identificationUrl) onEffect({ type: 'open', step: 'identification', url: s.context.identificationUrl }, s)
    else if (state === 'signing' && s.context.signingUrl) onEffect({ type: 'open', step: 'signing', url: s.context.signingUrl }, s)
    else if (s.hasTag('ended')) {
      const outcome = outcomeOf(s)
      if (outcome) onEffect({ type: 'ended', outcome }, s)
    }
  }

  actor.subscribe({
    next: (s) => {
      if (stopped) return
      const state = topState(s.value)
      const entered = state !== last
      last = state
      onSnapshot?.(s, { entered, state })
      if (entered) effects(s)
    },
    error: (err) => onError?.(err),
  })

  return {
    actor,
    getSnapshot: () => actor.getSnapshot(),
    get state() {
      return topState(actor.getSnapshot().value)
    },
    can: (event) => actor.getSnapshot().can(event),
    send(event) {
      if (stopped || !actor.getSnapshot().can(event)) return false
      actor.send(event)
      return true
    },
    start: () => void actor.start(),
    replay: () => effects(actor.getSnapshot()),
    stop() {
      stopped = true
      actor.stop()
    },
    persisted(savedAt) {
      const s = actor.getSnapshot()
      return wrapSnapshot(actor.getPersistedSnapshot() as Snapshot<unknown>, s.context.userId, s.context.userType, savedAt)
    },
  }
}
