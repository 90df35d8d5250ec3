/** How a model path maps onto the simulator and the user: shared by the model and persistence tests. */
import type { StatePath } from '@xstate/graph'
import type { IdentificationEvent } from '../../src/machine/events.js'
import { topState } from '../../src/machine/persistence.js'
import type { Behaviour } from '../../src/simulator/scenarios.js'
import type { SimulatedClock } from 'xstate'
import type { Click } from '../helpers.js'
import type { IdentificationApi } from '../../src/machine/types.js'
import type { Simulator } from '../../src/simulator/simulator.js'

type Path = StatePath<any, IdentificationEvent>

type Step = 'identification' | 'signing'

/**
 * What the simulator and the user must do for a path to happen: the simulator's step
 * behaviours, how each redirect comes back (`answers`), what the simulated user really did on
 * the provider's page (`clicks`: a Fail redirect that the provider contradicts, or one it never
 * hears of), and how the flow enters.
 */
export function plan(path: Path) {
  const behaviour: Behaviour = {}
  const answers: { identification?: 'success' | 'fail'; signing?: 'success' | 'fail' } = {}
  const clicks: { identification?: Click; signing?: Click } = {}
  let entry: 'start' | 'restart' | { resumeAfter: Step } | { redirectFail: Step } = 'start'
  let runnerCan = true
  let prev = 'idle'
  /** The step whose Fail redirect the provider is being asked about, while confirming. */
  let confirming: Step | undefined
  /** The simulator's behaviour from a CANCEL during finalize on (the last finalize answers 200). */
  let afterCancel: Behaviour | undefined
  for (const [i, step] of path.steps.entries()) {
    if (i === 0) continue
    const e = step.event as IdentificationEvent
    const stepKey = prev === 'initiating' ? 'initiate' : prev === 'pollingA' ? 'phaseA' : prev === 'pollingB' ? 'phaseB' : prev === 'phaseB' ? 'finalize' : undefined
    switch (e.type) {
      case 'START':
        break
      case 'RESTART':
        if (prev === 'idle') entry = 'restart'
        runnerCan &&= prev === 'idle'
        break
      case 'CANCEL':
        // Finalize must still be running for a CANCEL to meet it: it answers 503 until then.
        if (prev === 'phaseB') behaviour.finalize ??= 'unavailable'
        runnerCan = false
        break
      case 'finalize.ok':
        if (prev === 'phaseB' && behaviour.finalize === 'unavailable') afterCancel = { ...behaviour, finalize: 'ok' }
        break
      case 'RETRY':
      case 'LOST':
        runnerCan = false
        break
      case 'REDIRECT': {
        if (prev === 'pollingA' || prev === 'pollingB') {
          // Success after a Fail redirect, while the provider is asked: the user did complete the step.
          if (confirming !== undefined && e.outcome === 'success') clicks[confirming] = 'success'
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
        } else answers[s] = e.outcome
        // A Fail redirect: the provider decides (see poll.status and attempt.* below); until
        // then the simulated user did nothing the provider would report.
        if (e.outcome === 'fail') {
          confirming = s
          clicks[s] = 'none'
        } else confirming = undefined
        break
      }
      case 'attempt.failed':
        ;(behaviour as Record<string, string>)[stepKey!] = e.error.kind === 'unauthorized' ? 'unauthorized' : 'rejected'
        break
      case 'attempt.timeout':
        // Confirming a Fail redirect: the provider stays undecided (no click) until failConfirmMs.
        if (confirming === undefined) {
          ;(behaviour as Record<string, string>)[stepKey!] = stepKey === 'phaseA' || stepKey === 'phaseB' ? 'timeout' : 'unavailable'
        }
        break
      case 'initiate.ok': {
        const r = e.response
        behaviour.initiate = r.videoIdentificationStatus === 'ERROR' ? 'vendor-error' : r.videoIdentificationUrl?.startsWith('javascript') ? 'unsafe-url' : 'ok'
        break
      }
      case 'poll.status': {
        const r = e.response
        const s = r.videoIdentificationStatus
        if (confirming !== undefined) {
          // The provider contradicts the Fail redirect (the user did complete the step) or confirms it (ERROR).
          clicks[confirming] = s === 'ERROR' ? 'fail' : 'success'
          if (s !== 'ERROR' && prev === 'pollingA') behaviour.phaseA = s === 'DOCUMENT_SIGN_SUCCESS' ? 'signed' : r.videoIdentificationUrl?.startsWith('javascript') ? 'unsafe-url' : 'ok'
        } else if (prev === 'pollingA') {
          behaviour.phaseA = s === 'ERROR' ? 'vendor-error' : s === 'DOCUMENT_SIGN_SUCCESS' ? 'signed' : r.videoIdentificationUrl?.startsWith('javascript') ? 'unsafe-url' : 'ok'
        } else behaviour.phaseB = s === 'ERROR' ? 'vendor-error' : 'ok'
        break
      }
    }
    prev = topState(step.state.value)
    if (prev !== 'pollingA' && prev !== 'pollingB') confirming = undefined
  }
  return { behaviour, answers, clicks, entry, runnerCan, afterCancel }
}

/** The edges (model state + event) a path takes. */
function edgesOf(path: Path, serialize: (s: never) => string): string[] {
  const out: string[] = []
  for (let i = 1; i < path.steps.length; i++) out.push(`${serialize(path.steps[i - 1]!.state as never)} ${JSON.stringify(path.steps[i]!.event)}`)
  return out
}

/**
 * A few paths that together take every edge the given paths take (greedy set cover): the
 * simple paths of the chart grow with every new state, and most of them repeat one another.
 */
export function coveringPaths(paths: Path[], serialize: (s: never) => string): Path[] {
  const edges = paths.map((p) => new Set(edgesOf(p, serialize)))
  const uncovered = new Set(edges.flatMap((e) => [...e]))
  const chosen: Path[] = []
  while (uncovered.size > 0) {
    let best = -1
    let gain = 0
    for (const [i, e] of edges.entries()) {
      let g = 0
      for (const x of e) if (uncovered.has(x)) g++
      if (g > gain) [best, gain] = [i, g]
    }
    chosen.push(paths[best]!)
    for (const x of edges[best]!) uncovered.delete(x)
  }
  return chosen
}

/**
 * Starts a flow at the simulator as another device would have, up to the redirect of `step`,
 * where the simulated user does `click`.
 */
export async function seedElsewhere(setup: { api: IdentificationApi; sim: Simulator; clock: SimulatedClock }, userId: number, step: Step, click: Click) {
  await setup.api.initiate({ userId, isRestartIdentification: false, correlationType: 0 })
  if (step === 'signing') {
    setup.sim.act(userId, 'identification', 'success')
    setup.clock.increment(3000)
  }
  if (click !== 'none') setup.sim.act(userId, step, click)
}

/** Applies a host `REDIRECT` of a path to the simulator first: what the user did on the provider's page. */
export async function clickFor(
  setup: { api: IdentificationApi; sim: Simulator; clock: SimulatedClock },
  userId: number,
  p: ReturnType<typeof plan>,
  before: string,
  e: { outcome: 'success' | 'fail'; step?: Step },
) {
  if (before !== 'idle' && before !== 'identifying' && before !== 'signing') return
  const s: Step = before === 'idle' ? (e.step ?? 'identification') : before === 'identifying' ? 'identification' : 'signing'
  const click = p.clicks[s] ?? e.outcome
  if (before === 'idle') await seedElsewhere(setup, userId, s, click)
  else if (click !== 'none') setup.sim.act(userId, s, click)
}

/** Applies a host `CANCEL` of a path to the simulator first: the finalize that meets it may succeed. */
export function cancelFor(setup: { sim: Simulator }, userId: number, p: ReturnType<typeof plan>, before: string) {
  if (before === 'phaseB' && p.afterCancel) setup.sim.setBehaviour(userId, p.afterCancel)
}
