/**
 * Benchmark 3: request economy, on a controlled clock (no real waiting). The status changes
 * at T after the redirect, T over 0–120 s. For the library's schedule (the same `nextPollDelay`
 * the poller uses, with jitter from a seeded generator), a fixed 2 s loop and a fixed 5 s loop:
 * detection delay (p50, p95) for T ≤ 20 s and T > 20 s, and requests over a full 120 s wait.
 */
import { DEFAULT_POLLING, nextPollDelay } from '../src/machine/schedule.js'
import { seededRandom } from '../src/simulator/faults.js'
import { quantile } from './common.js'

export interface ScheduleFigures {
  earlyP50Ms: number
  earlyP95Ms: number
  lateP50Ms: number
  lateP95Ms: number
  requests120s: number
}

export interface EconomyFigures {
  samples: number
  library: ScheduleFigures
  fixed2s: ScheduleFigures
  fixed5s: ScheduleFigures
  earlyDetectionP95Ratio: number
  requestsRatio120s: number
}

type Schedule = (lastPollAt: number, random: () => number) => number

/** The library's poller: the first request at once (the status changes from the redirect's baseline), then the schedule, counted from that change. */
const library: Schedule = (t, random) => t + nextPollDelay(t, DEFAULT_POLLING, random())
const fixed = (ms: number): Schedule => (t) => t + ms

/** Poll times of one schedule from 0 until `until` (inclusive of the first one at or after it). */
function detect(schedule: Schedule, changeAt: number, random: () => number): { delay: number; requests: number } {
  let t = 0
  let requests = 1
  while (t < changeAt) {
    t = schedule(t, random)
    requests++
  }
  return { delay: t - changeAt, requests }
}

function figures(schedule: Schedule, samples: number, seed: number): ScheduleFigures {
  const random = seededRandom(seed)
  const pick = seededRandom(seed + 1)
  const early: number[] = []
  const late: number[] = []
  for (let i = 0; i < samples; i++) {
    const T = pick() * 120_000
    const { delay } = detect(schedule, T, random)
    ;(T <= 20_000 ? early : late).push(delay)
  }
  // Requests over a full 120 s wait (the status never changes): averaged over runs for the jitter.
  let total = 0
  const runs = 200
  for (let i = 0; i < runs; i++) {
    let t = 0
    let n = 1
    for (;;) {
      t = schedule(t, random)
      if (t > 120_000) break
      n++
    }
    total += n
  }
  return {
    earlyP50Ms: Math.round(quantile(early, 0.5)),
    earlyP95Ms: Math.round(quantile(early, 0.95)),
    lateP50Ms: Math.round(quantile(late, 0.5)),
    lateP95Ms: Math.round(quantile(late, 0.95)),
    requests120s: Math.round((total / runs) * 10) / 10,
  }
}

export function economy(samples = 20_000, seed = 7): EconomyFigures {
  const lib = figures(library, samples, seed)
  const f2 = figures(fixed(2000), samples, seed)
  const f5 = figures(fixed(5000), samples, seed)
  return {
    samples,
    library: lib,
    fixed2s: f2,
    fixed5s: f5,
    earlyDetectionP95Ratio: Math.round((lib.earlyP95Ms / f2.earlyP95Ms) * 1000) / 1000,
    requestsRatio120s: Math.round((lib.requests120s / f2.requests120s) * 1000) / 1000,
  }
}
