/**
 * Model-based tests, through the `10npay-identification/testing` entry that integrators use:
 * `modelPaths` generates paths over the chart; each path runs against the in-process simulator
 * on a simulated clock (`createPathProvider`), and `runPath` checks the state after every step.
 */
import { createActor } from 'xstate'
import { describe, expect, it } from 'vitest'
import { runIdentification } from '../../src/adapters/node/runIdentification.js'
import { identificationMachine } from '../../src/machine/identificationMachine.js'
import { modelTopState, serializeModelState } from '../../src/machine/model.js'
import { topState } from '../../src/machine/persistence.js'
import { createIdentificationWorkers } from '../../src/machine/workers.js'
import { createPathProvider, modelPaths, planPath, runPath, type ModelPath } from '../../src/testing/index.js'
import { driveClock } from '../helpers.js'

/** The top-level states a path goes through, consecutive repeats removed. */
function expectedStates(path: ModelPath): string[] {
  const out = ['idle']
  for (const s of path.steps) {
    const t = modelTopState(s.state)
    if (out.at(-1) !== t) out.push(t)
  }
  return out
}

/** The Node runner takes the path: its onAction answers as the path says. */
async function runWithRunner(path: ModelPath) {
  const p = createPathProvider(path)
  const entry = p.plan.entry
  if (typeof entry === 'object' && 'resumeAfter' in entry) await p.before({ type: 'REDIRECT', outcome: 'success', step: entry.resumeAfter }, 'idle')
  const seen: string[] = []
  const opened: string[] = []
  await driveClock(
    p.clock,
    runIdentification({
      api: p.api, userId: p.userId, userType: p.userType, clock: p.clock, polling: p.polling,
      ...(entry === 'restart' && { restart: true }),
      ...(typeof entry === 'object' && 'resumeAfter' in entry && { resumeAfter: entry.resumeAfter }),
      onSnapshot: (s) => {
        const t = topState(s.value)
        if (seen.at(-1) !== t) seen.push(t)
      },
      onAction: (a) => {
        opened.push(a.url)
        return p.onAction(a)
      },
    }),
  )
  const expected = expectedStates(path)
  expect(seen.slice(0, expected.length)).toEqual(expected)
  expect(opened.every((u) => u.startsWith('http://127.0.0.1/'))).toBe(true)
}

/** The chart's own actor takes the path: host events straight to it, the workers answer. */
async function runWithActor(path: ModelPath) {
  const p = createPathProvider(path)
  const machine = identificationMachine.provide({ actors: createIdentificationWorkers({ api: p.api, clock: p.clock }) })
  const actor = createActor(machine, { input: { userId: p.userId, userType: p.userType, polling: p.polling }, clock: p.clock })
  actor.start()
  try {
    await runPath(path, p, {
      send: (e) => {
        expect(actor.getSnapshot().can(e), `${e.type} is accepted where the path sends it`).toBe(true)
        actor.send(e)
      },
      state: () => actor.getSnapshot(),
      subscribe: (fn) => actor.subscribe(fn).unsubscribe,
    })
  } finally {
    actor.stop()
  }
  expect(p.clock.timeouts.size).toBe(0)
}

const shortest = modelPaths({ hostEvents: false })
const simple = modelPaths({ kind: 'simple', hostEvents: false })
const fullShortest = modelPaths()
// Simple paths with host events too (restarts and cancels midway, several segments of a plan), as integrators run them.
const fullSimple = modelPaths({ kind: 'simple' })
const fromStart = modelPaths({ kind: 'simple', from: 'start' })

describe('model: the paths the Node runner can take, through runIdentification', () => {
  it('generates a path to every state and every failure reason', () => {
    const reached = new Set(shortest.map((p) => p.end))
    for (const s of ['idle', 'initiating', 'identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB', 'finalized']) expect(reached).toContain(s)
    for (const r of ['vendor-error', 'timeout', 'unauthorized', 'rejected', 'redirect-failed', 'unsafe-url']) {
      expect([...reached].some((s) => s.startsWith(`failed:${r}:`))).toBe(true)
    }
    // Every path starts from idle and names the state after each step.
    for (const p of simple) expect(p.steps.at(-1)!.state).toBe(p.end)
  })

  for (const [kind, paths] of [['shortest', shortest], ['simple path to an end', simple]] as const) {
    for (const path of paths.filter((p) => planPath(p).runnerCan)) {
      it(`${kind}: ${path.name}`, async () => {
        await runWithRunner(path)
      })
    }
  }
})

describe('model: every state with host events (RESTART, CANCEL, RETRY), driving the actor', () => {
  it('reaches cancelled and the retried states', () => {
    expect(fullShortest.some((p) => p.end.startsWith('failed:cancelled'))).toBe(true)
    expect(fullShortest.length).toBeGreaterThan(shortest.length)
  })
  it('paths from START reach finalized and every failure', () => {
    expect(fromStart.every((p) => p.steps[0]!.event.type === 'START')).toBe(true)
    expect(fromStart.some((p) => p.end === 'finalized')).toBe(true)
    expect(fromStart.some((p) => p.end.startsWith('failed:timeout'))).toBe(true)
  })
  for (const path of [...fullShortest, ...simple, ...fullSimple]) {
    it(`${path.name}`, async () => {
      await runWithActor(path)
    })
  }
  it('names model states as serializeModelState does', () => {
    const s = createActor(identificationMachine.provide({ actors: createIdentificationWorkers({ api: {} as never }) }), { input: { userId: 1, userType: 0 } }).getSnapshot()
    expect(serializeModelState(s)).toBe('idle')
  })
})
