import { fromCallback } from 'xstate'
import type { Clock } from './clock.js'
import { systemClock } from './clock.js'
import type { WorkerEvent } from './events.js'
import { nextPollDelay } from './schedule.js'
import { classifyStatus, normalizeStatus } from './status.js'
import type { ErrorInfo, ErrorKind, FailurePhase, FinalizerInput, IdentificationApi, InitiatorInput, PollerInput, StepInput, UserType } from './types.js'

/** What the workers need from the host. */
export interface WorkerDeps {
  /** The provider's API (`createHttpApi(...)` or a fake). */
  api: IdentificationApi
  /** The time source. @default systemClock */
  clock?: Clock
  /** Random numbers in `[0, 1)` for jitter. @default Math.random */
  random?: () => number
  /**
   * Awaited before a worker sends anything (the browser adapter waits here until this tab
   * holds the flow's lock, so that two tabs never poll the same flow).
   */
  gate?: () => Promise<void>
  /**
   * Called before every request a worker sends, with the flow's user; a throw stops that
   * request (the service checks here that it still holds its lease on the flow).
   */
  beforeRequest?: (flow: { userId: number; userType: UserType }) => void
  /**
   * Told when a worker sends a request (telemetry, flow history); the function it returns, if
   * any, is told how the request ended. Called on the hot path: keep it cheap.
   */
  onRequest?: (flow: { userId: number; userType: UserType; phase: FailurePhase }, operation: RequestOperation) => ((result: RequestResult) => void) | void
}

/** The provider calls, as telemetry and histories name them. */
export type RequestOperation = 'initiate' | 'status' | 'finalize'

/** How one request of a worker ended. */
export interface RequestResult {
  /** On the worker's clock. */
  durationMs: number
  /** The error, when it failed (`httpStatus` when the provider answered). */
  error?: ErrorInfo
  /** The `videoIdentificationStatus` of a status or initiate answer. */
  providerStatus?: string | null
}

/**
 * Checks that `api` has the three methods of {@link IdentificationApi}.
 * @throws TypeError naming the caller and the option
 */
export function assertIdentificationApi(api: unknown, caller: string): asserts api is IdentificationApi {
  const a = api as Record<string, unknown> | null
  if (!a || typeof a !== 'object' || !['initiate', 'getStatus', 'finalize'].every((m) => typeof a[m] === 'function')) {
    throw new TypeError(`${caller}: api must have initiate, getStatus and finalize methods (createHttpApi(...))`)
  }
}

const KINDS = new Set<ErrorKind>(['unauthorized', 'rejected', 'transient', 'bad-response', 'network', 'timeout'])

/**
 * Reduces any thrown value to the plain JSON the chart keeps. A `TenNPayError` keeps its kind
 * and status; anything else (a bug in a custom API) counts as a retryable `network` error so
 * that it is retried until the deadline and then reported, never swallowed.
 */
export function toErrorInfo(err: unknown): { info: ErrorInfo; retryable: boolean; retryAfterMs?: number } {
  const e = err as { kind?: unknown; httpStatus?: unknown; message?: unknown; retryable?: unknown; retryAfterMs?: unknown }
  const message = typeof e?.message === 'string' ? e.message : String(err)
  if (e && typeof e.kind === 'string' && KINDS.has(e.kind as ErrorKind)) {
    const info: ErrorInfo = { kind: e.kind as ErrorKind, message }
    if (typeof e.httpStatus === 'number') info.httpStatus = e.httpStatus
    const retryable = typeof e.retryable === 'boolean' ? e.retryable : e.kind !== 'unauthorized' && e.kind !== 'rejected'
    return typeof e.retryAfterMs === 'number' ? { info, retryable, retryAfterMs: e.retryAfterMs } : { info, retryable }
  }
  return { info: { kind: 'network', message }, retryable: true }
}

/**
 * What one attempt decided: `'again'` keeps looping (a pending status that did not
 * change); an event ends this worker (the chart moves on or re-enters the step).
 */
type Outcome = WorkerEvent | 'again'

/**
 * One worker run: arms the deadline if the step has none yet, then attempts at the stored
 * absolute times, retrying retryable errors on the poll schedule until the deadline. One
 * `AbortController` and at most two timers per run (the deadline and the next attempt);
 * stopping the actor aborts the request in flight and clears both.
 *
 * The loop never spins: the deadline is checked before every attempt, and every attempt waits
 * for a timer turn of the clock even when it is already due. A transport that answers without
 * I/O (an in-process simulator, a `fetch` that rejects at once) would otherwise keep the loop in
 * microtasks, where neither the deadline's timer nor anything else in the process gets a turn.
 *
 * @param retryAlso errors that are not `retryable` but are retried in this step all the same
 * @param once one attempt: any error ends the run
 */
function runStep(
  deps: Deps,
  input: StepInput,
  operation: RequestOperation,
  sendBack: (e: WorkerEvent) => void,
  attempt: (signal: AbortSignal, note: { providerStatus?: string | null }) => Promise<Outcome>,
  retryAlso?: (error: ErrorInfo) => boolean,
  once = false,
): () => void {
  const { clock, random } = deps
  const { phase } = input
  if (input.deadlineAt === null) {
    // The chart re-enters the step with this deadline in the worker's input, so that a
    // restored snapshot carries it; this run sends nothing else.
    sendBack({ type: 'attempt.armed', phase, deadlineAt: clock.now() + input.timeoutMs })
    return () => {}
  }
  const deadlineAt = input.deadlineAt
  /** The request on its way, if any: made per attempt, so that a flow waiting between polls keeps none. */
  let controller: AbortController | undefined
  let stopped = false
  /** The timer of the next attempt: on the clock, or (`wakeNow`) the event loop's next turn. */
  let wake: unknown
  let wakeNow = false
  let wakeResolve: (() => void) | undefined
  const stop = () => {
    stopped = true
    clock.clearTimeout(deadlineTimer)
    if (wakeNow) cancelTurn(wake)
    else clock.clearTimeout(wake)
    controller?.abort()
    wakeResolve?.()
  }
  const finish = (e: WorkerEvent) => {
    if (stopped) return
    stop()
    sendBack(e)
  }
  const timeout = () => finish({ type: 'attempt.timeout', phase })
  const deadlineTimer = clock.setTimeout(timeout, Math.max(0, deadlineAt - clock.now()))

  /**
   * Resolves at `at` on the clock. An attempt that is already due still waits for one turn of
   * the event loop (not of the injected clock: a simulated clock only moves when a test moves
   * it, and a due attempt must not wait for that).
   */
  const sleepUntil = (at: number) =>
    new Promise<void>((resolve) => {
      wakeResolve = resolve
      const ms = at - clock.now()
      wakeNow = ms <= 0
      wake = wakeNow ? nextTurn(resolve) : clock.setTimeout(resolve, ms)
    })

  // The deadline is `timeoutMs` after the last status change (or the step's start): the
  // schedule backs off with the time since then.
  const lastChangeAt = deadlineAt - input.timeoutMs
  /** The next attempt on the poll schedule, never after the deadline. */
  const scheduleNext = (retryAfterMs?: number) => {
    const now = clock.now()
    return Math.min(deadlineAt, now + nextPollDelay(now - lastChangeAt, input.polling, random(), retryAfterMs))
  }

  const loop = async () => {
    let next = input.nextAttemptAt ?? clock.now()
    for (;;) {
      await sleepUntil(next)
      if (stopped) return
      const t0 = clock.now()
      if (t0 >= deadlineAt) return timeout()
      let outcome: Outcome
      let end: ((r: RequestResult) => void) | void = undefined
      const note: { providerStatus?: string | null } = {}
      try {
        deps.beforeRequest?.(input)
        end = deps.onRequest?.(input, operation)
        controller = new AbortController()
        outcome = await attempt(controller.signal, note)
        controller = undefined
        end?.({ durationMs: clock.now() - t0, ...(note.providerStatus !== undefined && { providerStatus: note.providerStatus }) })
      } catch (err) {
        controller = undefined
        if (stopped) return end?.({ durationMs: clock.now() - t0, error: { kind: 'network', message: 'stopped' } })
        const { info, retryable, retryAfterMs } = toErrorInfo(err)
        end?.({ durationMs: clock.now() - t0, error: info })
        if (once || (!retryable && !retryAlso?.(info))) return finish({ type: 'attempt.failed', phase, error: info })
        next = scheduleNext(retryAfterMs)
        sendBack({ type: 'attempt.error', phase, error: info, nextAttemptAt: next })
        continue
      }
      if (stopped) return
      if (outcome !== 'again') return finish(outcome)
      next = scheduleNext()
    }
  }
  loop().catch((err: unknown) => finish({ type: 'attempt.failed', phase, error: toErrorInfo(err).info }))
  return stop
}

type Deps = Required<Pick<WorkerDeps, 'api' | 'clock' | 'random'>> & Pick<WorkerDeps, 'beforeRequest' | 'onRequest'>

/**
 * Runs `fn` on the next turn of the event loop, after the timers that are due: `setImmediate`
 * where there is one (Node), else `setTimeout(fn, 0)`.
 */
const immediate = globalThis as { setImmediate?: (fn: () => void) => unknown; clearImmediate?: (id: unknown) => void }
function nextTurn(fn: () => void): unknown {
  return immediate.setImmediate && immediate.clearImmediate ? immediate.setImmediate(fn) : setTimeout(fn, 0)
}
/** Cancels {@link nextTurn}. */
function cancelTurn(id: unknown): void {
  if (immediate.setImmediate && immediate.clearImmediate) immediate.clearImmediate(id)
  else clearTimeout(id as ReturnType<typeof setTimeout>)
}

/**
 * Finalize's `400` means "not at `DOCUMENT_SIGN_SUCCESS` yet". The chart finalizes only after
 * it saw that status, so the provider is behind its own status endpoint: retry, same payload.
 */
const finalizeNotReady = (e: ErrorInfo) => e.kind === 'rejected' && e.httpStatus === 400

/**
 * The chart's three workers bound to an API and a clock, for
 * `identificationMachine.provide({ actors: createIdentificationWorkers({ api, clock }) })`.
 * Each is a callback actor that loops internally and tells the chart only what changes.
 */
export function createIdentificationWorkers(deps: WorkerDeps) {
  const d: Deps = {
    api: deps.api,
    clock: deps.clock ?? systemClock,
    random: deps.random ?? Math.random,
    ...(deps.beforeRequest && { beforeRequest: deps.beforeRequest }),
    ...(deps.onRequest && { onRequest: deps.onRequest }),
  }
  const { api } = d
  const gate = deps.gate
  type Cb<I> = (args: { input: I; sendBack: (e: WorkerEvent) => void }) => () => void
  const initiator: Cb<InitiatorInput> = ({ input, sendBack }) =>
    runStep(d, input, 'initiate', sendBack, async (signal, note) => {
      const response = await api.initiate(input.request, { signal })
      note.providerStatus = response.videoIdentificationStatus
      return { type: 'initiate.ok', response }
    })
  const statusPoller: Cb<PollerInput> = ({ input, sendBack }) => {
    const req = { userId: input.userId, userType: input.userType }
    const { phase, pendingStatuses, lastStatus, polling, confirm } = input
    return runStep(
      d,
      input,
      'status',
      sendBack,
      async (signal, note) => {
        const response = await api.getStatus(req, { signal })
        note.providerStatus = response.videoIdentificationStatus
        const status = normalizeStatus(response.videoIdentificationStatus)
        // Still pending and unchanged (or confirming a Fail redirect, where only a decisive
        // status counts): loop on, no event, no transition, no snapshot.
        if ((confirm || status === lastStatus) && classifyStatus(status, phase, pendingStatuses) === 'pending') return 'again'
        const at = d.clock.now()
        return { type: 'poll.status', response, at, nextAttemptAt: at + nextPollDelay(0, polling, d.random()) }
      },
    )
  }
  const finalizer: Cb<FinalizerInput> = ({ input, sendBack }) =>
    runStep(
      d,
      input,
      'finalize',
      sendBack,
      async (signal) => ({ type: 'finalize.ok', result: await api.finalize(input.payload, { signal }) }),
      finalizeNotReady,
      input.once,
    )
  /** Without a gate the worker runs at once; with one it starts when the gate opens (and not at all if stopped first). */
  const wrap = <I>(run: Cb<I>) =>
    fromCallback<WorkerEvent, I>(
      gate === undefined
        ? run
        : (args) => {
            let stopped = false
            let cleanup: (() => void) | undefined
            gate().then(
              () => {
                if (!stopped) cleanup = run(args)
              },
              () => {},
            )
            return () => {
              stopped = true
              cleanup?.()
            }
          },
    )
  return { initiator: wrap(initiator), statusPoller: wrap(statusPoller), finalizer: wrap(finalizer) }
}
