import { SimulatedClock } from 'xstate'
import { expect } from 'vitest'
import { createHttpApi } from '../src/adapters/http/httpApi.js'
import { createSimulator, type SimulatorOptions } from '../src/simulator/simulator.js'
import type { IdentificationAction } from '../src/adapters/node/runIdentification.js'

/** Lets pending promise callbacks and I/O callbacks run. */
export async function flush(rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r))
}

/**
 * One turn of the event loop's timers: a worker's attempt that is due waits for one (so that a
 * transport answering without I/O cannot starve the deadline or the rest of the process).
 */
export async function turn(): Promise<void> {
  await flush()
  await new Promise((r) => setTimeout(r, 2))
  await flush()
}

/**
 * Advances a simulated clock in small steps, yielding to the event loop between them, until
 * `promise` settles (or `maxMs` of simulated time passed). Returns the settled promise.
 */
export async function driveClock<T>(clock: SimulatedClock, promise: Promise<T>, stepMs = 100, maxMs = 30 * 60_000): Promise<T> {
  let settled = false
  promise.then(
    () => (settled = true),
    () => (settled = true),
  )
  for (let t = 0; !settled && t < maxMs; t += stepMs) {
    await flush()
    clock.increment(stepMs)
  }
  await flush()
  if (!settled) throw new Error(`driveClock: not settled after ${maxMs} ms of simulated time`)
  return promise
}

/**
 * Advances a simulated clock in 100 ms steps until `cond` holds (or `maxMs` of simulated time
 * passed), then asserts it: for tests that wait on a flow's state.
 */
export async function until(clock: SimulatedClock, cond: () => boolean | Promise<boolean>, maxMs = 60_000): Promise<void> {
  for (let t = 0; t < maxMs && !(await cond()); t += 100) {
    await flush()
    clock.increment(100)
  }
  await flush()
  expect(await cond()).toBe(true)
}

/** What the simulated user does on a provider page. */
export type Click = 'success' | 'fail' | 'none'

/** A recognisable token: tests scan every output for it. */
export const SECRET_TOKEN_PREFIX = 'sim.'

/** An in-process simulator on a simulated clock, with an API client bound to it. */
export function simSetup(options: SimulatorOptions = {}) {
  const clock = new SimulatedClock()
  clock.set(1_700_000_000_000)
  const sim = createSimulator({ timing: { captureMs: 3000, staleMs: 1000, signMs: 3000 }, now: () => clock.now(), ...options })
  const tokens: string[] = []
  const api = createHttpApi({
    baseUrl: 'http://127.0.0.1',
    fetch: sim.fetch,
    getAccessToken: () => {
      const t = sim.issueToken()
      tokens.push(t)
      return t
    },
  })
  /**
   * onAction that "clicks" Complete (or Fail) on the simulator's page for the step and answers
   * how the redirect came back. `clicks` overrides what the simulator receives (`none`: no
   * click at all), for a redirect that says one thing while the provider recorded another.
   */
  const clicker =
    (
      answers: { identification?: 'success' | 'fail'; signing?: 'success' | 'fail' } = {},
      userId?: number,
      clicks: { identification?: Click; signing?: Click } = {},
    ) =>
    async (a: IdentificationAction) => {
      const step = a.type === 'open-identification' ? 'identification' : 'signing'
      const outcome = answers[step] ?? 'success'
      const uid = userId ?? Number(/\/(?:capture|sign)\/(\d+)-/.exec(a.url)?.[1])
      const click = clicks[step] ?? outcome
      if (click !== 'none') sim.act(uid, step, click)
      return outcome
    }
  return { clock, sim, api, tokens, clicker }
}

/**
 * The person finishes the ID capture and signs, and the service hears both Success redirects
 * (waiting for `signing` in between): the flow then polls phase B.
 */
export async function captureAndSign(
  env: { sim: { act(userId: number, step: 'identification' | 'signing', outcome: 'success' | 'fail'): void }; clock: SimulatedClock },
  service: { redirect(id: string, r: { outcome: 'success' | 'fail' }): Promise<unknown>; get(id: string): Promise<{ state: string } | undefined> },
  userId: number,
  flowId: string,
): Promise<void> {
  env.sim.act(userId, 'identification', 'success')
  await service.redirect(flowId, { outcome: 'success' })
  await until(env.clock, async () => (await service.get(flowId))?.state === 'signing')
  env.sim.act(userId, 'signing', 'success')
  await service.redirect(flowId, { outcome: 'success' })
}
