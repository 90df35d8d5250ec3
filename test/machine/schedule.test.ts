import { describe, expect, it } from 'vitest'
import { baseDelay, DEFAULT_POLLING, FAST_WINDOW_MS, nextPollDelay, RAMP_MS } from '../../src/machine/schedule.js'

const p = DEFAULT_POLLING

describe('poll schedule', () => {
  it.each([
    [0, 2000],
    [10_000, 2000],
    [FAST_WINDOW_MS, 2000],
    [FAST_WINDOW_MS + RAMP_MS / 2, 3500],
    [FAST_WINDOW_MS + RAMP_MS, 5000],
    [600_000, 5000],
  ])('base delay %i ms after the last change is %i ms', (since, expected) => {
    expect(baseDelay(since, p)).toBe(expected)
  })

  it('grows monotonically from intervalMs to maxIntervalMs', () => {
    let prev = 0
    for (let t = 0; t <= 120_000; t += 1000) {
      const d = baseDelay(t, p)
      expect(d).toBeGreaterThanOrEqual(prev)
      expect(d).toBeGreaterThanOrEqual(p.intervalMs)
      expect(d).toBeLessThanOrEqual(p.maxIntervalMs)
      prev = d
    }
  })

  it('applies ±jitter around the base delay', () => {
    expect(nextPollDelay(0, p, 0)).toBe(1800)
    expect(nextPollDelay(0, p, 0.5)).toBe(2000)
    expect(nextPollDelay(0, p, 0.999999)).toBe(2200)
    expect(nextPollDelay(0, { ...p, jitter: 0 }, 0.9)).toBe(2000)
  })

  it('honours Retry-After as a lower bound', () => {
    expect(nextPollDelay(0, p, 0.5, 7000)).toBe(7000)
    expect(nextPollDelay(0, p, 0.5, 500)).toBe(2000)
  })

  it('never backs off when maxIntervalMs equals intervalMs, and never goes negative', () => {
    expect(baseDelay(500_000, { intervalMs: 1000, maxIntervalMs: 1000 })).toBe(1000)
    expect(nextPollDelay(-5000, { intervalMs: 0, maxIntervalMs: 0, jitter: 1 }, 0)).toBe(0)
  })

  it('costs at most 60 % of a fixed 2 s loop over a 120 s wait', () => {
    let t = 0
    let n = 0
    while (t < 120_000) {
      n++
      t += nextPollDelay(t, p, 0.5)
    }
    expect(n).toBeLessThanOrEqual(36)
  })
})
