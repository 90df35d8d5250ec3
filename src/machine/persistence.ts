import type { Snapshot } from 'xstate'
import { identificationMachine } from './identificationMachine.js'
import type { IdentificationState } from './types.js'

/** The version of the persisted envelope; bumped when the chart changes incompatibly (2: worker events carry their phase, `context.step`, confirming polls). */
export const SNAPSHOT_VERSION = 2
const FORMAT = '10npay-identification'

/** What adapters store: the persisted XState snapshot in a versioned envelope. Plain JSON. */
export interface PersistedFlow {
  format: typeof FORMAT
  version: number
  userId: number
  userType: 0 | 1
  savedAt: number
  snapshot: Snapshot<unknown>
  /** The flow's trace context (a W3C `traceparent`), when a host traces flows. */
  trace?: string
}

/** Wraps a persisted snapshot for storage. */
export function wrapSnapshot(snapshot: Snapshot<unknown>, userId: number, userType: 0 | 1, savedAt: number): PersistedFlow {
  return { format: FORMAT, version: SNAPSHOT_VERSION, userId, userType, savedAt, snapshot }
}

/** Why a stored value could not be restored. */
export class SnapshotRejectedError extends Error {
  override readonly name = 'SnapshotRejectedError'
}

/** The chart's top-level states, read from the chart. */
const STATES = new Set(Object.keys(identificationMachine.root.states))

/**
 * Checks a stored value before it is restored: the envelope, the version, the user and the
 * snapshot's top-level state.
 * @throws SnapshotRejectedError saying what is wrong
 */
export function unwrapSnapshot(value: unknown, userId: number, userType: 0 | 1): Snapshot<unknown> {
  const v = value as Partial<PersistedFlow> | null
  if (!v || typeof v !== 'object' || v.format !== FORMAT) throw new SnapshotRejectedError('stored value is not an identification snapshot')
  if (v.version !== SNAPSHOT_VERSION) {
    throw new SnapshotRejectedError(`stored snapshot has version ${String(v.version)}, this library reads version ${SNAPSHOT_VERSION}`)
  }
  if (v.userId !== userId || v.userType !== userType) {
    throw new SnapshotRejectedError('stored snapshot belongs to another user')
  }
  const s = v.snapshot as { value?: unknown; context?: { userId?: unknown; userType?: unknown }; status?: unknown } | undefined
  const top = typeof s?.value === 'string' ? s.value : s?.value && typeof s.value === 'object' ? Object.keys(s.value)[0] : undefined
  if (!s || typeof top !== 'string' || !STATES.has(top) || !s.context || s.context.userId !== userId || s.context.userType !== userType) {
    throw new SnapshotRejectedError('stored snapshot is malformed')
  }
  return s as Snapshot<unknown>
}

/** The top-level state name of a snapshot value (`{ pollingA: 'running' }` → `'pollingA'`). */
export function topState(value: unknown): IdentificationState {
  if (typeof value === 'string') return value as IdentificationState
  if (value && typeof value === 'object') return (Object.keys(value)[0] ?? '') as IdentificationState
  return '' as IdentificationState
}
