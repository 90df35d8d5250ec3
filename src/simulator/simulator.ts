import { Hono, type Context } from 'hono'
import { donePage, stepPage } from './pages.js'
import { FLAKY_PATTERN, SCENARIO_SLOWDOWN, type Behaviour, type Scenario, type StepFault, type SimulatorTiming } from './scenarios.js'
import { drawFault, drawTokenFault, seededRandom, type Fault, type FaultProfile } from './faults.js'
import { hugeBody, trickleBody } from './bodies.js'

/** The credentials the simulated token endpoint accepts. */
export interface SimulatorCredentials {
  /** @default 'demo-client' */
  clientId?: string
  /** @default 'demo-secret' */
  clientSecret?: string
  /** @default 'demo' */
  username?: string
  /** @default 'demo' */
  password?: string
}

/** Options of {@link createSimulator}. */
export interface SimulatorOptions {
  /**
   * The scenario of every user without one of its own.
   * @default 'happy'
   */
  scenario?: Scenario
  /** Per-user scenarios, by user id. */
  scenarios?: Record<number, Scenario>
  /** Per-user step behaviours, by user id (finer than scenarios; they win over them). */
  behaviours?: Record<number, Behaviour>
  /** How long the provider takes. */
  timing?: SimulatorTiming
  /** The accepted credentials. */
  credentials?: SimulatorCredentials
  /**
   * Where the fake pages send the browser after Complete / Fail. `{step}` is replaced by
   * `identification` or `signing`, `{userId}` by the user id, `{base}` by the simulator's URL.
   * @default the simulator's own `/done/success` and `/done/fail` pages
   */
  redirects?: { success?: string; fail?: string }
  /**
   * The URL the simulator is reachable at, used in the URLs it hands out.
   * @default 'http://127.0.0.1' (startSimulator sets its real address)
   */
  baseUrl?: string
  /** The time source. @default Date.now */
  now?: () => number
  /** Faults injected into every user's API requests (see {@link FaultProfile}). */
  faults?: FaultProfile
  /** Per-user fault profiles, by user id (they win over `faults`). */
  userFaults?: Record<number, FaultProfile>
  /**
   * Seed of the fault draws: the same seed gives the same faults in the same order per user.
   * @default 1
   */
  seed?: number
}

/** One request the simulator answered. */
export interface SimulatorRequest {
  method: string
  path: string
  /** The user id the request was about, when it had one. */
  userId?: number
  /** `initiate`, `status`, `finalize`, `token`, `page` or `other`. */
  endpoint: 'initiate' | 'status' | 'finalize' | 'token' | 'page' | 'other'
  status: number
  at: number
  /** The JSON body of initiate and finalize requests. */
  body?: unknown
  /** The fault injected into this request by the fault profile (`refused`, `redirect`, `slow-body`, …), if one was. */
  fault?: Exclude<Fault['kind'], 'none'>
}

/** The faults that change how a good answer is sent. */
type Spoil = Extract<Fault, { kind: 'truncated' | 'html' | 'wrong-shape' | 'slow-body' | 'huge-body' }>

type Stage = 'started' | 'captured' | 'signed' | 'capture-failed' | 'sign-failed'

interface Session {
  staleLeft: number
  id: string
  userId: number
  userType: number
  stage: Stage
  capturedAt: number
  signedAt: number
  restarts: number
  result?: { correlationId: string; individualId: number }
}

/** The simulator's logic without a socket. */
export interface Simulator {
  /**
   * A `fetch` that answers from the simulator in process: connection resets and refusals reject
   * as Node's `fetch` does (`TypeError: fetch failed`), with no I/O; streamed bodies (the
   * `slowBody` and `hugeBody` faults) honour a cancel.
   */
  fetch: typeof fetch
  /** The Hono app, for mounting. Its `fetch` marks a connection reset or refusal with the `x-simulator-reset` header (`reset` / `refused`). */
  app: Hono
  /** Every request answered, in order. */
  requests: SimulatorRequest[]
  /** Sets the scenario of one user. */
  setScenario(userId: number, scenario: Scenario): void
  /** Sets the fault profile of one user. */
  setFaults(userId: number, faults: FaultProfile): void
  /** Sets the step behaviours of one user (they win over its scenario). */
  setBehaviour(userId: number, behaviour: Behaviour): void
  /** Issues an access token directly (as the token endpoint would), for tests. */
  issueToken(): string
  /** Simulates the user pressing Complete or Fail on the current page of the user's session. */
  act(userId: number, step: 'identification' | 'signing', outcome: 'success' | 'fail'): void
  /** Changes the base URL used in the URLs handed out. */
  setBaseUrl(url: string): void
  /** Changes where the fake pages redirect after Complete / Fail (see `SimulatorOptions.redirects`). */
  setRedirects(redirects: { success?: string; fail?: string }): void
  /** The credentials in force. */
  readonly credentials: Required<SimulatorCredentials>
}

const RESET_HEADER = 'x-simulator-reset'
const INT32 = /^[1-9]\d{0,9}$/

let tokenCounter = 0

/**
 * Creates the provider simulator as an in-process `fetch` handler: the token endpoint
 * (password grant with HTTP Basic client credentials), initiate, status and finalize with the
 * provider's paths, bodies and error codes, and fake ID-capture and signing pages.
 *
 * @example
 * const sim = createSimulator({ scenario: 'happy', timing: { captureMs: 100, signMs: 100 } })
 * const api = createHttpApi({ baseUrl: 'http://127.0.0.1', fetch: sim.fetch, getAccessToken: () => sim.issueToken() })
 */
export function createSimulator(options: SimulatorOptions = {}): Simulator {
  const now = options.now ?? Date.now
  const timing = { captureMs: 3000, staleMs: 1000, signMs: 3000, tokenTtlMs: 3600_000, ...options.timing }
  const credentials: Required<SimulatorCredentials> = {
    clientId: 'demo-client',
    clientSecret: 'demo-secret',
    username: 'demo',
    password: 'demo',
    ...options.credentials,
  }
  let baseUrl = (options.baseUrl ?? 'http://127.0.0.1').replace(/\/+$/, '')
  const defaultScenario: Scenario = options.scenario ?? 'happy'
  let redirects = { ...options.redirects }
  const scenarios = new Map<number, Scenario>(Object.entries(options.scenarios ?? {}).map(([k, v]) => [Number(k), v]))
  const behaviours = new Map<number, Behaviour>(Object.entries(options.behaviours ?? {}).map(([k, v]) => [Number(k), v]))
  const sessions = new Map<number, Session>()
  const sessionsById = new Map<string, Session>()
  const tokens = new Map<string, number>() // token -> expiresAt
  const apiCalls = new Map<number, number>() // userId -> API calls so far
  const expiredOnce = new Set<number>()
  const finalizeCalls = new Map<number, number>()
  const requests: SimulatorRequest[] = []
  const userFaults = new Map<number, FaultProfile>(Object.entries(options.userFaults ?? {}).map(([k, v]) => [Number(k), v]))
  const faultRandom = new Map<number, () => number>()
  const seed = options.seed ?? 1
  let apiCallCount = 0
  let firstToken: string | undefined
  const faultsOf = (userId: number) => userFaults.get(userId) ?? options.faults
  /** The fault drawn for each request that got one, for the request log. */
  const faultOf = new WeakMap<Request, Exclude<Fault['kind'], 'none'>>()
  let tokenRandom: (() => number) | undefined
  /** The token endpoint's fault for this request (from the simulator-wide profile). */
  function tokenFault() {
    const profile = options.faults
    if (!profile?.tokenServerError && !profile?.tokenRedirect) return { kind: 'none' } as const
    tokenRandom ??= seededRandom((seed * 2654435761) ^ 0x70c3e)
    return drawTokenFault(profile, tokenRandom)
  }
  /** Applies the injected fault of one request: an early answer, or none to answer normally (maybe after a delay, maybe spoilt). */
  async function injected(c: Context, userId: number): Promise<{ early?: Response; spoil?: Spoil }> {
    const profile = faultsOf(userId)
    if (!profile) return {}
    apiCallCount++
    if (profile.expireFirstTokenAfter !== undefined && apiCallCount >= profile.expireFirstTokenAfter && firstToken) {
      tokens.delete(firstToken)
      firstToken = undefined
    }
    let rnd = faultRandom.get(userId)
    if (!rnd) {
      rnd = seededRandom((seed * 2654435761) ^ userId)
      faultRandom.set(userId, rnd)
    }
    const f = drawFault(profile, rnd)
    if (f.kind !== 'none') faultOf.set(c.req.raw, f.kind)
    switch (f.kind) {
      case 'server-error':
        return { early: problem(c, f.status, 'Server Error', 'injected fault') }
      case 'rate-limit':
        c.header('Retry-After', String(f.retryAfterSeconds))
        return { early: problem(c, 429, 'Too Many Requests') }
      case 'reset':
      case 'refused':
        return { early: new Response(null, { status: 599, headers: { [RESET_HEADER]: f.kind } }) }
      case 'redirect': {
        const url = new URL(c.req.url)
        return { early: c.redirect(`${f.to.replace(/\/+$/, '')}${url.pathname}${url.search}`, f.status) }
      }
      case 'hang':
      case 'latency': {
        // Late, but never later than the client waits: the timer goes when the request is aborted.
        const signal = c.req.raw.signal
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, f.ms)
          function done() {
            clearTimeout(t)
            signal.removeEventListener('abort', done)
            resolve()
          }
          signal.addEventListener('abort', done)
        })
        return {}
      }
      case 'truncated':
      case 'html':
      case 'wrong-shape':
      case 'slow-body':
      case 'huge-body':
        return { spoil: f }
      default:
        return {}
    }
  }
  /** Spoils a good JSON answer as the fault says. */
  const spoilt = (c: Context, body: unknown, spoil: Spoil | undefined): Response => {
    const json = { 'content-type': 'application/json' }
    switch (spoil?.kind) {
      case 'truncated': {
        const text = JSON.stringify(body)
        return c.body(text.slice(0, Math.max(1, Math.floor(text.length / 2))), 200, json)
      }
      case 'html':
        return c.html('<html><body><h1>502 Bad Gateway</h1></body></html>', 200)
      case 'wrong-shape':
        return c.json([{ unexpected: true, videoIdentificationStatus: 42 }], 200)
      case 'slow-body':
        return new Response(trickleBody(JSON.stringify(body), spoil.byteMs), { status: 200, headers: json })
      case 'huge-body': {
        // The right answer with a huge `padding` member: valid JSON that only a size cap refuses.
        const text = JSON.stringify(body)
        return new Response(hugeBody(`${text.slice(0, -1)},"padding":"`, '"}', spoil.bytes), { status: 200, headers: json })
      }
      default:
        return c.json(body as object)
    }
  }
  let individualIds = 1000

  const scenarioOf = (userId: number): Scenario => scenarios.get(userId) ?? defaultScenario
  /** The behaviour of one step: the explicit one, else what the scenario implies. */
  function behaviourOf<K extends keyof Behaviour>(userId: number, step: K): NonNullable<Behaviour[K]> | 'ok' {
    const b = behaviours.get(userId)?.[step]
    if (b !== undefined) return b
    const sc = scenarioOf(userId)
    if (sc === 'unknown-user') return 'rejected'
    if (step === 'phaseA' && (sc === 'vendor-error' || sc === 'timeout')) return sc as NonNullable<Behaviour[K]>
    return 'ok'
  }
  const stepFault = (c: Context, b: string): Response | null =>
    b === 'unauthorized'
      ? problem(c, 401, 'Unauthorized', 'token not accepted for this user')
      : b === 'rejected'
        ? problem(c, 404, 'Not Found', 'unknown userId')
        : b === 'unavailable'
          ? problem(c, 503, 'Service Unavailable')
          : null
  const isFault = (b: string): b is StepFault => b === 'unauthorized' || b === 'rejected' || b === 'unavailable'
  const scale = (userId: number) => SCENARIO_SLOWDOWN[scenarioOf(userId)] ?? 1

  let tokenCountLocal = 0
  function issueToken(): string {
    tokenCounter += 1
    const t = `sim.${tokenCounter.toString(36)}.${Math.random().toString(36).slice(2, 12)}`
    tokens.set(t, now() + timing.tokenTtlMs)
    if (tokenCountLocal++ === 0) firstToken = t
    return t
  }

  const problem = (c: Context, status: number, title: string, detail?: string) =>
    c.json({ type: 'about:blank', title, status, ...(detail !== undefined && { detail }) }, status as 400)

  function log(c: Context, entry: Omit<SimulatorRequest, 'method' | 'path' | 'at'>) {
    const url = new URL(c.req.url)
    const fault = faultOf.get(c.req.raw)
    requests.push({ method: c.req.method, path: url.pathname, at: now(), ...entry, ...(fault && { fault }) })
  }

  /** Authorises an API call; answers the error response, or `null` to go on. */
  function authorize(c: Context, userId: number | undefined): Response | null {
    const header = c.req.header('authorization') ?? ''
    const m = /^Bearer (\S+)$/.exec(header)
    const token = m?.[1]
    const exp = token === undefined ? undefined : tokens.get(token)
    if (token === undefined || exp === undefined || exp <= now()) {
      return problem(c, 401, 'Unauthorized', 'missing or expired token')
    }
    if (userId !== undefined && scenarioOf(userId) === 'expired-token' && !expiredOnce.has(userId)) {
      expiredOnce.add(userId)
      tokens.delete(token)
      return problem(c, 401, 'Unauthorized', 'token expired')
    }
    return null
  }

  /** The flaky scenario's fault for this call, if any. */
  function fault(c: Context, userId: number, endpoint: 'initiate' | 'status' | 'finalize'): Response | null {
    if (scenarioOf(userId) !== 'flaky') return null
    if (endpoint === 'finalize') {
      const n = (finalizeCalls.get(userId) ?? 0) + 1
      finalizeCalls.set(userId, n)
      return n === 1 ? problem(c, 502, 'Bad Gateway') : null
    }
    const n = apiCalls.get(userId) ?? 0
    apiCalls.set(userId, n + 1)
    switch (FLAKY_PATTERN[n % FLAKY_PATTERN.length]) {
      case '503':
        return problem(c, 503, 'Service Unavailable')
      case 'reset':
        return new Response(null, { status: 599, headers: { [RESET_HEADER]: 'reset' } })
      case 'html':
        return c.html('<html><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>', 200)
      case '429':
        c.header('Retry-After', '1')
        return problem(c, 429, 'Too Many Requests')
      default:
        return null
    }
  }

  /**
   * What stands between a request and its answer, in order: the flaky scenario's fault, the
   * injected fault profile's, then the step behaviour's fault. An early answer is logged and
   * returned; otherwise the step's behaviour and how to spoil the answer.
   */
  async function gate<K extends keyof Behaviour>(
    c: Context,
    entry: Omit<SimulatorRequest, 'method' | 'path' | 'at' | 'status'> & { userId: number },
    step: K,
  ): Promise<{ early: Response } | { early?: undefined; behaviour: NonNullable<Behaviour[K]> | 'ok'; spoil: Spoil | undefined }> {
    const early = (r: Response) => {
      log(c, { ...entry, status: r.status })
      return { early: r }
    }
    const f = fault(c, entry.userId, entry.endpoint as 'initiate' | 'status' | 'finalize')
    if (f) return early(f)
    const inj = await injected(c, entry.userId)
    if (inj.early) return early(inj.early)
    const behaviour = behaviourOf(entry.userId, step)
    if (isFault(behaviour)) return early(stepFault(c, behaviour)!)
    return { behaviour, spoil: inj.spoil }
  }

  /** The session's status now. With `peek` (finalize's check) a stale answer owed after signing is not used up. */
  function statusOf(s: Session, peek = false): { url: string | null; status: string; message: string } {
    const t = now()
    const k = scale(s.userId)
    switch (s.stage) {
      case 'started':
        return { url: `${baseUrl}/capture/${s.id}`, status: 'STARTED', message: '' }
      case 'capture-failed':
      case 'sign-failed':
        return { url: null, status: 'ERROR', message: 'The user cancelled the step' }
      case 'captured': {
        const b = behaviourOf(s.userId, 'phaseA')
        const ready = t - s.capturedAt >= timing.captureMs * k
        if (b === 'timeout' || !ready) return { url: null, status: 'PROCESSING', message: 'Waiting for the identity provider' }
        if (b === 'vendor-error') return { url: null, status: 'ERROR', message: 'Onfido check failed: document unreadable' }
        if (b === 'unsafe-url') return { url: 'javascript:alert(document.cookie)', status: 'SIGN_SESSION_ID_SUCCESSFULLY_CREATED', message: '' }
        if (b === 'signed') {
          // Signed elsewhere: the session moves on to phase B, already complete.
          s.stage = 'signed'
          s.signedAt = t - (timing.signMs + timing.staleMs) * k
          return { url: null, status: 'DOCUMENT_SIGN_SUCCESS', message: '' }
        }
        return { url: `${baseUrl}/sign/${s.id}`, status: 'SIGN_SESSION_ID_SUCCESSFULLY_CREATED', message: '' }
      }
      case 'signed': {
        const b = behaviourOf(s.userId, 'phaseB')
        const dt = t - s.signedAt
        if (s.staleLeft > 0) {
          if (!peek) s.staleLeft--
          return { url: `${baseUrl}/sign/${s.id}`, status: 'SIGN_SESSION_ID_SUCCESSFULLY_CREATED', message: '' }
        }
        if (dt < timing.staleMs * k) return { url: `${baseUrl}/sign/${s.id}`, status: 'SIGN_SESSION_ID_SUCCESSFULLY_CREATED', message: '' }
        if (b === 'timeout' || dt < timing.signMs * k) return { url: null, status: 'PROCESSING', message: 'Waiting for the signature' }
        if (b === 'vendor-error') return { url: null, status: 'ERROR', message: 'B-Trust signature rejected' }
        return { url: null, status: 'DOCUMENT_SIGN_SUCCESS', message: '' }
      }
    }
  }

  const redirectTo = (outcome: 'success' | 'fail', step: string, userId: number) => {
    const tpl = redirects[outcome] ?? `${baseUrl}/done/${outcome}?step={step}&userId={userId}`
    return tpl.replaceAll('{base}', baseUrl).replaceAll('{step}', step).replaceAll('{userId}', String(userId))
  }

  function act(userId: number, step: 'identification' | 'signing', outcome: 'success' | 'fail') {
    const s = sessions.get(userId)
    if (!s) throw new Error(`simulator: user ${userId} has no session`)
    if (step === 'identification') {
      if (s.stage !== 'started') return
      if (outcome === 'success') {
        s.stage = 'captured'
        s.capturedAt = now()
      } else s.stage = 'capture-failed'
    } else {
      if (s.stage !== 'captured') return
      if (outcome === 'success') {
        s.stage = 'signed'
        s.signedAt = now()
        s.staleLeft = faultsOf(userId)?.staleAnswersAfterSign ?? 0
      } else s.stage = 'sign-failed'
    }
  }

  const app = new Hono()

  app.post('/connect/token', async (c) => {
    const tf = tokenFault()
    if (tf.kind !== 'none') {
      faultOf.set(c.req.raw, tf.kind)
      log(c, { endpoint: 'token', status: tf.status })
      if (tf.kind === 'redirect') return c.redirect(`${tf.to.replace(/\/+$/, '')}${new URL(c.req.url).pathname}`, tf.status)
      return c.json({ error: 'temporarily_unavailable' }, 503)
    }
    const basic = /^Basic (\S+)$/.exec(c.req.header('authorization') ?? '')?.[1]
    let clientOk = false
    if (basic) {
      const [id, secret] = atob(basic).split(':')
      clientOk = id === credentials.clientId && secret === credentials.clientSecret
    }
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>)
    if (!clientOk) {
      log(c, { endpoint: 'token', status: 401 })
      return c.json({ error: 'invalid_client' }, 401)
    }
    if (form['grant_type'] !== 'password') {
      log(c, { endpoint: 'token', status: 400 })
      return c.json({ error: 'unsupported_grant_type' }, 400)
    }
    if (form['username'] !== credentials.username || form['password'] !== credentials.password) {
      log(c, { endpoint: 'token', status: 400 })
      return c.json({ error: 'invalid_grant', error_description: 'invalid username or password' }, 400)
    }
    log(c, { endpoint: 'token', status: 200 })
    return c.json({
      access_token: issueToken(),
      token_type: 'Bearer',
      expires_in: Math.floor(timing.tokenTtlMs / 1000),
      scope: 'enrollment',
    })
  })

  app.post('/Enrollment/initiate-external-identification', async (c) => {
    const body = (await c.req.json().catch(() => undefined)) as Record<string, unknown> | undefined
    const userId = body?.['userId']
    const uid = typeof userId === 'number' && Number.isInteger(userId) ? userId : undefined
    const denied = authorize(c, uid)
    const entry = { endpoint: 'initiate' as const, body, ...(uid !== undefined && { userId: uid }) }
    if (denied) return log(c, { ...entry, status: 401 }), denied
    if (uid === undefined || uid < 1 || uid > 2147483647 || (body && 'isRestartIdentification' in body && typeof body['isRestartIdentification'] !== 'boolean')) {
      log(c, { ...entry, status: 400 })
      return problem(c, 400, 'Bad Request', 'userId must be an integer 1..2147483647')
    }
    const g = await gate(c, { ...entry, userId: uid }, 'initiate')
    if (g.early) return g.early
    const { behaviour: bi, spoil } = g
    let s = sessions.get(uid)
    if (!s || body?.['isRestartIdentification'] === true || s.stage === 'capture-failed' || s.stage === 'sign-failed') {
      const restarts = s ? s.restarts + 1 : 0
      if (s) sessionsById.delete(s.id)
      s = { id: `${uid}-${restarts}-${Math.random().toString(36).slice(2, 8)}`, userId: uid, userType: 0, stage: 'started', capturedAt: 0, signedAt: 0, restarts, staleLeft: 0 }
      sessions.set(uid, s)
      sessionsById.set(s.id, s)
    }
    log(c, { ...entry, status: 200 })
    if (bi === 'unsafe-url') return spoilt(c, { videoIdentificationUrl: 'javascript:alert(1)', videoIdentificationStatus: 'STARTED', message: '' }, spoil)
    if (bi === 'vendor-error') return spoilt(c, { videoIdentificationUrl: null, videoIdentificationStatus: 'ERROR', message: 'User not eligible' }, spoil)
    return spoilt(c, { videoIdentificationUrl: `${baseUrl}/capture/${s.id}`, videoIdentificationStatus: 'STARTED', message: '' }, spoil)
  })

  app.get('/Enrollment/:id/:userType/:completed/get-identification-process-status', async (c) => {
    const { id, userType, completed } = c.req.param()
    const uid = INT32.test(id) && Number(id) <= 2147483647 ? Number(id) : undefined
    const entry = { endpoint: 'status' as const, ...(uid !== undefined && { userId: uid }) }
    const denied = authorize(c, uid)
    if (denied) return log(c, { ...entry, status: 401 }), denied
    if (uid === undefined || (userType !== '0' && userType !== '1') || completed !== 'true') {
      log(c, { ...entry, status: 400 })
      return problem(c, 400, 'Bad Request', 'invalid path parameters')
    }
    const s = sessions.get(uid)
    const g = await gate(c, { ...entry, userId: uid }, s?.stage === 'signed' || s?.stage === 'sign-failed' ? 'phaseB' : 'phaseA')
    if (g.early) return g.early
    if (!s) return log(c, { ...entry, status: 404 }), problem(c, 404, 'Not Found', 'unknown user or session')
    const st = statusOf(s)
    log(c, { ...entry, status: 200 })
    return spoilt(c, { videoIdentificationUrl: st.url, videoIdentificationStatus: st.status, message: st.message }, g.spoil)
  })

  app.post('/Enrollment/finalize-external-identification', async (c) => {
    const body = (await c.req.json().catch(() => undefined)) as Record<string, unknown> | undefined
    const userId = body?.['userId']
    const uid = typeof userId === 'number' && Number.isInteger(userId) ? userId : undefined
    const entry = { endpoint: 'finalize' as const, body, ...(uid !== undefined && { userId: uid }) }
    const denied = authorize(c, uid)
    if (denied) return log(c, { ...entry, status: 401 }), denied
    if (uid === undefined || uid < 1 || uid > 2147483647) {
      log(c, { ...entry, status: 400 })
      return problem(c, 400, 'Bad Request', 'userId must be an integer 1..2147483647')
    }
    const g = await gate(c, { ...entry, userId: uid }, 'finalize')
    if (g.early) return g.early
    const s = sessions.get(uid)
    if (!s) return log(c, { ...entry, status: 404 }), problem(c, 404, 'Not Found', 'unknown userId')
    if (statusOf(s, true).status !== 'DOCUMENT_SIGN_SUCCESS') {
      log(c, { ...entry, status: 400 })
      return problem(c, 400, 'Bad Request', 'the flow has not reached DOCUMENT_SIGN_SUCCESS')
    }
    s.result ??= { correlationId: crypto.randomUUID(), individualId: ++individualIds }
    log(c, { ...entry, status: 200 })
    return spoilt(c, s.result, g.spoil)
  })

  for (const [path, step, title, text] of [
    ['capture', 'identification', 'ID capture', 'Onfido would now ask for a photo of your ID and a selfie.'],
    ['sign', 'signing', 'Document signing', 'B-Trust would now show the contract for your qualified signature.'],
  ] as const) {
    app.get(`/${path}/:sid`, (c) => {
      const s = sessionsById.get(c.req.param('sid'))
      log(c, { endpoint: 'page', status: s ? 200 : 404, ...(s && { userId: s.userId }) })
      if (!s) return c.html('<h1>Unknown or expired session</h1>', 404)
      return c.html(stepPage(title, text, `${baseUrl}/${path}/${s.id}/complete`, `${baseUrl}/${path}/${s.id}/fail`))
    })
    for (const outcome of ['complete', 'fail'] as const) {
      app.post(`/${path}/:sid/${outcome}`, (c) => {
        const s = sessionsById.get(c.req.param('sid'))
        log(c, { endpoint: 'page', status: s ? 303 : 404, ...(s && { userId: s.userId }) })
        if (!s) return c.html('<h1>Unknown or expired session</h1>', 404)
        const o = outcome === 'complete' ? 'success' : 'fail'
        act(s.userId, step, o)
        return c.redirect(redirectTo(o, step, s.userId), 303)
      })
    }
  }

  app.get('/done/:outcome', (c) => c.html(donePage(c.req.param('outcome'), c.req.query('step') ?? 'step')))
  app.notFound((c) => {
    log(c, { endpoint: 'other', status: 404 })
    return problem(c, 404, 'Not Found')
  })

  const simFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init)
    if (request.signal.aborted) throw request.signal.reason
    const res = await app.fetch(request)
    const broken = res.headers.get(RESET_HEADER)
    if (broken === 'refused') {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1'), { code: 'ECONNREFUSED' }) })
    }
    if (broken) {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) })
    }
    return res
  }) as typeof fetch

  return {
    fetch: simFetch,
    app,
    requests,
    credentials,
    issueToken,
    act,
    setScenario: (userId, scenario) => void scenarios.set(userId, scenario),
    setBehaviour: (userId, behaviour) => void behaviours.set(userId, behaviour),
    setFaults: (userId, faults) => void userFaults.set(userId, faults),
    setBaseUrl: (url) => void (baseUrl = url.replace(/\/+$/, '')),
    setRedirects: (r) => void (redirects = { ...r }),
  }
}

export { RESET_HEADER }
