import { assertEvent, assign, fromCallback, setup } from 'xstate'
import type { IdentificationEvent, WorkerEvent } from './events.js'
import {
  cancelledFailure,
  errorFailure,
  lostFailure,
  providerText,
  redirectFailure,
  timeoutFailure,
  unsafeUrlFailure,
  vendorFailure,
} from './failures.js'
import { resolveInput } from './input.js'
import { classifyStatus, normalizeStatus, type StatusClass } from './status.js'
import type {
  FailurePhase,
  FinalizerInput,
  IdentificationContext,
  IdentificationInput,
  IdentificationResult,
  InitiatorInput,
  PollerInput,
  PollPhase,
} from './types.js'
import { isSafeUrl } from './urls.js'

/**
 * The chart's tags: `working` — a worker talks to the provider (the host keeps an actor);
 * `awaitingUser` — the flow waits for the user (at a provider page, or for `CONTINUE`);
 * `ended` — `finalized` or `failed`: nothing runs until the host sends `RETRY` or `RESTART`.
 */
export type IdentificationTag = 'working' | 'awaitingUser' | 'ended'

const notProvided = (name: string) =>
  fromCallback<WorkerEvent, any>(() => {
    throw new Error(
      `The "${name}" actor is not provided: run the chart through runIdentification / createBrowserIdentification, or machine.provide({ actors: createIdentificationWorkers(...) }).`,
    )
  })

type Ctx = IdentificationContext

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
    tags: {} as IdentificationTag,
  },
  actors: {
    initiator: notProvided('initiator'),
    statusPoller: notProvided('statusPoller'),
    finalizer: notProvided('finalizer'),
  },
  guards: {
    /** A worker event from the step that runs now (a late one from a stopped worker is ignored). */
    attemptIsCurrent: ({ context, event }) => {
      assertEvent(event, ['attempt.armed', 'attempt.error', 'attempt.failed', 'attempt.timeout'])
      return event.phase === context.step
    },
    /** The initiate answer carries a URL that passes `isSafeUrl`. */
    initiateUrlIsSafe: ({ context, event }) => {
      assertEvent(event, 'initiate.ok')
      return isSafeUrl(event.response.videoIdentificationUrl, context)
    },
    /** The initiate answer's status is `ERROR` or unknown. */
    initiateIsVendorError: ({ context, event }) => {
      assertEvent(event, 'initiate.ok')
      return classifyStatus(event.response.videoIdentificationStatus, 'A', context.pendingStatuses) === 'vendor-error'
    },
    /** The polled status classifies as `params.is` in phase `params.phase`. */
    statusIs: ({ context, event }, params: { phase: PollPhase; is: StatusClass }) => {
      assertEvent(event, 'poll.status')
      return classifyStatus(event.response.videoIdentificationStatus, params.phase, context.pendingStatuses) === params.is
    },
    /** Phase A is complete and the answer carries a signing URL that passes `isSafeUrl`. */
    signingReadyWithSafeUrl: ({ context, event }) => {
      assertEvent(event, 'poll.status')
      const r = event.response
      return classifyStatus(r.videoIdentificationStatus, 'A', context.pendingStatuses) === 'signing-ready' && isSafeUrl(r.videoIdentificationUrl, context)
    },
    /**
     * The redirect reports `params.outcome` (any other outcome is ignored) and, when
     * `params.step` is given, ends that step (`identification` when the event names none).
     */
    redirectIs: ({ event }, params: { outcome: 'success' | 'fail'; step?: 'identification' | 'signing' }) => {
      assertEvent(event, 'REDIRECT')
      return event.outcome === params.outcome && (params.step === undefined || (event.step ?? 'identification') === params.step)
    },
    /** The failure can be retried and belongs to `params.phase`. */
    canRetry: ({ context }, params: { phase: FailurePhase }) =>
      context.failure !== null && context.failure.retryable && context.failure.phase === params.phase,
  },
  actions: {
    /** Enters a step: its worker arms a new deadline; times and errors of the last step go. */
    beginStep: assign((_, params: { phase: FailurePhase }) => ({
      step: params.phase,
      deadlineAt: null,
      nextAttemptAt: null,
      lastError: null,
      failure: null,
    })),
    /** Leaves a step: late events of its worker no longer count. */
    endStep: assign({ step: null }),
    /** A Success redirect during a confirming poll: the phase's normal deadline starts now. */
    restartDeadline: assign({ deadlineAt: null, nextAttemptAt: null, lastError: null }),
    /** Keeps the deadline the worker armed. */
    storeDeadline: assign(({ event }) => {
      assertEvent(event, 'attempt.armed')
      return { deadlineAt: event.deadlineAt }
    }),
    /** Keeps a retryable error and when the next attempt is due. */
    recordError: assign(({ event }) => {
      assertEvent(event, 'attempt.error')
      return { lastError: event.error, nextAttemptAt: event.nextAttemptAt }
    }),
    /** A status change that still means "wait": the deadline counts again from it. */
    recordPendingStatus: assign(({ context, event }) => {
      assertEvent(event, 'poll.status')
      return {
        status: providerText(event.response.videoIdentificationStatus),
        message: providerText(event.response.message),
        deadlineAt: event.at + context.polling.phaseTimeoutMs,
        nextAttemptAt: event.nextAttemptAt,
        lastError: null,
      }
    }),
    /** Initiate succeeded: keep the ID-capture URL. */
    storeIdentificationUrl: assign(({ event }) => {
      assertEvent(event, 'initiate.ok')
      const r = event.response
      return {
        identificationUrl: r.videoIdentificationUrl,
        status: providerText(r.videoIdentificationStatus),
        message: providerText(r.message),
        restart: false,
        lastError: null,
      }
    }),
    /** Phase A is complete: keep the signing URL. */
    storeSigningUrl: assign(({ event }) => {
      assertEvent(event, 'poll.status')
      const r = event.response
      return { signingUrl: r.videoIdentificationUrl, status: providerText(r.videoIdentificationStatus), message: providerText(r.message), lastError: null }
    }),
    /** `DOCUMENT_SIGN_SUCCESS` was seen: fix the finalize payload once. */
    markSigned: assign(({ context, event }) => {
      assertEvent(event, 'poll.status')
      return {
        signed: true,
        status: providerText(event.response.videoIdentificationStatus),
        message: providerText(event.response.message),
        finalizePayload: context.finalizePayload ?? {
          userId: context.userId,
          bTrustAppCallBackId: context.finalize.bTrustAppCallBackId,
          correlationType: context.finalize.correlationType,
        },
      }
    }),
    /** Keeps the `bTrustAppCallBackId` a redirect brought, for finalize. */
    storeCallbackId: assign(({ context, event }) => {
      assertEvent(event, 'REDIRECT')
      const id = event.bTrustAppCallBackId
      return typeof id === 'string' && id !== '' ? { finalize: { ...context.finalize, bTrustAppCallBackId: id.slice(0, 512) } } : {}
    }),
    /** Finalize answered: keep the ids. */
    storeResult: assign(({ event }) => {
      assertEvent(event, 'finalize.ok')
      return { result: event.result }
    }),
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
      failure: null,
      finalize: { ...context.finalize, bTrustAppCallBackId: null },
    })),
    /** Leaves `failed` for a retry. */
    clearFailure: assign({ failure: null }),
    /** A request error no retry of the worker can fix. */
    failFromError: assign(({ event }) => {
      assertEvent(event, 'attempt.failed')
      return { failure: errorFailure(event.phase, event.error) }
    }),
    /** The step's deadline passed. */
    failTimeout: assign(({ context, event }) => {
      assertEvent(event, 'attempt.timeout')
      const limit = event.phase === 'finalize' ? context.polling.finalizeTimeoutMs : context.polling.phaseTimeoutMs
      return { failure: timeoutFailure(event.phase, limit, context.status, context.lastError) }
    }),
    /** The provider reported `ERROR` or an unknown status. */
    failVendorError: assign(({ event }, params: { phase: FailurePhase }) => {
      assertEvent(event, ['poll.status', 'initiate.ok'])
      const r = event.response
      return { status: providerText(r.videoIdentificationStatus), message: providerText(r.message), failure: vendorFailure(params.phase, r) }
    }),
    /** A URL from the provider failed `isSafeUrl`; it is not kept anywhere. */
    failUnsafeUrl: assign(({ event }, params: { phase: FailurePhase }) => {
      assertEvent(event, ['poll.status', 'initiate.ok'])
      return { failure: unsafeUrlFailure(params.phase, event.response.videoIdentificationUrl) }
    }),
    /** A Fail redirect that the provider's status did not contradict within `failConfirmMs`. */
    failRedirect: assign(({ context }, params: { phase: PollPhase }) => ({
      failure: redirectFailure(params.phase, context.polling.failConfirmMs, context.status, context.lastError),
    })),
    /** A redirect came back to a browser that holds no flow. */
    failLost: assign({ failure: () => lostFailure() }),
    /** The host cancelled the flow. */
    failCancelled: assign({ failure: () => cancelledFailure() }),
  },
}).createMachine({
  id: 'identification',
  description: 'The 10npay web identification: initiate, ID capture, phase A polling, signing, phase B polling, finalize.',
  context: ({ input }) => ({
    ...resolveInput(input),
    restart: false,
    step: null,
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
  on: {
    'attempt.error': { guard: 'attemptIsCurrent', actions: 'recordError' },
    'attempt.failed': { guard: 'attemptIsCurrent', target: '.failed', actions: 'failFromError' },
    'attempt.timeout': { guard: 'attemptIsCurrent', target: '.failed', actions: 'failTimeout' },
  },
  states: {
    idle: {
      description:
        'Nothing started. START initiates; RESTART initiates with isRestartIdentification; REDIRECT picks up a flow started elsewhere (step says which); LOST: a redirect came back to a browser that holds no flow.',
      on: {
        START: { target: 'initiating' },
        RESTART: { target: 'initiating', actions: 'markRestart' },
        LOST: { target: 'failed', actions: 'failLost' },
        REDIRECT: [
          { guard: { type: 'redirectIs', params: { outcome: 'success', step: 'signing' } }, target: 'pollingB', actions: 'storeCallbackId' },
          { guard: { type: 'redirectIs', params: { outcome: 'success', step: 'identification' } }, target: 'pollingA', actions: 'storeCallbackId' },
          { guard: { type: 'redirectIs', params: { outcome: 'fail', step: 'signing' } }, target: 'pollingB.confirming' },
          { guard: { type: 'redirectIs', params: { outcome: 'fail', step: 'identification' } }, target: 'pollingA.confirming' },
        ],
      },
    },
    initiating: {
      description: 'POST initiate (isRestartIdentification on a restart), retried on retryable errors until the phase deadline.',
      tags: ['working'],
      entry: { type: 'beginStep', params: { phase: 'initiate' } },
      exit: 'endStep',
      initial: 'running',
      states: {
        running: {
          description: 'The worker runs; a new deadline re-enters this state so that the worker input (kept in snapshots) carries it.',
          on: {
            'attempt.armed': { guard: 'attemptIsCurrent', target: 'running', reenter: true, actions: 'storeDeadline' },
          },
          invoke: {
            id: 'initiate',
            src: 'initiator',
            input: ({ context }: { context: Ctx }): InitiatorInput => ({
              phase: 'initiate',
              userId: context.userId,
              userType: context.userType,
              request: {
                userId: context.userId,
                isRestartIdentification: context.restart,
                ...context.initiate,
                correlationType: context.initiate.correlationType ?? 0,
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
        'initiate.ok': [
          { guard: 'initiateIsVendorError', target: 'failed', actions: { type: 'failVendorError', params: { phase: 'initiate' } } },
          { guard: 'initiateUrlIsSafe', target: 'identifying', actions: 'storeIdentificationUrl' },
          { target: 'failed', actions: { type: 'failUnsafeUrl', params: { phase: 'initiate' } } },
        ],
        CANCEL: { target: 'failed', actions: 'failCancelled' },
      },
    },
    identifying: {
      description: 'The user is at the ID-capture URL; waits for the Success or Fail redirect (a Fail redirect is confirmed with the provider first).',
      tags: ['awaitingUser'],
      on: {
        REDIRECT: [
          { guard: { type: 'redirectIs', params: { outcome: 'success' } }, target: 'pollingA', actions: 'storeCallbackId' },
          { guard: { type: 'redirectIs', params: { outcome: 'fail' } }, target: 'pollingA.confirming' },
        ],
        RESTART: { target: 'initiating', actions: 'markRestart' },
        CANCEL: { target: 'failed', actions: 'failCancelled' },
      },
    },
    pollingA: {
      description: 'Polls the status until SIGN_SESSION_ID_SUCCESSFULLY_CREATED; fails after phaseTimeoutMs without a status change.',
      tags: ['working'],
      entry: { type: 'beginStep', params: { phase: 'A' } },
      exit: 'endStep',
      initial: 'running',
      states: {
        running: {
          description: 'The worker runs; a new deadline or status re-enters this state so that the worker input (kept in snapshots) carries it.',
          on: {
            'attempt.armed': { guard: 'attemptIsCurrent', target: 'running', reenter: true, actions: 'storeDeadline' },
            'poll.status': {
              guard: { type: 'statusIs', params: { phase: 'A', is: 'pending' } },
              target: 'running',
              reenter: true,
              actions: 'recordPendingStatus',
            },
          },
          invoke: { id: 'pollA', src: 'statusPoller', input: ({ context }: { context: Ctx }) => pollerInput(context, 'A', false) },
        },
        confirming: {
          description:
            'After a Fail redirect: polls for at most failConfirmMs. A status that completes the step goes on as after Success, ERROR fails (vendor-error), nothing decisive fails (redirect-failed).',
          on: {
            'attempt.armed': { guard: 'attemptIsCurrent', target: 'confirming', reenter: true, actions: 'storeDeadline' },
            'attempt.timeout': { guard: 'attemptIsCurrent', target: '#identification.failed', actions: { type: 'failRedirect', params: { phase: 'A' } } },
            REDIRECT: { guard: { type: 'redirectIs', params: { outcome: 'success' } }, target: 'running', actions: ['storeCallbackId', 'restartDeadline'] },
          },
          invoke: { id: 'confirmA', src: 'statusPoller', input: ({ context }: { context: Ctx }) => pollerInput(context, 'A', true) },
        },
      },
      on: {
        'poll.status': [
          { guard: 'signingReadyWithSafeUrl', target: 'phaseA', actions: 'storeSigningUrl' },
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
      tags: ['awaitingUser'],
      on: {
        CONTINUE: { target: 'signing' },
        RESTART: { target: 'initiating', actions: 'markRestart' },
        CANCEL: { target: 'failed', actions: 'failCancelled' },
      },
    },
    signing: {
      description: 'The user is at the signing URL; waits for the Success or Fail redirect (a Fail redirect is confirmed with the provider first).',
      tags: ['awaitingUser'],
      on: {
        REDIRECT: [
          { guard: { type: 'redirectIs', params: { outcome: 'success' } }, target: 'pollingB', actions: 'storeCallbackId' },
          { guard: { type: 'redirectIs', params: { outcome: 'fail' } }, target: 'pollingB.confirming' },
        ],
        RESTART: { target: 'initiating', actions: 'markRestart' },
        CANCEL: { target: 'failed', actions: 'failCancelled' },
      },
    },
    pollingB: {
      description: 'Polls the status until DOCUMENT_SIGN_SUCCESS (a stale SIGN_SESSION_ID_SUCCESSFULLY_CREATED means wait).',
      tags: ['working'],
      entry: { type: 'beginStep', params: { phase: 'B' } },
      exit: 'endStep',
      initial: 'running',
      states: {
        running: {
          description: 'The worker runs; a new deadline or status re-enters this state so that the worker input (kept in snapshots) carries it.',
          on: {
            'attempt.armed': { guard: 'attemptIsCurrent', target: 'running', reenter: true, actions: 'storeDeadline' },
            'poll.status': {
              guard: { type: 'statusIs', params: { phase: 'B', is: 'pending' } },
              target: 'running',
              reenter: true,
              actions: 'recordPendingStatus',
            },
          },
          invoke: { id: 'pollB', src: 'statusPoller', input: ({ context }: { context: Ctx }) => pollerInput(context, 'B', false) },
        },
        confirming: {
          description:
            'After a Fail redirect: polls for at most failConfirmMs. DOCUMENT_SIGN_SUCCESS goes on to finalize, ERROR fails (vendor-error), nothing decisive fails (redirect-failed).',
          on: {
            'attempt.armed': { guard: 'attemptIsCurrent', target: 'confirming', reenter: true, actions: 'storeDeadline' },
            'attempt.timeout': { guard: 'attemptIsCurrent', target: '#identification.failed', actions: { type: 'failRedirect', params: { phase: 'B' } } },
            REDIRECT: { guard: { type: 'redirectIs', params: { outcome: 'success' } }, target: 'running', actions: ['storeCallbackId', 'restartDeadline'] },
          },
          invoke: { id: 'confirmB', src: 'statusPoller', input: ({ context }: { context: Ctx }) => pollerInput(context, 'B', true) },
        },
      },
      on: {
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
      description:
        'DOCUMENT_SIGN_SUCCESS seen; POST finalize with one fixed payload, retried (also on 400: the provider is behind its own status) until finalizeTimeoutMs.',
      tags: ['working'],
      entry: { type: 'beginStep', params: { phase: 'finalize' } },
      exit: 'endStep',
      initial: 'running',
      states: {
        running: {
          description: 'The worker runs; a new deadline re-enters this state so that the worker input (kept in snapshots) carries it.',
          on: {
            'attempt.armed': { guard: 'attemptIsCurrent', target: 'running', reenter: true, actions: 'storeDeadline' },
          },
          invoke: { id: 'finalize', src: 'finalizer', input: ({ context }: { context: Ctx }) => finalizerInput(context, false) },
        },
        cancelling: {
          description:
            'CANCEL met finalize: the request in flight may already have been answered. One last finalize with the same payload (idempotent): a result is kept (finalized), anything else ends cancelled. Waits at most failConfirmMs.',
          on: {
            'attempt.armed': { guard: 'attemptIsCurrent', target: 'cancelling', reenter: true, actions: 'storeDeadline' },
            'attempt.failed': { guard: 'attemptIsCurrent', target: '#identification.failed', actions: 'failCancelled' },
            'attempt.timeout': { guard: 'attemptIsCurrent', target: '#identification.failed', actions: 'failCancelled' },
          },
          invoke: { id: 'finalizeOnCancel', src: 'finalizer', input: ({ context }: { context: Ctx }) => finalizerInput(context, true) },
        },
      },
      on: {
        'finalize.ok': { target: 'finalized', actions: 'storeResult' },
        CANCEL: { target: '.cancelling', actions: 'restartDeadline' },
      },
    },
    finalized: {
      description: 'Final. Output: { correlationId, individualId }.',
      type: 'final',
      tags: ['ended'],
    },
    failed: {
      description:
        'Not final: context.failure says why. RETRY re-enters the failed step when failure.retryable (always for finalize, with the same payload); RESTART initiates again.',
      tags: ['ended'],
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

function finalizerInput(context: Ctx, once: boolean): FinalizerInput {
  return {
    phase: 'finalize',
    userId: context.userId,
    userType: context.userType,
    once,
    payload: context.finalizePayload!,
    deadlineAt: context.deadlineAt,
    nextAttemptAt: once ? null : context.nextAttemptAt,
    timeoutMs: once ? context.polling.failConfirmMs : context.polling.finalizeTimeoutMs,
    polling: context.polling,
  }
}

function pollerInput(context: Ctx, phase: PollPhase, confirm: boolean): PollerInput {
  return {
    phase,
    confirm,
    userId: context.userId,
    userType: context.userType,
    pendingStatuses: context.pendingStatuses,
    lastStatus: normalizeStatus(context.status),
    deadlineAt: context.deadlineAt,
    nextAttemptAt: context.nextAttemptAt,
    timeoutMs: confirm ? context.polling.failConfirmMs : context.polling.phaseTimeoutMs,
    polling: context.polling,
  }
}

/** The type of the identification chart. */
export type IdentificationMachine = typeof identificationMachine
