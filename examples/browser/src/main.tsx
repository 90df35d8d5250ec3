import { StrictMode, useEffect, useMemo, useRef, useState } from 'react'
import { createRoot } from 'react-dom/client'
import { createHttpApi, type IdentificationApi } from '10npay-identification'
import { useIdentification } from '10npay-identification/react'
import { Timeline, useTimeline, type TimelineApi } from './timeline'

/*
 * The demo runs the flow against the simulator, which serves this page on its own origin.
 * It fetches a token from the simulator's token endpoint with the demo credentials — only
 * because this is a demo: real integrations keep client credentials on a backend.
 */
const origin = location.origin
let token: Promise<string> | undefined
async function getAccessToken({ forceRefresh }: { forceRefresh: boolean }): Promise<string> {
  if (!token || forceRefresh) {
    token = fetch(`${origin}/connect/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${btoa('demo-client:demo-secret')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'demo-client', grant_type: 'password', username: 'demo', password: 'demo' }),
    })
      .then((r) => r.json())
      .then((j: { access_token: string }) => j.access_token)
  }
  return token
}

/** The API, with every status answer and error written to the timeline. */
function loggingApi(api: IdentificationApi, log: TimelineApi): IdentificationApi {
  return {
    initiate: async (req, o) => {
      log.add('request', `initiate${req.isRestartIdentification ? ' (restart)' : ''}`)
      return api.initiate(req, o)
    },
    getStatus: async (req, o) => {
      try {
        const r = await api.getStatus(req, o)
        log.add('poll', r.videoIdentificationStatus ?? '(null)')
        return r
      } catch (err) {
        log.add('error', `poll failed: ${(err as Error).message}`)
        throw err
      }
    },
    finalize: async (req, o) => {
      log.add('request', 'finalize')
      try {
        return await api.finalize(req, o)
      } catch (err) {
        log.add('error', `finalize failed: ${(err as Error).message}`)
        throw err
      }
    },
  }
}

const STATES: { name: string; label: string }[] = [
  { name: 'idle', label: 'nothing started' },
  { name: 'initiating', label: 'POST initiate' },
  { name: 'identifying', label: 'at ID capture' },
  { name: 'pollingA', label: 'phase A polling' },
  { name: 'phaseA', label: 'signing URL known' },
  { name: 'signing', label: 'at signing' },
  { name: 'pollingB', label: 'phase B polling' },
  { name: 'phaseB', label: 'POST finalize' },
  { name: 'finalized', label: 'done' },
  { name: 'failed', label: 'RETRY / RESTART' },
]

function Chart({ state }: { state: string }) {
  const index = STATES.findIndex((s) => s.name === state)
  return (
    <div className="chart" data-testid="chart">
      {STATES.map((s, i) => {
        const cls = ['node', s.name, s.name === state ? 'current' : '', state !== 'failed' && i < index && s.name !== 'failed' ? 'done' : '']
        return (
          <div key={s.name} className={cls.join(' ')} data-state={s.name} aria-current={s.name === state ? 'step' : undefined}>
            {s.name}
            <small>{s.label}</small>
          </div>
        )
      })}
    </div>
  )
}

const params = new URLSearchParams(location.search)
const USER_KEY = 'demo:userId'

function Flow({ userId, log }: { userId: number; log: TimelineApi }) {
  const api = useMemo(() => loggingApi(createHttpApi({ baseUrl: origin, getAccessToken }), log), [log])
  const flow = useIdentification({ api, userId, userType: 0, onWarning: (w) => log.add('error', w) })
  const { state, failure, result, text } = flow // text: the state and the failure in the browser's language
  const last = useRef('')
  useEffect(() => {
    if (last.current !== state) {
      log.add('state', last.current === '' ? `page loaded in ${state}` : state)
      last.current = state
    }
  }, [state, log])
  // On the Success/Fail redirect: report it once, then drop the query from the address.
  useEffect(() => {
    const redirect = params.get('redirect')
    if (redirect === 'success' || redirect === 'fail') {
      log.add('state', `redirect: ${redirect} (${params.get('step') ?? 'step'})`)
      flow.resume({ outcome: redirect, bTrustAppCallBackId: params.get('bTrustAppCallBackId') })
      history.replaceState(null, '', location.pathname)
      params.delete('redirect')
    }
  }, [])
  return (
    <>
      <section className="card">
        <h2>State</h2>
        <p className="state" data-testid="state">
          Current state: <b>{state}</b>
        </p>
        <p className="state-text" data-testid="state-text" lang={navigator.language}>
          {text.state}
        </p>
        <Chart state={state} />
        {result && (
          <div className="ids" data-testid="result">
            <span>correlationId</span>
            <span data-testid="correlationId">{result.correlationId}</span>
            <span>individualId</span>
            <span data-testid="individualId">{result.individualId}</span>
          </div>
        )}
        {failure && text.failure && (
          <div className="failure" data-testid="failure">
            <p data-testid="failure-text" lang={navigator.language}>
              <b>{text.failure.title}</b> {text.failure.detail} <i>({text.failure.actionLabel})</i>
            </p>
            <small>
              <b>{failure.reason}</b>: {failure.message}
            </small>
          </div>
        )}
      </section>
      <section className="card">
        <h2>Actions</h2>
        <div className="row">
          <button data-testid="start" onClick={() => flow.start()} disabled={state !== 'idle'}>
            Start identification
          </button>
          <button data-testid="continue" onClick={() => flow.continue()} disabled={state !== 'phaseA'}>
            Continue to signing
          </button>
          <button className="secondary" data-testid="retry" onClick={() => flow.retry()} disabled={!failure?.retryable}>
            Retry
          </button>
          <button className="secondary" data-testid="restart" onClick={() => flow.restart()} disabled={state === 'idle' || state === 'initiating' || state === 'phaseB'}>
            Restart
          </button>
          <button className="secondary" data-testid="cancel" onClick={() => flow.cancel()} disabled={['idle', 'finalized', 'failed'].includes(state)}>
            Cancel
          </button>
        </div>
      </section>
    </>
  )
}

function App() {
  const log = useTimeline()
  // The user id lives in sessionStorage too: the provider's redirects come back without it.
  const [userId, setUserId] = useState(() => {
    const id = Number(params.get('userId') ?? sessionStorage.getItem(USER_KEY) ?? 4242)
    sessionStorage.setItem(USER_KEY, String(id))
    return id
  })
  const [scenario, setScenario] = useState('happy')
  const [epoch, setEpoch] = useState(0)
  const choose = async (id: number, sc: string) => {
    sessionStorage.setItem(USER_KEY, String(id))
    await fetch(`${origin}/_demo/scenario`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: id, scenario: sc }) })
    setUserId(id)
    setScenario(sc)
    log.clear()
    setEpoch((e) => e + 1)
  }
  return (
    <main>
      <h1>10npay web identification</h1>
      <p className="sub">A demo of the statechart in the browser, against the local provider simulator.</p>
      <section className="card">
        <h2>Setup</h2>
        <div className="row">
          <label>
            User id <input data-testid="userId" type="number" min={1} value={userId} onChange={(e) => setUserId(Number(e.target.value))} />
          </label>
          <label>
            Scenario{' '}
            <select data-testid="scenario" value={scenario} onChange={(e) => setScenario(e.target.value)}>
              {['happy', 'slow', 'flaky', 'vendor-error', 'timeout', 'expired-token', 'unknown-user'].map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
          <button className="secondary" data-testid="apply" onClick={() => void choose(userId, scenario)}>
            Use this user and scenario
          </button>
        </div>
      </section>
      <Flow key={`${userId}:${epoch}`} userId={userId} log={log} />
      <section className="card">
        <h2>Timeline</h2>
        <Timeline entries={log.entries} />
      </section>
    </main>
  )
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
)
