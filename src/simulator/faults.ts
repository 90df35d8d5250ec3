/**
 * A fault profile: what can go wrong with each API request (initiate, status, finalize) and how
 * often. Probabilities are per request, in `[0, 1]`; draws come from a generator seeded per user,
 * so a run is the same for the same seed. The token endpoint has faults of its own
 * (`tokenServerError`, `tokenRedirect`), drawn from one generator for all token requests and
 * read from the simulator-wide `faults` only (a token request names no user).
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
   * The connection is refused at once. In process (`simulator.fetch`) the call rejects as
   * Node's `fetch` does for a refused port (`TypeError: fetch failed`, cause `ECONNREFUSED`)
   * with no I/O at all — no socket, no timer, nothing for the event loop to wait on; over HTTP
   * the socket is destroyed as soon as the request arrives (the client sees a reset). A poll
   * loop that retries such answers without a real timer turn spins (issue 9, item 1).
   */
  refused?: number
  /**
   * A `307` or `308` whose `Location` is the same path on another origin (`redirectTo`):
   * following it would send the bearer token (or a re-POSTed body) elsewhere. The simulator's
   * state is not touched.
   */
  crossOriginRedirect?: number
  /**
   * The origin the `crossOriginRedirect` and `tokenRedirect` faults point at (count what it
   * receives: it must be nothing).
   * @default 'https://elsewhere.invalid'
   */
  redirectTo?: string
  /**
   * A `200` whose headers come at once and whose (correct) body then trickles one byte every
   * `slowBodyByteMs` — the whole body takes far longer than any sane request timeout. The
   * stream stops, and its timer is cleared, as soon as the client goes away.
   */
  slowBody?: number
  /** @default 1000 */
  slowBodyByteMs?: number
  /**
   * A `200` whose body is the correct answer with a `padding` string added, `hugeBodyBytes`
   * long in all, without a `Content-Length`. It is generated lazily in 64 KiB chunks as the
   * client reads (never held in memory) and stops as soon as the client goes away: a client
   * without a size cap reads it all and, since it is valid JSON, even accepts it.
   */
  hugeBody?: number
  /** @default 16777216 (16 MiB) */
  hugeBodyBytes?: number
  /**
   * The first access token starts answering `401` after this many API requests (token expiry
   * mid-flow): clients must fetch a new one.
   */
  expireFirstTokenAfter?: number
  /** After signing, the status answers the stale `SIGN_SESSION_ID_SUCCESSFULLY_CREATED` this many times first. */
  staleAnswersAfterSign?: number
  /** Token endpoint: a `503` (the identity server is down). */
  tokenServerError?: number
  /** Token endpoint: a `307` or `308` to the same path on `redirectTo` (a client must not re-POST the password there). */
  tokenRedirect?: number
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
  | { kind: 'refused' }
  | { kind: 'redirect'; status: 307 | 308; to: string }
  | { kind: 'slow-body'; byteMs: number }
  | { kind: 'huge-body'; bytes: number }

/** What a drawn fault does to one token request. */
export type TokenFault = { kind: 'none' } | { kind: 'server-error'; status: 503 } | { kind: 'redirect'; status: 307 | 308; to: string }

/** Where redirect faults point by default: a name that never resolves. */
export const DEFAULT_REDIRECT_TO = 'https://elsewhere.invalid'

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

/** Picks by cumulative probability from one draw `r`. */
function picker(r: number) {
  return (p: number | undefined) => {
    if (!p) return false
    if (r < p) return true
    r -= p
    return false
  }
}

const redirectStatus = (random: () => number) => (random() < 0.5 ? 307 : 308) as 307 | 308

/**
 * Draws the fault of one request from a profile (one draw, so the order of faults is fixed by
 * the seed). Kinds are tried in a fixed order; the kinds added later come last, so a profile
 * without them draws exactly what it drew before they existed.
 */
export function drawFault(profile: FaultProfile, random: () => number): Fault {
  const pick = picker(random())
  if (pick(profile.serverError)) return { kind: 'server-error', status: ([500, 502, 503] as const)[Math.floor(random() * 3)]! }
  if (pick(profile.rateLimit)) return { kind: 'rate-limit', retryAfterSeconds: profile.retryAfterSeconds ?? 1 }
  if (pick(profile.reset)) return { kind: 'reset' }
  if (pick(profile.hang)) return { kind: 'hang', ms: profile.hangMs ?? 15_000 }
  if (pick(profile.truncated)) return { kind: 'truncated' }
  if (pick(profile.html)) return { kind: 'html' }
  if (pick(profile.wrongShape)) return { kind: 'wrong-shape' }
  if (pick(profile.latency)) return { kind: 'latency', ms: profile.latencyMs ?? 300 }
  if (pick(profile.refused)) return { kind: 'refused' }
  if (pick(profile.crossOriginRedirect)) return { kind: 'redirect', status: redirectStatus(random), to: profile.redirectTo ?? DEFAULT_REDIRECT_TO }
  if (pick(profile.slowBody)) return { kind: 'slow-body', byteMs: profile.slowBodyByteMs ?? 1000 }
  if (pick(profile.hugeBody)) return { kind: 'huge-body', bytes: profile.hugeBodyBytes ?? 16 * 1024 * 1024 }
  return { kind: 'none' }
}

/** Draws the fault of one token request (see `tokenServerError` and `tokenRedirect`). */
export function drawTokenFault(profile: FaultProfile, random: () => number): TokenFault {
  const pick = picker(random())
  if (pick(profile.tokenServerError)) return { kind: 'server-error', status: 503 }
  if (pick(profile.tokenRedirect)) return { kind: 'redirect', status: redirectStatus(random), to: profile.redirectTo ?? DEFAULT_REDIRECT_TO }
  return { kind: 'none' }
}
