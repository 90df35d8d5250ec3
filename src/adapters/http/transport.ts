/**
 * The one exchange every request of the library goes through (the client's three calls and the
 * token source): a timeout on the injected clock that covers the whole request, body included;
 * the caller's signal linked in; redirects refused; the body streamed and cut at a byte limit;
 * the socket released (controller aborted, body cancelled) whenever the body was not read to
 * its end. It throws nothing: the outcome says what happened, and each caller maps it.
 *
 * A request goes out through `fetch` or through an {@link HttpTransport} (on Node,
 * `createNodeTransport()` from `10npay-identification/node`: node:http without the cost of
 * web streams); both end up as an {@link HttpAnswer} here.
 */
import type { Clock } from '../../machine/clock.js'

/** One request as a transport gets it. */
export interface TransportRequest {
  method: 'GET' | 'POST'
  /** The absolute URL. */
  url: string
  /** Lower-case names; `content-type` is set when there is a body. */
  headers: Record<string, string>
  /** A JSON text, for `POST`. */
  body?: string
  /** Aborts the request and the body's reading (the timeout, the caller's signal). */
  signal: AbortSignal
}

/** An answer as a transport hands it over: the head, and its body read chunk by chunk. */
export interface HttpAnswer {
  /** The HTTP status; `0` for a browser's `opaqueredirect`. */
  status: number
  /** Header lookup by name (any case); `null` when absent. */
  headers: { get(name: string): string | null }
  /** The next chunk of the body; `null` at its end. Rejects when the connection breaks. */
  read(): Promise<Uint8Array | null>
  /** Gives up the rest of the body and releases the connection. */
  cancel(reason?: unknown): void
  /** A browser's `opaqueredirect` (a redirect refused with `redirect: 'manual'`). */
  opaqueRedirect?: boolean
}

/**
 * Sends one request and resolves with the answer's head (redirects are never followed). It must
 * honour `request.signal`, before the head and while the body is read.
 */
export type HttpTransport = (request: TransportRequest) => Promise<HttpAnswer>

/** What one exchange came to. */
export type Outcome =
  /** A complete answer (any status but 3xx), its body decoded as UTF-8. */
  | { type: 'response'; status: number; headers: HttpAnswer['headers']; text: string }
  /** A 3xx, or a browser's `opaqueredirect` (status 0); `location` without query and fragment. */
  | { type: 'redirect'; status: number; location: string | undefined }
  /** The body (or its `Content-Length`) passed `maxBytes`. */
  | { type: 'too-large'; status: number; headers: HttpAnswer['headers']; declared: number | undefined }
  /** The timeout passed, before the headers or while the body was read. */
  | { type: 'timeout'; phase: 'headers' | 'body'; status: number | undefined }
  /** The transport failed (socket errors, a broken body stream). */
  | { type: 'network'; phase: 'headers' | 'body'; status: number | undefined; error: unknown }
  /** The caller's signal aborted. */
  | { type: 'aborted'; reason: unknown }

export interface ExchangeOptions {
  /** Starts the request with the exchange's own signal. */
  start: (signal: AbortSignal) => Promise<HttpAnswer>
  /** The request's URL (a relative `Location` is resolved against it). */
  url: string
  timeoutMs: number
  maxBytes: number
  clock: Clock
  /** The caller's signal. */
  signal?: AbortSignal | undefined
}

const noop = () => {}

/** A `fetch` `Response` as an {@link HttpAnswer}. */
export function answerOf(response: Response): HttpAnswer {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  const body = response.body
  return {
    status: response.status,
    headers: response.headers,
    opaqueRedirect: response.type === 'opaqueredirect',
    async read() {
      if (!body) return null
      reader ??= body.getReader()
      const { done, value } = await reader.read()
      return done ? null : value // exchange() checks that it is bytes
    },
    cancel(reason) {
      if (reader) reader.cancel(reason).catch(noop)
      else body?.cancel(reason).catch(noop)
    },
  }
}

/** Starts a request through `fetch` (`redirect: 'manual'`) as an {@link HttpAnswer}. */
export function fetchTransport(doFetch: typeof fetch): HttpTransport {
  return async (r) => answerOf(await doFetch(r.url, { method: r.method, headers: r.headers, signal: r.signal, redirect: 'manual', ...(r.body !== undefined && { body: r.body }) }))
}

const decoder = new TextDecoder()

/** Where a redirect pointed, without credentials, query or fragment (they may hold secrets). */
function safeLocation(answer: HttpAnswer, url: string): string | undefined {
  const raw = answer.headers?.get?.('location')
  if (!raw) return undefined
  try {
    const u = new URL(raw, url)
    return u.protocol === 'http:' || u.protocol === 'https:' ? `${u.origin}${u.pathname}` : `${u.protocol} URL`
  } catch {
    return undefined
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const all = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    all.set(c, at)
    at += c.byteLength
  }
  return all
}

/** Runs one request; see the module comment. Never rejects. */
export async function exchange(o: ExchangeOptions): Promise<Outcome> {
  const { clock, signal } = o
  if (signal?.aborted) return { type: 'aborted', reason: signal.reason }
  const controller = new AbortController()
  let ended: 'timeout' | 'aborted' | undefined
  let answer: HttpAnswer | undefined
  let rejectWait: ((e: unknown) => void) | undefined
  let complete = false
  let phase: 'headers' | 'body' = 'headers'

  const stop = (why: 'timeout' | 'aborted') => {
    if (ended) return
    ended = why
    const reason = why === 'aborted' ? signal!.reason : new Error('the request timed out')
    controller.abort(reason)
    rejectWait?.(reason)
    try {
      answer?.cancel(reason)
    } catch {
      /* the transport's own failure to cancel changes nothing here */
    }
  }
  const onAbort = () => stop('aborted')
  signal?.addEventListener('abort', onAbort)
  const timer = clock.setTimeout(() => stop('timeout'), o.timeoutMs)
  const endedOutcome = (): Outcome =>
    ended === 'aborted' ? { type: 'aborted', reason: signal!.reason } : { type: 'timeout', phase, status: answer?.status }

  try {
    let a: HttpAnswer
    try {
      // Raced against stop(): a transport that ignores the signal still ends at the timeout.
      a = await new Promise<HttpAnswer>((resolve, reject) => {
        rejectWait = reject
        Promise.resolve(o.start(controller.signal)).then((r) => {
          if (ended) safeCancel(r)
          else resolve(r)
        }, reject)
      })
    } catch (error) {
      return ended ? endedOutcome() : { type: 'network', phase, status: undefined, error }
    }
    rejectWait = undefined
    answer = a
    if (ended) return endedOutcome()
    const status = a.status
    if (a.opaqueRedirect || (status >= 300 && status <= 399)) {
      return { type: 'redirect', status, location: safeLocation(a, o.url) }
    }
    const declared = a.headers.get('content-length')
    if (declared !== null && Number(declared) > o.maxBytes) {
      return { type: 'too-large', status, headers: a.headers, declared: Number(declared) }
    }
    phase = 'body'
    let first: Uint8Array | undefined
    let more: Uint8Array[] | undefined
    let size = 0
    for (;;) {
      const value = await a.read()
      if (ended) return endedOutcome()
      if (value === null) break
      if (!(value instanceof Uint8Array)) throw new TypeError('the response body yielded something other than bytes')
      size += value.byteLength
      if (size > o.maxBytes) return { type: 'too-large', status, headers: a.headers, declared: undefined }
      if (first === undefined) first = value
      else (more ??= [first]).push(value)
    }
    complete = true
    const text = more ? decoder.decode(concat(more, size)) : first ? decoder.decode(first) : ''
    return { type: 'response', status, headers: a.headers, text }
  } catch (error) {
    return ended ? endedOutcome() : { type: 'network', phase, status: answer?.status, error }
  } finally {
    clock.clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
    if (!complete) {
      // Release the socket: the rest of the body is never read.
      controller.abort()
      if (answer) safeCancel(answer)
    }
  }
}

function safeCancel(a: HttpAnswer | undefined): void {
  try {
    a?.cancel()
  } catch {
    /* nothing more to release */
  }
}

const LOOPBACK = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/i

/** A loopback host name as `URL.hostname` gives it: `localhost`, `127.x.y.z` or `[::1]`. */
export const isLoopbackHost = (hostname: string): boolean => LOOPBACK.test(hostname)

/**
 * Checks a service URL option: `https:`, or `http:` on a loopback host (`localhost`,
 * `127.x.y.z`, `[::1]`) or with `allowInsecureHttp`; no credentials in it.
 * @throws TypeError naming the function and the option
 */
export function checkServiceUrl(fn: string, option: string, value: unknown, allowInsecureHttp: boolean): URL {
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    throw new TypeError(`${fn}: ${option} must be an absolute URL (got ${JSON.stringify(String(value))})`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new TypeError(`${fn}: ${option} must not contain credentials (user:password@)`)
  }
  const ok = url.protocol === 'https:' || (url.protocol === 'http:' && (allowInsecureHttp || isLoopbackHost(url.hostname)))
  if (!ok) {
    throw new TypeError(`${fn}: ${option} must be https: (http: only for loopback hosts or with allowInsecureHttp: true); got ${String(value)}`)
  }
  return url
}
