import type { ResolvedPolling } from './types.js'

/** Polling defaults (milliseconds). */
export const DEFAULT_POLLING: ResolvedPolling = {
  intervalMs: 2000,
  maxIntervalMs: 5000,
  jitter: 0.1,
  phaseTimeoutMs: 120_000,
  finalizeTimeoutMs: 600_000,
  failConfirmMs: 10_000,
}

/**
 * How long the schedule stays at `intervalMs` after a status change before it starts to back
 * off. Status changes right after a redirect must be seen as fast as a fixed 2 s loop sees
 * them; waits longer than this are rare and may cost a little latency for far fewer requests.
 */
export const FAST_WINDOW_MS = 20_000
/** How long the back-off takes to grow from `intervalMs` to `maxIntervalMs`. */
export const RAMP_MS = 20_000

/**
 * The pause before the next request, before jitter: `intervalMs` for the first
 * {@link FAST_WINDOW_MS} after the last status change, then a linear ramp over {@link RAMP_MS}
 * to `maxIntervalMs`.
 */
export function baseDelay(sinceChangeMs: number, polling: Pick<ResolvedPolling, 'intervalMs' | 'maxIntervalMs'>): number {
  const { intervalMs, maxIntervalMs } = polling
  if (maxIntervalMs <= intervalMs || sinceChangeMs <= FAST_WINDOW_MS) return intervalMs
  const t = Math.min(1, (sinceChangeMs - FAST_WINDOW_MS) / RAMP_MS)
  return intervalMs + (maxIntervalMs - intervalMs) * t
}

/**
 * The pause before the next request.
 *
 * @param sinceChangeMs time since the last status change (or since the phase began)
 * @param polling resolved polling options
 * @param random a number in `[0, 1)`; `Math.random()` in production, fixed in tests
 * @param retryAfterMs the server's `Retry-After`, honoured as a lower bound
 * @returns whole milliseconds, never negative
 */
export function nextPollDelay(
  sinceChangeMs: number,
  polling: Pick<ResolvedPolling, 'intervalMs' | 'maxIntervalMs' | 'jitter'>,
  random: number,
  retryAfterMs?: number,
): number {
  const base = baseDelay(Math.max(0, sinceChangeMs), polling)
  const jittered = base * (1 + polling.jitter * (2 * random - 1))
  const delay = retryAfterMs !== undefined && retryAfterMs > jittered ? retryAfterMs : jittered
  return Math.max(0, Math.round(delay))
}

/**
 * The next attempt time, clamped so that it is never after the deadline: the worker then wakes
 * up at the deadline and fails with `timeout` instead of sleeping past it.
 */
export function nextAttemptAt(now: number, delayMs: number, deadlineAt: number): number {
  return Math.min(now + delayMs, deadlineAt)
}

/** The absolute deadline of a phase: `timeoutMs` after the last status change. */
export function phaseDeadline(lastChangeAt: number, timeoutMs: number): number {
  return lastChangeAt + timeoutMs
}
