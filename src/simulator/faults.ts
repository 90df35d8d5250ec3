/**
 * A fault profile: what can go wrong with each API request (initiate, status, finalize) and how
 * often. Probabilities are per request, in `[0, 1]`; draws come from a generator seeded per user,
 * so a run is the same for the same seed.
 */
export interface FaultProfile {
  /** A `500`, `502` or `503`. */
  serverError?: number
  /** A `429` with `Retry-After: retryAfterSeconds`. */
  rateLimit?: number
  /** @default 1 */
  retryAfterSeconds?: number
  /** The connection is reset before an answer. */
  reset?: number
  /** The answer comes `hangMs` late (past the client's request timeout). */
  hang?: number
  /** @default 15000 */
  hangMs?: number
  /** A `200` whose JSON body is cut off. */
  truncated?: number
  /** A `200` with an HTML page (a proxy's error page). */
  html?: number
  /** A `200` with JSON of the wrong shape. */
  wrongShape?: number
  /** The answer is `latencyMs` late (but within the client's timeout). */
  latency?: number
  /** @default 300 */
  latencyMs?: number
  /**
   * The first access token starts answering `401` after this many API requests (token expiry
   * mid-flow): clients must fetch a new one.
   */
  expireFirstTokenAfter?: number
  /** After signing, the status answers the stale `SIGN_SESSION_ID_SUCCESSFULLY_CREATED` this many times first. */
  staleAnswersAfterSign?: number
}

/** What a drawn fault does to one request. */
export type Fault =
  | { kind: 'none' }
  | { kind: 'server-error'; status: 500 | 502 | 503 }
  | { kind: 'rate-limit'; retryAfterSeconds: number }
  | { kind: 'reset' }
  | { kind: 'hang'; ms: number }
  | { kind: 'truncated' }
  | { kind: 'html' }
  | { kind: 'wrong-shape' }
  | { kind: 'latency'; ms: number }

/** mulberry32: a small, fast, seedable generator of numbers in `[0, 1)`. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Draws the fault of one request from a profile (one draw, so the order of faults is fixed by the seed). */
export function drawFault(profile: FaultProfile, random: () => number): Fault {
  let r = random()
  const pick = (p: number | undefined) => {
    if (!p) return false
    if (r < p) return true
    r -= p
    return false
  }
  if (pick(profile.serverError)) return { kind: 'server-error', status: ([500, 502, 503] as const)[Math.floor(random() * 3)]! }
  if (pick(profile.rateLimit)) return { kind: 'rate-limit', retryAfterSeconds: profile.retryAfterSeconds ?? 1 }
  if (pick(profile.reset)) return { kind: 'reset' }
  if (pick(profile.hang)) return { kind: 'hang', ms: profile.hangMs ?? 15_000 }
  if (pick(profile.truncated)) return { kind: 'truncated' }
  if (pick(profile.html)) return { kind: 'html' }
  if (pick(profile.wrongShape)) return { kind: 'wrong-shape' }
  if (pick(profile.latency)) return { kind: 'latency', ms: profile.latencyMs ?? 300 }
  return { kind: 'none' }
}
