import type { Messages } from './types.js'

/** English. */
export const en: Messages = {
  locale: 'en',
  states: {
    idle: 'Not started',
    initiating: 'Starting…',
    identifying: 'Waiting for your ID check',
    pollingA: 'Checking your ID…',
    phaseA: 'Ready to sign',
    signing: 'Waiting for your signature',
    pollingB: 'Checking your signature…',
    phaseB: 'Completing…',
    finalized: 'Your identification is complete',
    failed: 'Your identification is not complete',
  },
  failures: {
    'vendor-error': {
      any: { title: 'The check did not pass', detail: 'The identity provider could not confirm you. Please start again.' },
      initiate: { title: 'The identification cannot start', detail: 'The provider cannot identify this account right now. Please start again later, or contact support.' },
      A: { title: 'Your ID could not be confirmed', detail: 'The provider could not verify your identity document. Please start again with a clear photo of your ID.' },
      B: { title: 'The signature was not accepted', detail: 'The provider did not accept the signature. Please start again.' },
    },
    timeout: {
      any: { title: 'This is taking too long', detail: 'We did not get an answer in time. Please try again.' },
      initiate: { title: 'We could not start the identification', detail: 'The identity provider did not answer in time. Please try again in a moment.' },
      A: { title: 'Your ID check is taking too long', detail: 'There is no result for your ID yet. Please try again; if it keeps happening, start again.' },
      B: { title: 'Your signature is taking too long', detail: 'There is no confirmation of your signature yet. Please try again.' },
      finalize: { title: 'We could not complete the identification', detail: 'Your signature is saved; completing it did not work yet. Please try again.' },
    },
    unauthorized: {
      any: { title: 'The service is not available', detail: 'The identity service refused our access. This is not your fault: please contact support.' },
    },
    rejected: {
      any: { title: 'The identification was refused', detail: 'The provider refused the request. Please contact support.' },
      initiate: { title: 'Your account cannot be identified yet', detail: 'Some details are missing or your account is not ready for identification. Please contact support.' },
      A: { title: 'Your identification session was not found', detail: 'The provider does not know this session. Please start again.' },
      B: { title: 'Your signing session was not found', detail: 'The provider does not know this session. Please start again.' },
      finalize: { title: 'We could not complete the identification', detail: 'Your signature is saved; completing it was refused. Please try again, or contact support if it keeps happening.' },
    },
    'redirect-failed': {
      any: { title: 'The step was not completed', detail: 'The provider says the step was not completed. Please start again.' },
      A: { title: 'Your ID check was not completed', detail: 'It looks like the ID check was stopped before the end. Please start again.' },
      B: { title: 'The document was not signed', detail: 'It looks like the signing was stopped before the end. Please start again.' },
      none: { title: 'No identification in progress', detail: 'This session has expired, or the identification was started on another device. Please start again.' },
    },
    'unsafe-url': {
      any: { title: 'We cannot open the next step', detail: 'We received an unexpected address and did not open it, for your safety. Please contact support.' },
    },
    cancelled: {
      any: { title: 'The identification was cancelled', detail: 'You can start again at any time.' },
    },
  },
  actions: { retry: 'Try again', restart: 'Start again', support: 'Contact support' },
}
