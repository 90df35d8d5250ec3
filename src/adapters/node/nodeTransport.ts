/**
 * An {@link HttpTransport} on node:http / node:https with keep-alive: the provider client's
 * requests without `fetch`'s web streams, `Request`/`Response` and `Headers` objects (about a
 * third of the CPU per status poll on Node 20). The client keeps every guarantee of its own:
 * the timeout, the body limit, redirects refused, the error mapping.
 */
import http from 'node:http'
import https from 'node:https'
import type { HttpAnswer, HttpTransport, TransportRequest } from '../http/transport.js'

/** Options of {@link createNodeTransport}. */
export interface NodeTransportOptions {
  /**
   * Most connections open at once per origin; more requests wait for one. A cap below the
   * requests in flight at once (poll rate × provider latency) delays polls.
   * @default Infinity (as `fetch`)
   */
  maxSockets?: number
  /**
   * How long an idle connection stays open for the next request, in milliseconds. Idle
   * connections never keep the process alive.
   * @default 4000
   */
  idleTimeoutMs?: number
}

/** The transport, and a way to close its idle connections. */
export interface NodeTransport extends HttpTransport {
  /** Closes the open connections (requests on their way fail with a network error). */
  destroy(): void
}

const positiveInt = (name: string, v: unknown, dflt: number, infinite = false): number => {
  if (v === undefined) return dflt
  if (infinite && v === Infinity) return v
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new TypeError(`createNodeTransport: ${name} must be a positive integer${infinite ? ' or Infinity' : ''} (got ${String(v)})`)
  return v
}

/**
 * Creates a transport for `createHttpApi({ transport })` on Node: node:http / node:https with
 * a keep-alive agent per scheme.
 *
 * @example
 * import { createHttpApi } from '10npay-identification'
 * import { createNodeTransport, createPasswordGrantTokenSource } from '10npay-identification/node'
 *
 * const api = createHttpApi({ baseUrl: 'https://api-test.10npay.com', getAccessToken: tokens, transport: createNodeTransport() })
 */
export function createNodeTransport(options: NodeTransportOptions = {}): NodeTransport {
  if (options === null || typeof options !== 'object') throw new TypeError('createNodeTransport: options must be an object')
  const maxSockets = positiveInt('maxSockets', options.maxSockets, Infinity, true)
  const timeout = positiveInt('idleTimeoutMs', options.idleTimeoutMs, 4000)
  // Idle sockets are unref'd by the agent (keepSocketAlive): they never hold the process open.
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets, timeout }),
    'https:': new https.Agent({ keepAlive: true, maxSockets, timeout }),
  }

  const transport = ((r: TransportRequest) =>
    new Promise<HttpAnswer>((resolve, reject) => {
      let url: URL
      try {
        url = new URL(r.url)
      } catch {
        throw new TypeError(`createNodeTransport: not an absolute URL: ${String(r.url)}`)
      }
      const protocol = url.protocol
      if (protocol !== 'http:' && protocol !== 'https:') throw new TypeError(`createNodeTransport: ${protocol} URLs are not supported`)
      const signal = r.signal
      if (signal.aborted) throw signal.reason
      const headers = r.body === undefined ? r.headers : { ...r.headers, 'content-length': String(Buffer.byteLength(r.body)) }
      const request = (protocol === 'https:' ? https : http).request(url, { method: r.method, agent: agents[protocol], headers })
      let settled = false
      const onAbort = () => request.destroy(signal.reason instanceof Error ? signal.reason : new Error('the request was aborted'))
      signal.addEventListener('abort', onAbort, { once: true })
      const done = () => signal.removeEventListener('abort', onAbort)
      request.on('error', (err) => {
        done()
        if (!settled) {
          settled = true
          reject(err)
        }
      })
      request.once('response', (res) => {
        settled = true
        resolve(answer(res, done))
      })
      request.end(r.body)
    })) as NodeTransport
  transport.destroy = () => {
    agents['http:'].destroy()
    agents['https:'].destroy()
  }
  return transport
}

/** The response as an {@link HttpAnswer}: chunks handed over one at a time (the socket paused meanwhile). */
function answer(res: http.IncomingMessage, done: () => void): HttpAnswer {
  const chunks: Buffer[] = []
  let ended = false
  let failure: Error | undefined
  let waiting: { resolve: (c: Uint8Array | null) => void; reject: (e: unknown) => void } | undefined
  const wake = () => {
    const w = waiting
    if (!w) return
    if (chunks.length > 0) {
      waiting = undefined
      w.resolve(chunks.shift()!)
    } else if (failure) {
      waiting = undefined
      w.reject(failure)
    } else if (ended) {
      waiting = undefined
      w.resolve(null)
    }
  }
  res.on('data', (c: Buffer) => {
    chunks.push(c)
    res.pause()
    wake()
  })
  res.once('end', () => {
    ended = true
    done()
    wake()
  })
  // An answer cut short: 'aborted' / 'error', or the socket closed before the end.
  const broke = (err?: Error) => {
    if (ended || failure) return
    failure = err ?? new Error('the connection closed before the body ended')
    done()
    wake()
  }
  res.once('error', broke)
  res.once('close', () => broke())
  return {
    status: res.statusCode ?? 0,
    headers: {
      get(name: string) {
        const v = res.headers[name.toLowerCase()]
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v
      },
    },
    read() {
      if (chunks.length > 0) {
        const c = chunks.shift()!
        if (chunks.length === 0) res.resume()
        return Promise.resolve(c)
      }
      if (failure) return Promise.reject(failure)
      if (ended) return Promise.resolve(null)
      res.resume()
      return new Promise((resolve, reject) => (waiting = { resolve, reject }))
    },
    cancel(reason) {
      if (ended) return
      failure ??= reason instanceof Error ? reason : new Error('the body was cancelled')
      // The rest of the body is never read: the socket is not reused.
      res.destroy()
      done()
      wake()
    },
  }
}
