import { SimulatedClock } from 'xstate'
import { createHttpApi } from '../adapters/http/httpApi.js'
import type { HostEvent } from '../machine/events.js'
import type { IdentificationApi, PollingOptions, UserType } from '../machine/types.js'
import { modelTopState, serializeModelState } from '../machine/model.js'
import type { Behaviour } from '../simulator/scenarios.js'
import { createSimulator, type Simulator } from '../simulator/simulator.js'
import type { ModelPath } from './paths.js'

type Step = 'identification' | 'signing'
/** What the simulated user does on a provider page: press Complete, Fail, or nothing at all. */
export type Click = 'success' | 'fail' | 'none'

/** What the provider and the user do during one stretch of a path (a new one begins at a restart, and where a cancel meets finalize). */
export interface PathSegment {
  /** The index of the path step at which this segment begins. */
  start: number
  /** The simulator's step behaviours from then on. */
  behaviour: Behaviour
  /** How each redirect comes back. */
  answers: { identification?: 'success' | 'fail'; signing?: 'success' | 'fail' }
  /** What the user really did on the provider's page (a Fail redirect the provider contradicts, or one it never hears of). */
  clicks: { identification?: Click; signing?: Click }
}

/**
 * What the provider and the user must do for a path to happen: per segment of the path, the
 * simulator's step behaviours, how each redirect comes back (`answers`) and what the user really
 * did on the provider's page (`clicks`); and how the flow enters. `behaviour`, `answers` and
 * `clicks` are the first segment's.
 */
export interface PathPlan extends Omit<PathSegment, 'start'> {
  segments: PathSegment[]
  entry: 'start' | 'restart' | { resumeAfter: Step } | { redirectFail: Step }
  /** `runIdentification` can take this path (it sends no `CANCEL`, `RETRY`, `LOST`, no restart midway). */
  runnerCan: boolean
}

/** Works out the {@link PathPlan} of a path. */
export function planPath(path: ModelPath): PathPlan {
  const segments: PathSegment[] = [{ start: 0, behaviour: {}, answers: {}, clicks: {} }]
  let seg = segments[0]!
  let entry: PathPlan['entry'] = 'start'
  let runnerCan = true
  let prev = 'idle'
  /** The step whose Fail redirect the provider is being asked about, while confirming. */
  let confirming: Step | undefined
  /** A CANCEL met finalize: what the last finalize does decides the segment's finalize behaviour. */
  let cancelling = false
  const set = (key: keyof Behaviour | undefined, value: string) => {
    if (key) (seg.behaviour as Record<string, string>)[key] = value
  }
  for (const [i, step] of path.steps.entries()) {
    const e = step.event
    const stepKey = prev === 'initiating' ? 'initiate' : prev === 'pollingA' ? 'phaseA' : prev === 'pollingB' ? 'phaseB' : prev === 'phaseB' ? 'finalize' : undefined
    switch (e.type) {
      case 'START':
        break
      case 'RESTART':
        if (prev === 'idle') entry = 'restart'
        else {
          // A new provider session: the user goes through the steps again, maybe otherwise.
          runnerCan = false
          seg = { start: i, behaviour: {}, answers: {}, clicks: {} }
          segments.push(seg)
        }
        break
      case 'CANCEL':
        runnerCan = false
        if (prev === 'phaseB') {
          // Finalize must still be running for a CANCEL to meet it: it answers 503 until then;
          // from the cancel on, the last finalize answers as the path says.
          seg.behaviour.finalize ??= 'unavailable'
          seg = { start: i, behaviour: { ...seg.behaviour, finalize: 'unavailable' }, answers: { ...seg.answers }, clicks: { ...seg.clicks } }
          segments.push(seg)
          cancelling = true
        }
        break
      case 'finalize.ok':
        if (cancelling) seg.behaviour.finalize = 'ok'
        break
      case 'RETRY':
      case 'LOST':
        runnerCan = false
        break
      case 'REDIRECT': {
        if (prev === 'pollingA' || prev === 'pollingB') {
          // Success after a Fail redirect, while the provider is asked: the user did complete the step.
          if (confirming !== undefined && e.outcome === 'success') seg.clicks[confirming] = 'success'
          runnerCan = false
          confirming = undefined
          break
        }
        const s: Step = prev === 'idle' ? (e.step ?? 'identification') : prev === 'identifying' ? 'identification' : 'signing'
        if (prev === 'idle') {
          if (e.outcome === 'fail') {
            entry = { redirectFail: s }
            runnerCan = false
          } else entry = { resumeAfter: s }
        } else seg.answers[s] = e.outcome
        // A Fail redirect: the provider decides (see poll.status and attempt.* below); until
        // then the simulated user did nothing the provider would report.
        if (e.outcome === 'fail') {
          confirming = s
          seg.clicks[s] = 'none'
        } else confirming = undefined
        break
      }
      case 'attempt.failed':
        // In a cancel's last finalize any failure ends the flow cancelled: 503 (already set) will do.
        if (!cancelling) set(stepKey, e.error.kind === 'unauthorized' ? 'unauthorized' : 'rejected')
        // Confirming a Fail redirect: the user did press Fail, so the provider's session is in
        // that step's failed stage, whose requests answer with this step's fault.
        if (confirming !== undefined) seg.clicks[confirming] = 'fail'
        break
      case 'attempt.timeout':
        // Confirming a Fail redirect: the provider stays undecided (no click) until failConfirmMs.
        if (confirming === undefined && !cancelling) set(stepKey, stepKey === 'phaseA' || stepKey === 'phaseB' ? 'timeout' : 'unavailable')
        break
      case 'initiate.ok': {
        const r = e.response
        seg.behaviour.initiate = r.videoIdentificationStatus === 'ERROR' ? 'vendor-error' : r.videoIdentificationUrl?.startsWith('javascript') ? 'unsafe-url' : 'ok'
        break
      }
      case 'poll.status': {
        const r = e.response
        const s = r.videoIdentificationStatus
        if (confirming !== undefined) {
          // The provider contradicts the Fail redirect (the user did complete the step) or confirms it (ERROR).
          seg.clicks[confirming] = s === 'ERROR' ? 'fail' : 'success'
          if (s !== 'ERROR' && prev === 'pollingA') seg.behaviour.phaseA = s === 'DOCUMENT_SIGN_SUCCESS' ? 'signed' : r.videoIdentificationUrl?.startsWith('javascript') ? 'unsafe-url' : 'ok'
        } else if (prev === 'pollingA') {
          seg.behaviour.phaseA = s === 'ERROR' ? 'vendor-error' : s === 'DOCUMENT_SIGN_SUCCESS' ? 'signed' : r.videoIdentificationUrl?.startsWith('javascript') ? 'unsafe-url' : 'ok'
        } else seg.behaviour.phaseB = s === 'ERROR' ? 'vendor-error' : 'ok'
        break
      }
    }
    prev = modelTopState(step.state)
    if (prev !== 'pollingA' && prev !== 'pollingB') confirming = undefined
    if (prev !== 'phaseB') cancelling = false
  }
  const first = segments[0]!
  return { behaviour: first.behaviour, answers: first.answers, clicks: first.clicks, segments, entry, runnerCan }
}

/** The provider for one path: a simulator that behaves as the path needs, an API bound to it, a simulated clock. */
export interface PathProvider {
  /** The user the flow is for. */
  userId: number
  userType: UserType
  plan: PathPlan
  /** In-process simulator of the provider (no socket). */
  simulator: Simulator
  /** `createHttpApi` on the simulator: pass it to your app as its `api`. */
  api: IdentificationApi
  /** The time of the flow: pass it to your app (`clock` option); {@link runPath} moves it. */
  clock: SimulatedClock
  /** Polling settings short enough for the path's timeouts: pass them to your app. */
  polling: Required<Pick<PollingOptions, 'phaseTimeoutMs' | 'finalizeTimeoutMs'>>
  /**
   * Call before your app handles a host event (the path's step `stepIndex`): what the user did
   * at the provider before coming back (Complete, Fail, nothing), a flow started elsewhere, the
   * provider's behaviour from a restart or a cancel on. {@link runPath} calls it.
   */
  before(event: HostEvent, state: string, stepIndex?: number): Promise<void>
  /**
   * `runIdentification`'s `onAction` for this path: the user acts on the provider's page and
   * the redirect comes back as the path says.
   */
  onAction(action: { type: 'open-identification' | 'open-signing'; url: string }): Promise<'success' | 'fail'>
}

/** Options of {@link createPathProvider}. */
export interface PathProviderOptions {
  /** @default 77 */
  userId?: number
  /** @default 0 */
  userType?: UserType
}

/**
 * Sets up the provider for one path: an in-process simulator with the behaviours the path
 * needs, an API on it, a simulated clock, and what the user does at the provider.
 *
 * @example
 * const p = createPathProvider(path)
 * const flow = createBrowserIdentification({ api: p.api, userId: p.userId, userType: p.userType, clock: p.clock, polling: p.polling, storage: new MemoryStorage(), lock: false, navigate: () => {} })
 */
export function createPathProvider(path: ModelPath, options: PathProviderOptions = {}): PathProvider {
  const userId = options.userId ?? 77
  const userType = options.userType ?? 0
  const plan = planPath(path)
  const clock = new SimulatedClock()
  clock.set(1_700_000_000_000)
  const simulator = createSimulator({ timing: { captureMs: 3000, staleMs: 1000, signMs: 3000 }, now: () => clock.now(), behaviours: { [userId]: plan.behaviour } })
  const api = createHttpApi({ baseUrl: 'http://127.0.0.1', fetch: simulator.fetch, getAccessToken: () => simulator.issueToken() })
  const act = (step: Step, click: Click) => {
    if (click !== 'none') simulator.act(userId, step, click)
  }
  const seed = async (step: Step, click: Click) => {
    await api.initiate({ userId, isRestartIdentification: false, correlationType: 0 })
    if (step === 'signing') {
      simulator.act(userId, 'identification', 'success')
      clock.increment(3000)
    }
    act(step, click)
  }
  let segment = plan.segments[0]!
  return {
    userId,
    userType,
    plan,
    simulator,
    api,
    clock,
    polling: { phaseTimeoutMs: 20_000, finalizeTimeoutMs: 30_000 },
    async before(event, state, stepIndex) {
      const next = stepIndex === undefined ? undefined : plan.segments.find((s) => s.start === stepIndex && s !== segment)
      if (next) {
        segment = next
        simulator.setBehaviour(userId, next.behaviour)
      }
      const before = modelTopState(state)
      if (event.type !== 'REDIRECT' || (before !== 'idle' && before !== 'identifying' && before !== 'signing')) return
      const s: Step = before === 'idle' ? (event.step ?? 'identification') : before === 'identifying' ? 'identification' : 'signing'
      const click = segment.clicks[s] ?? event.outcome
      if (before === 'idle') await seed(s, click)
      else act(s, click)
    },
    async onAction(a) {
      const step: Step = a.type === 'open-identification' ? 'identification' : 'signing'
      const outcome = segment.answers[step] ?? 'success'
      act(step, segment.clicks[step] ?? outcome)
      return outcome
    },
  }
}

/** What {@link runPath} needs from your app. */
export interface PathDriver {
  /**
   * Make your app do what a host event says: press Start, land on the Success/Fail page
   * (`REDIRECT`), press Continue, Retry, Restart, Cancel, or open the redirect page with no
   * flow (`LOST`).
   */
  send(event: HostEvent): void | Promise<void>
  /**
   * Where your app's flow stands now: its snapshot (`flow.getSnapshot()`, the hook's
   * `snapshot`), a view `{ state, failure }` (a backend's `FlowView`, the hook's result), or the
   * state's name as your UI shows it.
   */
  state(): unknown | Promise<unknown>
  /**
   * Every change of the flow, as `state()` reports it (`flow.subscribe`, `service.subscribe`):
   * with it no state is missed that the app passes through within one clock step (`phaseB`
   * often finalizes at once).
   */
  subscribe?(listener: (state: unknown) => void): () => void
}

/** Reduces what a driver reports to `top` or `failed:reason:phase`, as a model state compares. */
function modelStateOf(x: unknown): string {
  if (typeof x === 'string') return x
  const o = x as { value?: unknown; state?: string; context?: { failure: { reason: string; phase?: string } | null }; failure?: { reason: string; phase?: string } | null }
  // A view's `state` is a top-level state's name: no sub-state, as the view shows none.
  return serializeModelState({ value: o.value !== undefined ? o.value : (o.state ?? ''), context: { failure: o.context?.failure ?? o.failure ?? null } })
}

/** Whether what the app shows is the model state (a UI that shows no sub-state or failure matches at the level it shows). */
function sameState(expected: string, actual: string): boolean {
  if (expected === actual) return true
  return !/[(:]/.test(actual) && modelTopState(expected) === modelTopState(actual)
}

/**
 * Makes a path happen in your app and checks it after every step: host events through
 * `driver.send` (after the provider has done its part), worker events by letting time pass on
 * the provider's clock until the app shows the step's state. Throws, naming the step, when the
 * app is anywhere else.
 *
 * @example
 * await runPath(path, provider, { send: (e) => ui.do(e), state: () => flow.getSnapshot() })
 */
export async function runPath(path: ModelPath, provider: PathProvider, driver: PathDriver, options: { maxWaitMs?: number } = {}): Promise<void> {
  const maxWaitMs = options.maxWaitMs ?? 30 * 60_000
  const turn = async () => {
    for (let i = 0; i < 8; i++) await new Promise((r) => setImmediate(r))
  }
  // Every state the app passed through, in order (from subscribe; else what state() says when asked).
  const trail: string[] = [modelStateOf(await driver.state())]
  const see = (x: unknown) => {
    const m = modelStateOf(x)
    if (trail.at(-1) !== m) trail.push(m)
  }
  const unsubscribe = driver.subscribe?.(see)
  let cursor = 0
  let expectedBefore = 'idle'
  try {
    for (const [i, step] of path.steps.entries()) {
      if (step.host) {
        await provider.before(step.event as HostEvent, expectedBefore, i)
        // A send that only finishes once time passes (a backend's start waits for initiate) is
        // not awaited alone: the clock moves meanwhile.
        let done = false
        let failed: unknown
        Promise.resolve(driver.send(step.event as HostEvent)).then(
          () => (done = true),
          (err: unknown) => ((failed = err), (done = true)),
        )
        for (let t = 0; !done && t < maxWaitMs; t += 100) {
          await turn()
          if (!done) provider.clock.increment(100)
        }
        if (failed !== undefined) throw failed
      }
      // A step that changes only a sub-state the app does not show (`pollingA(confirming)` →
      // `pollingA`, `phaseB` → `phaseB(cancelling)`) is where the app already is.
      const invisible = modelTopState(step.state) === modelTopState(expectedBefore) && !/[(]/.test(trail[cursor]!) && sameState(step.state, trail[cursor]!)
      // Every other step of a path changes the model state: look for it after the last one found.
      const found = async () => {
        see(await driver.state())
        return invisible ? cursor : trail.findIndex((s, k) => k > cursor && sameState(step.state, s))
      }
      let at = await found()
      for (let t = 0; t < maxWaitMs && at < 0; t += 100) {
        await turn()
        provider.clock.increment(100)
        at = await found()
      }
      if (at < 0) {
        throw new Error(`step ${i + 1} of "${path.name}": after ${step.event.type} the app went ${trail.slice(cursor).join(' → ')}, the model to ${step.state}`)
      }
      cursor = at
      expectedBefore = step.state
    }
  } finally {
    unsubscribe?.()
  }
}
