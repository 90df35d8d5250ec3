/**
 * Persistence at every step: every step of every model path is persisted to JSON, the actor
 * dropped, a new one restored from the JSON, and the path finished — with the same final state
 * and output as without the interruption. Also snapshots taken with a request in flight and
 * with a pause pending.
 */
import { createActor, SimulatedClock, type Snapshot } from 'xstate'
import { describe, expect, it } from 'vitest'
import { identificationMachine } from '../../src/machine/identificationMachine.js'
import { serializeModelState } from '../../src/machine/model.js'
import { topState, unwrapSnapshot, wrapSnapshot } from '../../src/machine/persistence.js'
import type { IdentificationApi } from '../../src/machine/types.js'
import { createIdentificationWorkers } from '../../src/machine/workers.js'
import { createPathProvider, isHostEvent, modelPaths, type ModelPath } from '../../src/testing/index.js'
import { flush, turn } from '../helpers.js'

const USER = 88
/**
 * Drives a path; after `interruptAt` steps the actor is persisted to JSON, stopped, and a new
 * one restored from the JSON goes on. Returns the final model state and output.
 */
async function drive(path: ModelPath, interruptAt: number | null) {
  const p = createPathProvider(path, { userId: USER })
  const { clock, api, polling } = p
  const machine = identificationMachine.provide({ actors: createIdentificationWorkers({ api, clock, random: () => 0.5 }) })
  const trail: string[] = []
  const track = (a: ReturnType<typeof createActor<typeof machine>>) =>
    a.subscribe((s) => {
      const m = serializeModelState(s)
      if (trail.at(-1) !== m) trail.push(m)
    })
  let actor = createActor(machine, { input: { userId: USER, userType: 0, polling }, clock })
  track(actor)
  actor.start()
  let cursor = 0
  for (const [i, step] of path.steps.entries()) {
    if (interruptAt === i) {
      const json = JSON.stringify(wrapSnapshot(actor.getPersistedSnapshot() as Snapshot<unknown>, USER, 0, clock.now()))
      actor.stop()
      const restored = unwrapSnapshot(JSON.parse(json), USER, 0)
      actor = createActor(machine, { input: { userId: USER, userType: 0, polling }, clock, snapshot: restored as never })
      track(actor)
      actor.start()
      // The restored actor's first snapshot repeats the model state it was in.
      while (trail.length - 1 > cursor && trail.at(-1) === trail[cursor]) trail.pop()
    }
    const e = step.event
    if (isHostEvent(e)) {
      await p.before(e, serializeModelState(actor.getSnapshot()), i)
      actor.send(e)
    } else {
      for (let t = 0; t < 120_000 && trail.length - 1 <= cursor; t += 100) {
        await flush()
        clock.increment(100)
      }
    }
    cursor++
  }
  // Let the last step settle (phaseB may finalize on its own).
  for (let t = 0; t < 5000; t += 100) {
    await flush()
    clock.increment(100)
  }
  const s = actor.getSnapshot()
  actor.stop()
  return { state: serializeModelState(s), output: s.output ?? null, steps: trail.slice(0, path.steps.length) }
}

const paths = [...modelPaths(), ...modelPaths({ kind: 'simple', hostEvents: false })]

describe('persistence at every step of every model path', () => {
  it('covers enough paths and steps', () => {
    // Shortest paths to every model state, plus simple paths that take every edge to an end.
    expect(paths.length).toBeGreaterThan(50)
    expect(paths.reduce((n, p) => n + p.steps.length, 0)).toBeGreaterThan(150)
  })
  for (const path of paths) {
    it(path.name, async () => {
      const straight = await drive(path, null)
      for (let i = 0; i < path.steps.length; i++) {
        const resumed = await drive(path, i)
        expect(resumed.state, `interrupted before step ${i}`).toBe(straight.state)
        expect(resumed.output === null, `output after an interruption before step ${i}`).toBe(straight.output === null)
      }
    })
  }
})

describe('restoring mid-request and mid-pause', () => {
  function pendingApi() {
    let calls = 0
    const pending: ((v: unknown) => void)[] = []
    const api: IdentificationApi = {
      initiate: async () => ({ videoIdentificationUrl: 'https://id.example/1', videoIdentificationStatus: 'STARTED', message: '' }),
      getStatus: () => {
        calls++
        return new Promise((resolve) => pending.push(resolve as never))
      },
      finalize: async () => ({ correlationId: 'c-1', individualId: 7 }),
    }
    return { api, pending, calls: () => calls }
  }

  it('a snapshot taken while a status request is in flight restores and polls again', async () => {
    const clock = new SimulatedClock()
    const a = pendingApi()
    const m1 = identificationMachine.provide({ actors: createIdentificationWorkers({ api: a.api, clock }) })
    const actor = createActor(m1, { input: { userId: 5, userType: 0 }, clock })
    actor.start()
    actor.send({ type: 'REDIRECT', outcome: 'success' })
    await turn()
    expect(a.calls()).toBe(1) // in flight
    const json = JSON.stringify(actor.getPersistedSnapshot())
    actor.stop()
    const b = pendingApi()
    const m2 = identificationMachine.provide({ actors: createIdentificationWorkers({ api: b.api, clock }) })
    const restored = createActor(m2, { input: { userId: 5, userType: 0 }, clock, snapshot: JSON.parse(json) })
    restored.start()
    await turn()
    expect(b.calls()).toBe(1) // the request runs again (at-least-once)
    b.pending[0]!({ videoIdentificationUrl: 'https://sign.example/1', videoIdentificationStatus: 'SIGN_SESSION_ID_SUCCESSFULLY_CREATED', message: null })
    await flush()
    expect(topState(restored.getSnapshot().value)).toBe('phaseA')
    restored.stop()
  })

  it('a snapshot taken while a pause is pending waits out the rest of the pause after restore', async () => {
    const clock = new SimulatedClock()
    let polls = 0
    const api: IdentificationApi = {
      initiate: async () => ({ videoIdentificationUrl: 'https://id.example/1', videoIdentificationStatus: 'STARTED', message: '' }),
      getStatus: async () => {
        polls++
        return { videoIdentificationUrl: null, videoIdentificationStatus: 'PROCESSING', message: null }
      },
      finalize: async () => ({ correlationId: 'c', individualId: 1 }),
    }
    const m = identificationMachine.provide({ actors: createIdentificationWorkers({ api, clock, random: () => 0.5 }) })
    const actor = createActor(m, { input: { userId: 5, userType: 0 }, clock })
    actor.start()
    actor.send({ type: 'REDIRECT', outcome: 'success' })
    await turn()
    expect(polls).toBe(1) // PROCESSING: a change; the next poll is due 2 s later
    const next = actor.getSnapshot().context.nextAttemptAt!
    expect(next).toBe(clock.now() + 2000)
    clock.increment(500)
    await flush()
    const json = JSON.stringify(actor.getPersistedSnapshot())
    actor.stop()
    const restored = createActor(m, { input: { userId: 5, userType: 0 }, clock, snapshot: JSON.parse(json) })
    restored.start()
    await turn()
    expect(polls).toBe(1) // not at once: the pause goes on
    clock.increment(1400)
    await flush()
    expect(polls).toBe(1)
    clock.increment(200)
    await flush()
    expect(polls).toBe(2) // at the stored time
    restored.stop()
  })
})
