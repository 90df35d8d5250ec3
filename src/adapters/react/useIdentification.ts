import { useEffect, useState, useSyncExternalStore } from 'react'
import {
  createBrowserIdentification,
  type BrowserIdentification,
  type BrowserIdentificationOptions,
  type IdentificationSnapshot,
} from '../browser/browserIdentification.js'
import { viewOf } from '../../host/flowHost.js'
import type { IdentificationView } from '../../machine/types.js'

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
}

/**
 * Runs a browser identification flow for a component. The options are read once, when the
 * component mounts; the flow stops when it unmounts (the stored flow stays, so a remount,
 * StrictMode's included, goes on where it was).
 *
 * @example
 * const { state, failure, start, resume } = useIdentification({ api, userId: 42, userType: 0 })
 */
export function useIdentification(options: BrowserIdentificationOptions): UseIdentification {
  const [flow] = useState(() => createBrowserIdentification(options))
  useEffect(() => () => flow.stop(), [flow])
  const snapshot = useSyncExternalStore(flow.subscribe, flow.getSnapshot, flow.getSnapshot)
  return {
    snapshot,
    ...viewOf(snapshot),
    start: () => flow.start(),
    resume: (o) => flow.resume(o),
    continue: () => flow.continue(),
    retry: () => flow.retry(),
    restart: () => flow.restart(),
    cancel: () => flow.cancel(),
    flow,
  }
}
