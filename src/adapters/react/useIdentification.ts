import { useEffect, useState, useSyncExternalStore } from 'react'
import {
  createBrowserIdentification,
  type BrowserIdentification,
  type BrowserIdentificationOptions,
  type IdentificationSnapshot,
} from '../browser/browserIdentification.js'
import { viewOf } from '../../host/flowHost.js'
import type { IdentificationView } from '../../machine/types.js'
import { describeFailure, describeState, type FailureAction, type FailureText, type Messages } from '../../messages/index.js'

/**
 * What {@link useIdentification} returns: where the flow stands (a union on `state`: `result`
 * only when `finalized`, `failure` only when `failed`) and what the component can do.
 */
export type UseIdentification = IdentificationView & {
  /** The current snapshot (re-rendered on every change). */
  snapshot: IdentificationSnapshot
  /** Initiates (or restarts a failed flow) and navigates to the ID-capture URL. */
  start(): void
  /** Reports the provider's redirect on the app's Success/Fail page. */
  resume: BrowserIdentification['resume']
  /** In `phaseA`: navigates to the signing URL. (Named `continue`: destructure it as `continue: goOn`.) */
  continue(): void
  retry(): void
  restart(): void
  cancel(): void
  /** The flow behind the hook (its `actor` works with `@xstate/react`'s `useSelector`). */
  flow: BrowserIdentification
  /**
   * The state and the failure in words for the person, in their language
   * (`describeState`, `describeFailure`).
   */
  text: { state: string; failure: (FailureText & { action: FailureAction; actionLabel: string }) | null }
}

/** Options of the texts {@link useIdentification} gives. */
export interface UseIdentificationTextOptions {
  /** @default navigator.language, else 'en' */
  locale?: string
  /** Texts of your own, instead of the built-in ones. */
  messages?: Messages
}

/**
 * Runs a browser identification flow for a component. The options are read once, when the
 * component mounts; the flow stops when it unmounts (the stored flow stays, so a remount,
 * StrictMode's included, goes on where it was).
 *
 * @param textOptions the language of `text` (default: the browser's)
 * @example
 * const { state, text, start, resume } = useIdentification({ api, userId: 42, userType: 0 })
 */
export function useIdentification(options: BrowserIdentificationOptions, textOptions: UseIdentificationTextOptions = {}): UseIdentification {
  const [flow] = useState(() => createBrowserIdentification(options))
  useEffect(() => () => flow.stop(), [flow])
  const snapshot = useSyncExternalStore(flow.subscribe, flow.getSnapshot, flow.getSnapshot)
  const view = viewOf(snapshot)
  const lang = {
    locale: textOptions.locale ?? (globalThis as { navigator?: { language?: string } }).navigator?.language ?? 'en',
    ...(textOptions.messages && { messages: textOptions.messages }),
  }
  return {
    snapshot,
    ...view,
    text: { state: describeState(view.state, lang), failure: view.failure ? describeFailure(view.failure, lang) : null },
    start: () => flow.start(),
    resume: (o) => flow.resume(o),
    continue: () => flow.continue(),
    retry: () => flow.retry(),
    restart: () => flow.restart(),
    cancel: () => flow.cancel(),
    flow,
  }
}
