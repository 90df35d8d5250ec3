import type { InspectionEvent, Observer } from 'xstate'

/**
 * Where XState's inspection events go: a function, or an observer with `next` (what
 * `@statelyai/inspect`'s `inspector.inspect` is), as `createActor`'s own `inspect` takes.
 */
export type InspectOption = ((event: InspectionEvent) => void) | Observer<InspectionEvent>

/**
 * Checks an `inspect` option.
 * @throws TypeError naming the caller and the option
 */
export function assertInspect(inspect: unknown, caller: string): asserts inspect is InspectOption | undefined {
  if (inspect === undefined || typeof inspect === 'function') return
  if (inspect !== null && typeof inspect === 'object' && typeof (inspect as { next?: unknown }).next === 'function') return
  throw new TypeError(`${caller}: inspect must be a function or an observer with a next method (such as @statelyai/inspect's inspector.inspect)`)
}
