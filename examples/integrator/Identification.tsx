import { useEffect } from 'react'
import type { BrowserIdentificationOptions } from '10npay-identification/browser'
import { useIdentification } from '10npay-identification/react'

/**
 * The identification step of an app: where the flow stands, what went wrong, and a button for
 * each thing the user can do now. On the page the provider redirects back to, `redirect` says
 * which URL it was (Success or Fail).
 */
export function Identification({ options, redirect }: { options: BrowserIdentificationOptions; redirect?: 'success' | 'fail' }) {
  const { state, failure, result, snapshot, start, resume, continue: goOn, retry, restart, cancel } = useIdentification(options)
  useEffect(() => {
    if (redirect) resume({ outcome: redirect })
  }, [redirect])
  return (
    <section>
      <output aria-label="state">{state}</output>
      {state === 'failed' && <p role="alert">{failure.message}</p>}
      {state === 'finalized' && <p>Identified: {result.individualId}</p>}
      {snapshot.can({ type: 'START' }) && <button onClick={start}>Start</button>}
      {snapshot.can({ type: 'CONTINUE' }) && <button onClick={goOn}>Continue</button>}
      {snapshot.can({ type: 'RETRY' }) && <button onClick={retry}>Try again</button>}
      {snapshot.can({ type: 'RESTART' }) && <button onClick={restart}>Restart</button>}
      {snapshot.can({ type: 'CANCEL' }) && <button onClick={cancel}>Cancel</button>}
    </section>
  )
}
