import { assign, fromCallback, setup } from 'xstate'
import type { IdentificationEvent, WorkerEvent } from './events.js'
import { resolveInput, type ResolvedInput } from './input.js'
import { classifyStatus, normalizeStatus, type PollPhase, type StatusClass } from './status.js'
import type {
  ErrorInfo,
  Failure,
  FailurePhase,
  FailureReason,
  FinalizeRequest,
  IdentificationInput,
  IdentificationResult,
  InitiateRequest,
  ResolvedPolling,
  UserType,
} from './types.js'
import { isSafeUrl } from './urls.js'

/** The chart's context: plain JSON, never a token or a function. Times are absolute ms of the injected clock. */
export interface IdentificationContext extends ResolvedInput {
  /** The next initiate sends `isRestartIdentification: true`. */
  restart: boolean
  /** The ID-capture URL from initiate (already checked with `isSafeUrl`). */
  identificationUrl: string | null
  /** The signing URL from phase A (already checked with `isSafeUrl`). */
  signingUrl: string | null
  /** The last `videoIdentificationStatus` seen, as the provider wrote it. */
  status: string | null
  /** The last `message` the provider sent. */
  message: string | null
  /** When the running step fails with `timeout` (`null` until its worker arms it). */
  deadlineAt: number | null
  /** When the running worker sends its next request (`null`: at once). */
  nextAttemptAt: number | null
  /** The last retryable request error of the running step. */
  lastError: ErrorInfo | null
  /** `DOCUMENT_SIGN_SUCCESS` was seen: the only way into `phaseB`. */
  signed: boolean
  /** The finalize body, fixed when `phaseB` is first entered so that every retry is identical. */
  finalizePayload: FinalizeRequest | null
  /** Why the flow is in `failed`. */
  failure: Failure | null
  /** The ids from finalize. */
  result: IdentificationResult | null
}

/** Input of the `initiator` worker. */
export interface InitiatorInput {
  request: InitiateRequest
  deadlineAt: number | null
  nextAttemptAt: number | null
  timeoutMs: number
  polling: ResolvedPolling
}
/** Input of the `statusPoller` worker. */
export interface PollerInput {
  phase: PollPhase
  userId: number
  userType: UserType
  pendingStatuses: string[]
  /** The normalised status the poll starts from; a different one is a change. */
  lastStatus: string
  deadlineAt: number | null
  nextAttemptAt: number | null
  timeoutMs: number
  polling: ResolvedPolling
}
/** Input of the `finalizer` worker. */
export interface FinalizerInput {
  payload: FinalizeRequest
  deadlineAt: number | null
  nextAttemptAt: number | null
  timeoutMs: number
  polling: ResolvedPolling
}

const notProvided = (name: string) =>
  fromCallback<WorkerEvent, any>(() => {
    throw new Error(
      `The "${name}" actor is not provided: run the chart through runIdentification / createBrowserIdentification, or machine.provide({ actors: createIdentificationWorkers(...) }).`,
    )
  })

type Ctx = IdentificationContext
type Ev = IdentificationEvent
type EventOf<T extends Ev['type']> = Extract<Ev, { type: T }>

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`

function failure(
  reason: FailureReason,
  phase: FailurePhase,
  message: string,
  extra: Partial<Failure> = {},
): Failure {
  const retryable = reason === 'timeout'
  return { reason, retryable, phase, message, ...extra }
}

const PHASE_NAME: Record<FailurePhase, string> = {
  initiate: 'Initiate',
  A: 'Phase A (waiting for the signing session)',
  B: 'Phase B (waiting for the signature)',
  finalize: 'Finalize',
}

function pendingFields(_ctx: Ctx) {
  return { deadlineAt: null, nextAttemptAt: null, lastError: null, failure: null } satisfies Partial<Ctx>
}

/**
 * The 10npay web-identification chart. Pure: every effect is an actor supplied by an adapter
 * (`machine.provide({ actors: createIdentificationWorkers({ api, clock }) })`).
 */
export const identificationMachine = setup({
  types: {
    context: {} as IdentificationContext,
    events: {} as IdentificationEvent,
    input: {} as IdentificationInput,
    output: {} as IdentificationResult,
  },
  actors: {
    initiator: notProvided('initiator'),
    statusPoller: notProvided('statusPoller'),
    finalizer: notProvided('finalizer'),
  },
  guards: {
    /** The initiate answer carries a URL that passes `isSafeUrl`. */
    initiateUrlIsSafe: ({ context, event }) =>
      isSafeUrl((event as EventOf<'initiate.ok'>).response.videoIdentificationUrl, context),
    /** The initiate answer's status is `ERROR` or unknown. */
    initiateIsVendorError: ({ context, event }) =>
      classifyStatus((event as EventOf<'initiate.ok'>).response.videoIdentificationStatus, 'A', context.pendingStatuses) ===
      'vendor-error',
    /** The polled status classifies as `params.is` in phase `params.phase`. */
    statusIs: ({ context, event }, params: { phase: PollPhase; is: StatusClass }) =>
      classifyStatus((event as EventOf<'poll.status'>).response.videoIdentificationStatus, params.phase, context.pendingStatuses) ===
      params.is,
    /** Phase A is complete and the answer carries a signing URL that passes `isSafeUrl`. */
    signingReadyWithSafeUrl: ({ context, event }) => {
      const r = (event as EventOf<'poll.status'>).response
      return classifyStatus(r.videoIdentificationStatus, 'A', context.pendingStatuses) === 'signing-ready' && isSafeUrl(r.videoIdentificationUrl, context)
    },
    /** The redirect reports failure. */
    redirectFailed: ({ event }) => (event as EventOf<'REDIRECT'>).outcome === 'fail',
    /** The redirect reports success (any other outcome is ignored). */
    redirectSucceeded: ({ event }) => (event as EventOf<'REDIRECT'>).outcome === 'success',
    /** A successful redirect that ends the signing step (for a flow started elsewhere). */
    redirectIsSigning: ({ event }) => {
      const e = event as EventOf<'REDIRECT'>
      return e.outcome === 'success' && e.step === 'signing'
    },
    /** The failure can be retried and belongs to `params.phase`. */
    canRetry: ({ context }, params: { phase: FailurePhase }) =>
      context.failure !== null && context.failure.retryable && context.failure.phase === params.phase,
  },
  actions: {
    /** Clears the times and errors of the step being entered; its worker arms a new deadline. */
    beginStep: assign(({ context }) => pendingFields(context)),
    /** Keeps the deadline the worker armed. */
    storeDeadline: assign({ deadlineAt: ({ event }) => (event as EventOf<'attempt.armed'>).deadlineAt }),
    /** Keeps a retryable error and when the next attempt is due. */
    recordError: assign({
      lastError: ({ event }) => (event as EventOf<'attempt.error'>).error,
      nextAttemptAt: ({ event }) => (event as EventOf<'attempt.error'>).nextAttemptAt,
    }),
    /** A status change that still means "wait": the deadline counts again from it. */
    recordPendingStatus: assign(({ context, event }) => {
      const e = event as EventOf<'poll.status'>
      return {
        status: e.response.videoIdentificationStatus,
        message: e.response.message,
        deadlineAt: e.at + context.polling.phaseTimeoutMs,
        nextAttemptAt: e.nextAttemptAt,
        lastError: null,
      }
    }),
    /** Initiate succeeded: keep the ID-capture URL. */
    storeIdentificationUrl: assign(({ event }) => {
      const r = (event as EventOf<'initiate.ok'>).response
      return {
        identificationUrl: r.videoIdentificationUrl,
        status: r.videoIdentificationStatus,
        message: r.message,
        restart: false,
        lastError: null,
      }
    }),
    /** Phase A is complete: keep the signing URL. */
    storeSigningUrl: assign(({ event }) => {
      const r = (event as EventOf<'poll.status'>).response
      return { signingUrl: r.videoIdentificationUrl, status: r.videoIdentificationStatus, message: r.message, lastError: null }
    }),
    /** `DOCUMENT_SIGN_SUCCESS` was seen: fix the finalize payload once. */
    markSigned: assign(({ context, event }) => {
      const r = (event as EventOf<'poll.status'>).response
      return {
        signed: true,
        status: r.videoIdentificationStatus,
        message: r.message,
        finalizePayload: context.finalizePayload ?? {
          userId: context.userId,
          bTrustAppCallBackId: context.finalize.bTrustAppCallBackId,
          correlationType: context.finalize.correlationType,
        },
      }
    }),
    /** Keeps the `bTrustAppCallBackId` a redirect brought, for finalize. */
    storeCallbackId: assign(({ context, event }) => {
      const id = (event as EventOf<'REDIRECT'>).bTrustAppCallBackId
      return typeof id === 'string' && id !== '' ? { finalize: { ...context.finalize, bTrustAppCallBackId: id.slice(0, 512) } } : {}
    }),
    /** Finalize answered: keep the ids. */
    storeResult: assign({ result: ({ event }) => (event as EventOf<'finalize.ok'>).result }),
    /** The next initiate is a restart; forget everything of the old session. */
    markRestart: assign(({ context }) => ({
      restart: true,
      identificationUrl: null,
      signingUrl: null,
      status: null,
      message: null,
      signed: false,
      finalizePayload: null,
      result: null,
      finalize: { ...context.finalize, bTrustAppCallBackId: null },
      ...pendingFields(context),
    })),
    /** Leaves `failed` for a retry. */
    clearFailure: assign({ failure: null }),
    /** A request error no retry can fix. */
    failFromError: assign(({ event }, params: { phase: FailurePhase }) => {
      const error = (event as EventOf<'attempt.failed'>).error
      const reason: FailureReason = error.kind === 'unauthorized' ? 'unauthorized' : 'rejected'
      return {
        failure: failure(reason, params.phase, `${PHASE_NAME[params.phase]} failed: ${error.message}`, {
          ...(error.httpStatus !== undefined && { httpStatus: error.httpStatus }),
          lastError: error,
        }),
      }
    }),
    /** The step's deadline passed. */
    failTimeout: assign(({ context }, params: { phase: FailurePhase }) => {
      const limit = params.phase === 'finalize' ? context.polling.finalizeTimeoutMs : context.polling.phaseTimeoutMs
      const what =
        params.phase === 'A' || params.phase === 'B'
          ? `no status change for ${seconds(limit)} (last status: ${context.status ?? 'none'})`
          : `no success within ${seconds(limit)}`
      const last = context.lastError ? `; last error: ${context.lastError.message}` : ''
      return {
        failure: failure('timeout', params.phase, `${PHASE_NAME[params.phase]} timed out: ${what}${last}`, {
          ...(context.lastError && { lastError: context.lastError }),
          ...(context.lastError?.httpStatus !== undefined && { httpStatus: context.lastError.httpStatus }),
        }),
      }
    }),
    /** The provider reported `ERROR` or an unknown status. */
    failVendorError: assign(({ event }, params: { phase: FailurePhase }) => {
      const r = (event as EventOf<'poll.status' | 'initiate.ok'>).response
      const status = normalizeStatus(r.videoIdentificationStatus) || 'none'
      const detail = r.message ? ` (${r.message})` : ''
      return {
        status: r.videoIdentificationStatus,
        message: r.message,
        failure: failure('vendor-error', params.phase, `${PHASE_NAME[params.phase]}: the provider reported ${status}${detail}; restart the identification`, {
          vendorStatus: status,
        }),
      }
    }),
    /** A URL from the provider failed `isSafeUrl`; it is not kept anywhere. */
    failUnsafeUrl: assign(({ event }, params: { phase: FailurePhase }) => {
      const url = (event as EventOf<'poll.status' | 'initiate.ok'>).response.videoIdentificationUrl
      const what = url === null || url === '' ? 'no URL' : 'a URL that is not safe to open (not https, or not an allowed host)'
      return { failure: failure('unsafe-url', params.phase, `${PHASE_NAME[params.phase]}: the provider returned ${what}; it was not opened`) }
    }),
    /** The provider redirected to the Fail URL. */
    failRedirect: assign((_, params: { phase: FailurePhase }) => ({
      failure: failure(
        'redirect-failed',
        params.phase,
        params.phase === 'A' ? 'The ID capture was not completed (Fail redirect)' : 'The document was not signed (Fail redirect)',
      ),
    })),
    /** A redirect came back to a browser that holds no flow. */
    failLost: assign({
      failure: (): Failure => ({
        reason: 'redirect-failed',
        retryable: false,
        message:
          'This browser has no identification in progress (the tab expired, or it was started on another device). Please restart the identification.',
      }),
    }),
    /** The host cancelled the flow. */
    failCancelled: assign({
      failure: (): Failure => ({ reason: 'cancelled', retryable: false, message: 'The identification was cancelled' }),
    }),
  },
}).createMachine({
  id: 'identification',
  description: 'The 10npay web identification: initiate, ID capture, phase A polling, signing, phase B polling, finalize.',
  context: ({ input }) => ({
    ...resolveInput(input),
    restart: false,
    identificationUrl: null,
    signingUrl: null,
    status: null,
    message: null,
    deadlineAt: null,
    nextAttemptAt: null,
    lastError: null,
    signed: false,
    finalizePayload: null,
    failure: null,
    result: null,
  }),
  initial: 'idle',
  output: ({ context }) => context.result!,
  states: {
    idle: {
      description: 'Nothing started. START initiates; RESTART initiates with isRestartIdentification; REDIRECT picks up a flow started elsewhere; LOST: a redirect came back to a browser that holds no flow.',
      on: {
        START: { target: 'initiating' },
        RESTART: { target: 'initiating', actions: 'markRestart' },
        LOST: { target: 'failed', actions: 'failLost' },
        REDIRECT: [
          { guard: 'redirectFailed', target: 'failed', actions: { type: 'failRedirect', params: { phase: 'A' } } },
          { guard: 'redirectIsSigning', target: 'pollingB', actions: 'storeCallbackId' },
          { guard: 'redirectSucceeded', target: 'pollingA', actions: 'storeCallbackId' },
        ],
      },
    },
    initiating: {
      description: 'POST initiate (isRestartIdentification on a restart), retried on retryable errors until the phase deadline.',
      entry: 'beginStep',
      initial: 'running',
      states: {
        running: {
          description: 'The worker runs; a new deadline or status re-enters this state so that the worker input (kept in snapshots) carries it.',
          on: {
            'attempt.armed': { target: 'running', reenter: true, actions: 'storeDeadline' },
          },
          invoke: {
            id: 'initiate',
            src: 'initiator',
            input: ({ context }: { context: Ctx }): InitiatorInput => ({
              request: {
                userId: context.userId,
                isRestartIdentification: context.restart,
                correlationType: context.initiate.correlationType ?? 0,
                ...stripUndefined({ ...context.initiate, correlationType: undefined }),
              },
              deadlineAt: context.deadlineAt,
              nextAttemptAt: context.nextAttemptAt,
              timeoutMs: context.polling.phaseTimeoutMs,
              polling: context.polling,
            }),
          },
        },
      },
      on: {
        'attempt.error': { actions: 'recordError' },
        'attempt.failed': { target: 'failed', actions: { type: 'failFromError', params: { phase: 'initiate' } } },
        'attempt.timeout': { target: 'failed', actions: { type: 'failTimeout', params: { phase: 'initiate' } } },
        'initiate.ok': [
          { guard: 'initiateIsVendorError', target: 'failed', actions: { type: 'failVendorError', params: { phase: 'initiate' } } },
          { guard: 'initiateUrlIsSafe', target: 'identifying', actions: 'storeIdentificationUrl' },
          { target: 'failed', actions: { type: 'failUnsafeUrl', params: { phase: 'initiate' } } },
        ],
        CANCEL: { target: 'failed', actions: 'failCancelled' },
      },
    },
    identifying: {
      description: 'The user is at the ID-capture URL; waits for the Success or Fail redirect.',
      on: {
        REDIRECT: [
          { guard: 'redirectFailed', target: 'failed', actions: { type: 'failRedirect', params: { phase: 'A' } } },
          { guard: 'redirectSucceeded', target: 'pollingA', actions: 'storeCallbackId' },
        ],
        RESTART: { target: 'initiating', actions: 'markRestart' },
        CANCEL: { target: 'failed', actions: 'failCancelled' },
      },
    },
    pollingA: {
      description: 'Polls the status until SIGN_SESSION_ID_SUCCESSFULLY_CREATED; fails after phaseTimeoutMs without a status change.',
      entry: 'beginStep',
      initial: 'running',
      states: {
        running: {
          description: 'The worker runs; a new deadline or status re-enters this state so that the worker input (kept in snapshots) carries it.',
          on: {
            'attempt.armed': { target: 'running', reenter: true, actions: 'storeDeadline' },
            'poll.status': {
              guard: { type: 'statusIs', params: { phase: 'A', is: 'pending' } },
              target: 'running',
              reenter: true,
              actions: 'recordPendingStatus',
            },
          },
          invoke: {
            id: 'pollA',
            src: 'statusPoller',
            input: ({ context }: { context: Ctx }) => pollerInput(context, 'A'),
          },
        },
      },
      on: {
        'attempt.error': { actions: 'recordError' },
        'attempt.failed': { target: 'failed', actions: { type: 'failFromError', params: { phase: 'A' } } },
        'attempt.timeout': { target: 'failed', actions: { type: 'failTimeout', params: { phase: 'A' } } },
        'poll.status': [
          {
            guard: 'signingReadyWithSafeUrl',
            target: 'phaseA',
            actions: 'storeSigningUrl',
          },
          {
            guard: { type: 'statusIs', params: { phase: 'A', is: 'signing-ready' } },
            target: 'failed',
            actions: { type: 'failUnsafeUrl', params: { phase: 'A' } },
          },
          { guard: { type: 'statusIs', params: { phase: 'A', is: 'signed' } }, target: 'phaseB', actions: 'markSigned' },
          {
            guard: { type: 'statusIs', params: { phase: 'A', is: 'vendor-error' } },
            target: 'failed',
            actions: { type: 'failVendorError', params: { phase: 'A' } },
          },
        ],
        RESTART: { target: 'initiating', actions: 'markRestart' },
        CANCEL: { target: 'failed', actions: 'failCancelled' },
      },
    },
    phaseA: {
      description: 'The signing URL is known; waits for CONTINUE (adapters may send it themselves).',
      on: {
        CONTINUE: { target: 'signing' },
        RESTART: { target: 'initiating', actions: 'markRestart' },
        CANCEL: { target: 'failed', actions: 'failCancelled' },
      },
    },
    signing: {
      description: 'The user is at the signing URL; waits for the Success or Fail redirect.',
      on: {
        REDIRECT: [
          { guard: 'redirectFailed', target: 'failed', actions: { type: 'failRedirect', params: { phase: 'B' } } },
          { guard: 'redirectSucceeded', target: 'pollingB', actions: 'storeCallbackId' },
        ],
        RESTART: { target: 'initiating', actions: 'markRestart' },
        CANCEL: { target: 'failed', actions: 'failCancelled' },
      },
    },
    pollingB: {
      description: 'Polls the status until DOCUMENT_SIGN_SUCCESS (a stale SIGN_SESSION_ID_SUCCESSFULLY_CREATED means wait).',
      entry: 'beginStep',
      initial: 'running',
      states: {
        running: {
          description: 'The worker runs; a new deadline or status re-enters this state so that the worker input (kept in snapshots) carries it.',
          on: {
            'attempt.armed': { target: 'running', reenter: true, actions: 'storeDeadline' },
            'poll.status': {
              guard: { type: 'statusIs', params: { phase: 'B', is: 'pending' } },
              target: 'running',
              reenter: true,
              actions: 'recordPendingStatus',
            },
          },
          invoke: {
            id: 'pollB',
            src: 'statusPoller',
            input: ({ context }: { context: Ctx }) => pollerInput(context, 'B'),
          },
        },
      },
      on: {
        'attempt.error': { actions: 'recordError' },
        'attempt.failed': { target: 'failed', actions: { type: 'failFromError', params: { phase: 'B' } } },
        'attempt.timeout': { target: 'failed', actions: { type: 'failTimeout', params: { phase: 'B' } } },
        'poll.status': [
          { guard: { type: 'statusIs', params: { phase: 'B', is: 'signed' } }, target: 'phaseB', actions: 'markSigned' },
          {
            guard: { type: 'statusIs', params: { phase: 'B', is: 'vendor-error' } },
            target: 'failed',
            actions: { type: 'failVendorError', params: { phase: 'B' } },
          },
        ],
        RESTART: { target: 'initiating', actions: 'markRestart' },
        CANCEL: { target: 'failed', actions: 'failCancelled' },
      },
    },
    phaseB: {
      description: 'DOCUMENT_SIGN_SUCCESS seen; POST finalize with one fixed payload, retried until finalizeTimeoutMs.',
      entry: 'beginStep',
      initial: 'running',
      states: {
        running: {
          description: 'The worker runs; a new deadline or status re-enters this state so that the worker input (kept in snapshots) carries it.',
          on: {
            'attempt.armed': { target: 'running', reenter: true, actions: 'storeDeadline' },
          },
          invoke: {
            id: 'finalize',
            src: 'finalizer',
            input: ({ context }: { context: Ctx }): FinalizerInput => ({
              payload: context.finalizePayload!,
              deadlineAt: context.deadlineAt,
              nextAttemptAt: context.nextAttemptAt,
              timeoutMs: context.polling.finalizeTimeoutMs,
              polling: context.polling,
            }),
          },
        },
      },
      on: {
        'attempt.error': { actions: 'recordError' },
        'attempt.failed': { target: 'failed', actions: { type: 'failFromError', params: { phase: 'finalize' } } },
        'attempt.timeout': { target: 'failed', actions: { type: 'failTimeout', params: { phase: 'finalize' } } },
        'finalize.ok': { target: 'finalized', actions: 'storeResult' },
        CANCEL: { target: 'failed', actions: 'failCancelled' },
      },
    },
    finalized: {
      description: 'Final. Output: { correlationId, individualId }.',
      type: 'final',
    },
    failed: {
      description: 'Not final: context.failure says why. RETRY re-enters the failed step when failure.retryable; RESTART initiates again.',
      on: {
        RETRY: [
          { guard: { type: 'canRetry', params: { phase: 'initiate' } }, target: 'initiating', actions: 'clearFailure' },
          { guard: { type: 'canRetry', params: { phase: 'A' } }, target: 'pollingA', actions: 'clearFailure' },
          { guard: { type: 'canRetry', params: { phase: 'B' } }, target: 'pollingB', actions: 'clearFailure' },
          { guard: { type: 'canRetry', params: { phase: 'finalize' } }, target: 'phaseB', actions: 'clearFailure' },
        ],
        RESTART: { target: 'initiating', actions: 'markRestart' },
      },
    },
  },
})

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {}
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v
  return out
}

function pollerInput(context: Ctx, phase: PollPhase): PollerInput {
  return {
    phase,
    userId: context.userId,
    userType: context.userType,
    pendingStatuses: context.pendingStatuses,
    lastStatus: normalizeStatus(context.status),
    deadlineAt: context.deadlineAt,
    nextAttemptAt: context.nextAttemptAt,
    timeoutMs: context.polling.phaseTimeoutMs,
    polling: context.polling,
  }
}

/** The snapshot type of the identification chart. */
export type IdentificationMachine = typeof identificationMachine
