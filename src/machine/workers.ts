import { fromCallback } from 'xstate'
import type { Clock } from './clock.js'
import { systemClock } from './clock.js'
import type { WorkerEvent } from './events.js'
import type { FinalizerInput, InitiatorInput, PollerInput } from './identificationMachine.js'
import { nextPollDelay } from './schedule.js'
import { classifyStatus, normalizeStatus } from './status.js'
import type { ErrorInfo, ErrorKind, IdentificationApi, ResolvedPolling } from './types.js'

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

interface StepInput {
  deadlineAt: number | null
  nextAttemptAt: number | null
  timeoutMs: number
  polling: ResolvedPolling
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
 */
function runStep(
  deps: Required<Omit<WorkerDeps, 'gate'>>,
  input: StepInput,
  sendBack: (e: WorkerEvent) => void,
  attempt: (signal: AbortSignal) => Promise<Outcome>,
): () => void {
  const { clock, random } = deps
  if (input.deadlineAt === null) {
    // The chart re-enters the step with this deadline in the worker's input, so that a
    // restored snapshot carries it; this run sends nothing else.
    sendBack({ type: 'attempt.armed', deadlineAt: clock.now() + input.timeoutMs })
    return () => {}
  }
  const deadlineAt = input.deadlineAt
  const controller = new AbortController()
  let stopped = false
  let wake: unknown
  let wakeResolve: (() => void) | undefined
  const finish = (e: WorkerEvent) => {
    if (stopped) return
    stopped = true
    clock.clearTimeout(deadlineTimer)
    clock.clearTimeout(wake)
    sendBack(e)
  }
  const deadlineTimer = clock.setTimeout(() => {
    finish({ type: 'attempt.timeout' })
    controller.abort()
    wakeResolve?.()
  }, Math.max(0, deadlineAt - clock.now()))

  const sleepUntil = (at: number) =>
    new Promise<void>((resolve) => {
      const ms = at - clock.now()
      if (ms <= 0) return resolve()
      wakeResolve = resolve
      wake = clock.setTimeout(resolve, ms)
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
    while (!stopped) {
      await sleepUntil(next)
      if (stopped) return
      let outcome: Outcome
      try {
        outcome = await attempt(controller.signal)
      } catch (err) {
        if (stopped) return
        const { info, retryable, retryAfterMs } = toErrorInfo(err)
        if (!retryable) return finish({ type: 'attempt.failed', error: info })
        next = scheduleNext(retryAfterMs)
        sendBack({ type: 'attempt.error', error: info, nextAttemptAt: next })
        continue
      }
      if (stopped) return
      if (outcome !== 'again') return finish(outcome)
      next = scheduleNext()
    }
  }
  loop().catch((err: unknown) => finish({ type: 'attempt.failed', error: toErrorInfo(err).info }))
  return () => {
    stopped = true
    clock.clearTimeout(deadlineTimer)
    clock.clearTimeout(wake)
    controller.abort()
  }
}

/**
 * The chart's three workers bound to an API and a clock, for
 * `identificationMachine.provide({ actors: createIdentificationWorkers({ api, clock }) })`.
 * Each is a callback actor that loops internally and tells the chart only what changes.
 */
export function createIdentificationWorkers(deps: WorkerDeps) {
  const d: Required<Omit<WorkerDeps, 'gate'>> = { api: deps.api, clock: deps.clock ?? systemClock, random: deps.random ?? Math.random }
  const { api } = d
  const gate = deps.gate
  type Cb<I> = (args: { input: I; sendBack: (e: WorkerEvent) => void }) => () => void
  const initiator: Cb<InitiatorInput> = ({ input, sendBack }) =>
    runStep(
      d,
      input,
      sendBack,
      async (signal) => ({ type: 'initiate.ok', response: await api.initiate(input.request, { signal }) }),
    )
  const statusPoller: Cb<PollerInput> = ({ input, sendBack }) => {
    const req = { userId: input.userId, userType: input.userType }
    const { phase, pendingStatuses, lastStatus, polling } = input
    return runStep(
      d,
      input,
      sendBack,
      async (signal) => {
        const response = await api.getStatus(req, { signal })
        const status = normalizeStatus(response.videoIdentificationStatus)
        // Unchanged and still pending: loop on, no event, no transition, no snapshot.
        if (status === lastStatus && classifyStatus(status, phase, pendingStatuses) === 'pending') return 'again'
        const at = d.clock.now()
        return { type: 'poll.status', response, at, nextAttemptAt: at + nextPollDelay(0, polling, d.random()) }
      },
    )
  }
  const finalizer: Cb<FinalizerInput> = ({ input, sendBack }) =>
    runStep(
      d,
      input,
      sendBack,
      async (signal) => ({ type: 'finalize.ok', result: await api.finalize(input.payload, { signal }) }),
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
