import type { FlowView } from './types.js'

/** Thrown for an unknown flow id. */
export class FlowNotFoundError extends Error {
  override readonly name = 'FlowNotFoundError'
}

/**
 * The flow's state does not accept the action (`continue` outside `phaseA`, `retry` of a
 * failure that cannot be retried, …). `view` is the flow as it is.
 */
export class FlowActionError extends Error {
  override readonly name = 'FlowActionError'
  constructor(
    readonly action: string,
    readonly view: FlowView,
  ) {
    super(`The identification flow ${view.id} is in ${view.state}, which does not accept ${action}`)
  }
}

/** A flow would become the user's second unfinished one (the store refuses it). */
export class UnfinishedFlowExistsError extends Error {
  override readonly name = 'UnfinishedFlowExistsError'
  constructor(
    readonly userType: number,
    readonly userId: number,
    readonly flowId: string,
  ) {
    super(`user ${userType}:${userId} has another unfinished identification flow (${flowId})`)
  }
}

/**
 * A dependency of the service (the flow store, Redis) failed or did not answer in time. The
 * message names it; the flow stays as it was stored, and a later call succeeds once the
 * dependency is back.
 */
export class DependencyError extends Error {
  override readonly name = 'DependencyError'
  constructor(
    /** e.g. `PostgreSQL`, `SQLite`, `Redis`. */
    readonly dependency: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency}: ${message}`, options?.cause === undefined ? undefined : { cause: plain(options.cause) })
  }
}

/** The service was closed. */
export class ServiceClosedError extends Error {
  override readonly name = 'ServiceClosedError'
  constructor(call: string) {
    super(`identification service: ${call} after close()`)
  }
}

/** An error reduced to `{ name, message, code }`: driver errors can carry connection strings and query parameters. */
function plain(err: unknown): { name: string; message: string; code?: string } {
  const e = err as { name?: unknown; message?: unknown; code?: unknown }
  const out: { name: string; message: string; code?: string } = {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message: typeof e?.message === 'string' ? e.message.replace(/\/\/[^@/\s]*@/g, '//[redacted]@') : String(err),
  }
  if (typeof e?.code === 'string') out.code = e.code
  return out
}
