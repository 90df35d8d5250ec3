/**
 * The one exchange every request of the library goes through (the client's three calls and the
 * token source): a timeout on the injected clock that covers the whole request, body included;
 * the caller's signal linked in; redirects refused; the body streamed and cut at a byte limit;
 * the socket released (controller aborted, body cancelled) whenever the body was not read to
 * its end. It throws nothing: the outcome says what happened, and each caller maps it.
 */
import type { Clock } from '../../machine/clock.js'

/** What one exchange came to. */
export type Outcome =
  /** A complete answer (any status but 3xx), its body decoded as UTF-8. */
  | { type: 'response'; status: number; headers: Headers; text: string }
  /** A 3xx, or a browser's `opaqueredirect` (status 0); `location` without query and fragment. */
  | { type: 'redirect'; status: number; location: string | undefined }
  /** The body (or its `Content-Length`) passed `maxBytes`. */
  | { type: 'too-large'; status: number; headers: Headers; declared: number | undefined }
  /** The timeout passed, before the headers or while the body was read. */
  | { type: 'timeout'; phase: 'headers' | 'body'; status: number | undefined }
  /** The transport failed (socket errors, a broken body stream). */
  | { type: 'network'; phase: 'headers' | 'body'; status: number | undefined; error: unknown }
  /** The caller's signal aborted. */
  | { type: 'aborted'; reason: unknown }

export interface ExchangeOptions {
  /** Starts the request with the exchange's own signal (pass it to `fetch`, with `redirect: 'manual'`). */
  start: (signal: AbortSignal) => Promise<Response>
  timeoutMs: number
  maxBytes: number
  clock: Clock
  /** The caller's signal. */
  signal?: AbortSignal | undefined
}

const decoder = new TextDecoder()
const noop = () => {}

/** Where a redirect pointed, without credentials, query or fragment (they may hold secrets). */
function safeLocation(response: Response): string | undefined {
  const raw = response.headers?.get?.('location')
  if (!raw) return undefined
  try {
    const u = new URL(raw, response.url || undefined)
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
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  let response: Response | undefined
  let rejectWait: ((e: unknown) => void) | undefined
  let complete = false
  let phase: 'headers' | 'body' = 'headers'

  const stop = (why: 'timeout' | 'aborted') => {
    if (ended) return
    ended = why
    const reason = why === 'aborted' ? signal!.reason : new Error('the request timed out')
    controller.abort(reason)
    rejectWait?.(reason)
    reader?.cancel(reason).catch(noop)
  }
  const onAbort = () => stop('aborted')
  signal?.addEventListener('abort', onAbort)
  const timer = clock.setTimeout(() => stop('timeout'), o.timeoutMs)
  const endedOutcome = (): Outcome =>
    ended === 'aborted' ? { type: 'aborted', reason: signal!.reason } : { type: 'timeout', phase, status: response?.status }

  try {
    try {
      // Raced against stop(): a transport that ignores the signal still ends at the timeout.
      response = await new Promise<Response>((resolve, reject) => {
        rejectWait = reject
        Promise.resolve(o.start(controller.signal)).then((r) => {
          if (ended) r?.body?.cancel().catch(noop)
          else resolve(r)
        }, reject)
      })
    } catch (error) {
      return ended ? endedOutcome() : { type: 'network', phase, status: undefined, error }
    }
    rejectWait = undefined
    if (ended) return endedOutcome()
    const status = response.status
    if (response.type === 'opaqueredirect' || (status >= 300 && status <= 399)) {
      return { type: 'redirect', status, location: safeLocation(response) }
    }
    const declared = response.headers.get('content-length')
    if (declared !== null && Number(declared) > o.maxBytes) {
      return { type: 'too-large', status, headers: response.headers, declared: Number(declared) }
    }
    phase = 'body'
    const body = response.body
    let text = ''
    if (body) {
      reader = body.getReader()
      let first: Uint8Array | undefined
      let more: Uint8Array[] | undefined
      let size = 0
      for (;;) {
        const { done, value } = await reader.read()
        if (ended) return endedOutcome()
        if (done) break
        if (!(value instanceof Uint8Array)) throw new TypeError('the response body yielded something other than bytes')
        size += value.byteLength
        if (size > o.maxBytes) return { type: 'too-large', status, headers: response.headers, declared: undefined }
        if (first === undefined) first = value
        else (more ??= [first]).push(value)
      }
      complete = true
      if (more) text = decoder.decode(concat(more, size))
      else if (first) text = decoder.decode(first)
    } else complete = true
    return { type: 'response', status, headers: response.headers, text }
  } catch (error) {
    return ended ? endedOutcome() : { type: 'network', phase, status: response?.status, error }
  } finally {
    clock.clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
    if (!complete) {
      // Release the socket: the rest of the body is never read.
      controller.abort()
      if (reader) reader.cancel().catch(noop)
      else response?.body?.cancel().catch(noop)
    }
  }
}

const LOOPBACK = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/i

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
  const ok = url.protocol === 'https:' || (url.protocol === 'http:' && (allowInsecureHttp || LOOPBACK.test(url.hostname)))
  if (!ok) {
    throw new TypeError(`${fn}: ${option} must be https: (http: only for loopback hosts or with allowInsecureHttp: true); got ${String(value)}`)
  }
  return url
}
