import type { RequestOperation, RequestResult } from '../../machine/workers.js'
import type { FailurePhase, UserType } from '../../machine/types.js'
import type { FlowCounts, FlowView } from './types.js'

/**
 * What the identification service tells a telemetry backend. `createOpenTelemetry()`
 * (`10npay-identification/otel`) implements it on `@opentelemetry/api`; with no OpenTelemetry
 * SDK registered every call is a no-op. Nothing given to it holds a token, a secret or a user
 * id: flows are named by their id, users not at all.
 */
export interface ServiceTelemetry {
  /**
   * A flow was created: the root of its trace. Returns the trace context to keep with the flow
   * (a W3C `traceparent`), so that every later phase — on this replica or another, after
   * redirects and restarts — joins the same trace.
   */
  flowCreated(flow: { id: string; userType: UserType }): string | undefined
  /** A phase of the flow runs on this replica, until the returned handle's `end`. */
  phase(flow: { id: string; userType: UserType; trace: string | undefined }, phase: FailurePhase): PhaseTelemetry
  /** The flow reached `finalized` or `failed` (told once, by the replica that stored it). */
  flowEnded(view: FlowView, trace: string | undefined): void
  /** How to read the counts of working and parked flows for gauges (the store's). */
  observeCounts?(read: () => Promise<FlowCounts>): void
}

/** One phase of one flow on one replica. */
export interface PhaseTelemetry {
  /** A provider request of the phase starts; the returned function is told how it ended. */
  request(operation: RequestOperation): (result: RequestResult) => void
  /**
   * The phase is over here: `next` (the flow went on to another state), `parked` (it waits for
   * a person), `ended`, or `handed-over` (the lease was lost, or the service closed).
   */
  end(how: 'next' | 'parked' | 'ended' | 'handed-over'): void
}
