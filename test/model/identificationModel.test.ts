/**
 * Model-based tests: @xstate/graph generates paths over the real chart; each path is executed
 * against the in-process simulator on a simulated clock, with the simulator's behaviour and the
 * user's answers chosen from the path's events, and the state checked after every step.
 */
import { getShortestPaths, getSimplePaths, type StatePath } from '@xstate/graph'
import { createActor, type SimulatedClock } from 'xstate'
import { describe, expect, it } from 'vitest'
import { runIdentification } from '../../src/adapters/node/runIdentification.js'
import type { IdentificationEvent } from '../../src/machine/events.js'
import { identificationMachine } from '../../src/machine/identificationMachine.js'
import { createModelOptions, serializeModelState } from '../../src/machine/model.js'
import { topState } from '../../src/machine/persistence.js'
import { createIdentificationWorkers } from '../../src/machine/workers.js'
import { driveClock, flush, simSetup } from '../helpers.js'
import { cancelFor, clickFor, coveringPaths, plan, seedElsewhere } from './plan.js'

const USER = 77
const POLLING = { phaseTimeoutMs: 20_000, finalizeTimeoutMs: 30_000 }
type Path = StatePath<any, IdentificationEvent>

const label = (p: Path) =>
  p.steps
    .slice(1)
    .map((s) => {
      const e = s.event as IdentificationEvent & { outcome?: string; response?: { videoIdentificationStatus: string; videoIdentificationUrl: string | null }; error?: { kind: string } }
      const detail = e.outcome ?? e.error?.kind ?? (e.response ? `${e.response.videoIdentificationStatus}${e.response.videoIdentificationUrl?.startsWith('javascript') ? '(unsafe)' : ''}` : '')
      return detail ? `${e.type}(${detail})` : e.type
    })
    .join(' → ') + ` ⇒ ${serializeModelState(p.state)}`

/** The top-level states a path goes through, consecutive repeats removed. */
function expectedStates(path: Path): string[] {
  const out: string[] = []
  for (const s of path.steps) {
    const t = topState(s.state.value)
    if (out.at(-1) !== t) out.push(t)
  }
  return out
}

async function runWithRunner(path: Path) {
  const p = plan(path)
  const setup = simSetup({ behaviours: { [USER]: p.behaviour } })
  if (typeof p.entry === 'object' && 'resumeAfter' in p.entry) await seedElsewhere(setup, USER, p.entry.resumeAfter, 'success')
  const seen: string[] = []
  const opened: string[] = []
  const clicker = setup.clicker(p.answers, USER, p.clicks)
  await driveClock(
    setup.clock,
    runIdentification({
      api: setup.api, userId: USER, userType: 0, clock: setup.clock, polling: POLLING,
      ...(p.entry === 'restart' && { restart: true }),
      ...(typeof p.entry === 'object' && 'resumeAfter' in p.entry && { resumeAfter: p.entry.resumeAfter }),
      onSnapshot: (s) => {
        const t = topState(s.value)
        if (seen.at(-1) !== t) seen.push(t)
      },
      onAction: (a) => {
        opened.push(a.url)
        return clicker(a)
      },
    }),
  )
  const expected = expectedStates(path)
  expect(seen.slice(0, expected.length)).toEqual(expected)
  expect(opened.every((u) => u.startsWith('http://127.0.0.1/'))).toBe(true)
  return { setup, seen }
}

/** Drives the actor directly, sending host events as the path says and letting the workers answer. */
async function runWithActor(path: Path) {
  const p = plan(path)
  const setup = simSetup({ behaviours: { [USER]: p.behaviour } })
  const { clock, sim, api } = setup
  const machine = identificationMachine.provide({ actors: createIdentificationWorkers({ api, clock }) })
  const actor = createActor(machine, { input: { userId: USER, userType: 0, polling: POLLING }, clock })
  // Every distinct model state the actor passes through, in order: workers may move on
  // further within one clock step than one model step (phaseB finalizes at once).
  const trail: string[] = []
  actor.subscribe((s) => {
    const m = serializeModelState(s)
    if (trail.at(-1) !== m) trail.push(m)
  })
  actor.start()
  let cursor = 0
  try {
    for (const [i, step] of path.steps.entries()) {
      if (i === 0) continue
      const e = step.event as IdentificationEvent
      const before = topState(actor.getSnapshot().value)
      const expected = serializeModelState(step.state)
      if (['START', 'RESTART', 'CANCEL', 'RETRY', 'CONTINUE', 'REDIRECT', 'LOST'].includes(e.type)) {
        expect(cursor, 'a host event is sent only when the actor is where the path is').toBe(trail.length - 1)
        if (e.type === 'REDIRECT') await clickFor(setup, USER, p, before, e)
        if (e.type === 'CANCEL') cancelFor(setup, USER, p, before)
        actor.send(e)
      } else {
        await waitFor(clock, () => trail.length - 1 > cursor)
      }
      cursor += 1
      expect(trail[cursor], `after ${e.type}`).toBe(expected)
    }
  } finally {
    actor.stop()
  }
  expect(clock.timeouts.size).toBe(0)
}

async function waitFor(clock: SimulatedClock, cond: () => boolean, maxMs = 120_000) {
  for (let t = 0; t < maxMs && !cond(); t += 100) {
    await flush()
    clock.increment(100)
  }
  await flush()
}

const runnerOptions = createModelOptions({ hostEvents: false })
const fullOptions = createModelOptions()
const isEnd = (s: { value: unknown }) => ['finalized', 'failed'].includes(topState(s.value))

const shortest = getShortestPaths(identificationMachine, runnerOptions as never) as Path[]
const allSimple = getSimplePaths(identificationMachine, { ...(runnerOptions as object), toState: isEnd } as never) as Path[]
const simple = coveringPaths(allSimple, serializeModelState)
const fullShortest = getShortestPaths(identificationMachine, fullOptions as never) as Path[]

describe('model: the paths the Node runner can take, through runIdentification', () => {
  it('generates a path to every state and every failure reason', () => {
    const reached = new Set(shortest.map((p) => serializeModelState(p.state)))
    for (const s of ['idle', 'initiating', 'identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB', 'finalized']) expect(reached).toContain(s)
    for (const r of ['vendor-error', 'timeout', 'unauthorized', 'rejected', 'redirect-failed', 'unsafe-url']) {
      expect([...reached].some((s) => s.startsWith(`failed:${r}:`))).toBe(true)
    }
    // The covering subset of the simple paths takes every edge any simple path takes.
    const edges = (ps: Path[]) => new Set(ps.flatMap((p) => p.steps.slice(1).map((st, i) => `${serializeModelState(p.steps[i]!.state)} ${JSON.stringify(st.event)}`)))
    expect(allSimple.length).toBeGreaterThan(simple.length)
    expect(edges(simple)).toEqual(edges(allSimple))
  })

  for (const [kind, paths] of [['shortest', shortest], ['simple path to an end', simple]] as const) {
    for (const path of paths.filter((p) => plan(p).runnerCan)) {
      it(`${kind}: ${label(path)}`, async () => {
        await runWithRunner(path)
      })
    }
  }
})

describe('model: every state with host events (RESTART, CANCEL, RETRY), driving the actor', () => {
  it('reaches cancelled and the retried states', () => {
    const reached = new Set(fullShortest.map((p) => serializeModelState(p.state)))
    expect([...reached].some((s) => s.startsWith('failed:cancelled'))).toBe(true)
  })
  for (const path of fullShortest) {
    it(`shortest: ${label(path)}`, async () => {
      await runWithActor(path)
    })
  }
})
