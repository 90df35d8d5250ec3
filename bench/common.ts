/** Shared helpers of the benchmarks. */
import { createActor } from 'xstate'
import { createHttpApi } from '../src/adapters/http/httpApi.js'
import type { Clock } from '../src/machine/clock.js'
import { identificationMachine } from '../src/machine/identificationMachine.js'
import { createIdentificationWorkers, type WorkerDeps } from '../src/machine/workers.js'

export const STATUS_URL_PATH = '/Enrollment/42/0/true/get-identification-process-status'
export const PROCESSING_BODY = JSON.stringify({ videoIdentificationUrl: null, videoIdentificationStatus: 'PROCESSING', message: null })

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!
}

/**
 * A clock whose 1 ms timers fire on the next turn of the event loop (polls back to back, as
 * fast as the CPU allows); longer ones (the deadline) are ordinary timers.
 */
export const immediateClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => (ms <= 1 ? { i: setImmediate(fn) } : { t: setTimeout(fn, ms) }),
  clearTimeout: (id) => {
    const h = id as { i?: NodeJS.Immediate; t?: NodeJS.Timeout } | undefined
    if (h?.i) clearImmediate(h.i)
    if (h?.t) clearTimeout(h.t)
  },
}

/** CPU microseconds (user + system) spent by `fn`. */
export async function cpuMicros(fn: () => Promise<void>): Promise<number> {
  const start = process.cpuUsage()
  await fn()
  const d = process.cpuUsage(start)
  return d.user + d.system
}

/**
 * The library's poll path: the chart in `pollingA`, its poller looping over `fetchFn`, until
 * `polls` requests were made. Returns once the actor is stopped.
 */
export function libraryPolls(fetchFn: typeof fetch, baseUrl: string, polls: number, clock: Clock = immediateClock, onRequest?: WorkerDeps['onRequest']): Promise<void> {
  return new Promise((resolve) => {
    let n = 0
    const counting = (async (input: RequestInfo | URL, init?: RequestInit) => {
      n++
      const res = await fetchFn(input, init)
      if (n === polls) queueMicrotask(() => {
        actor.stop()
        resolve()
      })
      return res
    }) as typeof fetch
    const api = createHttpApi({ baseUrl, getAccessToken: () => 'bench-token', fetch: counting })
    const machine = identificationMachine.provide({ actors: createIdentificationWorkers({ api, clock, ...(onRequest && { onRequest }) }) })
    const actor = createActor(machine, {
      input: { userId: 42, userType: 0, polling: { intervalMs: 1, maxIntervalMs: 1, jitter: 0, phaseTimeoutMs: 24 * 3600_000 } },
      clock,
    })
    actor.start()
    actor.send({ type: 'REDIRECT', outcome: 'success' })
  })
}

/**
 * The bare loop integrators write by hand: `setTimeout` + `fetch` + `if (status === …)`, with the
 * same zero-delay timer as the library here.
 */
export async function barePolls(fetchFn: typeof fetch, baseUrl: string, polls: number): Promise<void> {
  const url = `${baseUrl}${STATUS_URL_PATH}`
  for (let i = 0; i < polls; i++) {
    const res = await fetchFn(url, { headers: { authorization: 'Bearer bench-token' } })
    const body = (await res.json()) as { videoIdentificationStatus: string | null }
    if (body.videoIdentificationStatus === 'DOCUMENT_SIGN_SUCCESS') break
    await new Promise((r) => setImmediate(r))
  }
}
