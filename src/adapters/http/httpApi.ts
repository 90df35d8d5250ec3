import ky, { type KyInstance } from 'ky'
import type {
  FinalizeRequest,
  FinalizeResponse,
  IdentificationApi,
  InitiateRequest,
  RequestOptions,
  StatusResponse,
  UserType,
} from '../../machine/types.js'
import { systemClock, type Clock } from '../../machine/clock.js'
import { describeIssues } from '../../machine/input.js'
import { kindForStatus, parseRetryAfter, plainCause, TenNPayError } from './errors.js'
import { redact } from '../../machine/redact.js'
import {
  finalizeRequestSchema,
  finalizeResponseSchema,
  initiateRequestSchema,
  statusRequestSchema,
  statusResponseSchema,
} from './schemas.js'
import { answerOf, checkServiceUrl, exchange, fetchTransport, type HttpAnswer, type HttpTransport } from './transport.js'

/** Returns an access token; with `forceRefresh` a fresh one (the last one was refused). */
export type GetAccessToken = (o: { forceRefresh: boolean }) => string | Promise<string>

/** Options of {@link createHttpApi}. */
export interface HttpApiOptions {
  /**
   * The API's base URL, e.g. `https://api-test.10npay.com`. Must be `https:`; `http:` only for
   * a loopback host (`localhost`, `127.x.y.z`, `[::1]`) or with `allowInsecureHttp`.
   */
  baseUrl: string
  /** Supplies the bearer token. Called once per request; with `forceRefresh: true` once after a `401`. */
  getAccessToken: GetAccessToken
  /**
   * The transport, for tests and custom runtimes (`simulator.fetch`). It is always called with
   * `redirect: 'manual'` and a signal it should honour.
   * @default globalThis.fetch
   */
  fetch?: typeof fetch
  /**
   * Sends the requests instead of `fetch` (not both). On Node, `createNodeTransport()` from
   * `10npay-identification/node` is node:http with keep-alive: about a third of `fetch`'s CPU
   * per request. Redirects, timeouts, the body limit and the error mapping stay the client's.
   * @default requests go through `fetch`
   */
  transport?: HttpTransport
  /**
   * Per request, in milliseconds: the whole request, reading the body included.
   * @default 10000
   */
  requestTimeoutMs?: number
  /**
   * The largest body read, in bytes (error bodies too). Bodies are streamed and cut here; a
   * larger answer (or a larger `Content-Length`) is a `bad-response`.
   * @default 1048576
   */
  maxResponseBytes?: number
  /**
   * Allows an `http:` `baseUrl` off loopback hosts (a proxy inside a private network, say).
   * Other schemes are refused either way.
   * @default false
   */
  allowInsecureHttp?: boolean
  /**
   * The timers of the per-request timeout (`setTimeout` / `clearTimeout`); XState's
   * `SimulatedClock` fits.
   * @default systemClock
   */
  clock?: Clock
}

type Schema<T> = { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: unknown[] } } }

const MAX_SNIPPET = 160
/** Provider text is redacted within this window only (the excerpt shows far less): bounded work. */
const REDACT_WINDOW = 4096

/** A short, single-line, printable, redacted excerpt of provider text for error messages. */
function snippet(text: string, secrets: readonly string[]): string {
  const flat = redact(text.slice(0, REDACT_WINDOW), secrets).replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()
  return flat.length > MAX_SNIPPET ? `${flat.slice(0, MAX_SNIPPET)}…` : flat
}

/**
 * The readable part of a provider body, redacted: a problem-JSON's title and detail, else an
 * excerpt. `secrets` (the bearer tokens of the request) are replaced wherever they appear.
 */
function describeBody(text: string, secrets: readonly string[]): string {
  try {
    const j = JSON.parse(text) as Record<string, unknown> | null
    if (j && typeof j === 'object') {
      const parts = [j['title'], j['detail'] ?? j['message'] ?? j['error_description'] ?? j['error']].filter(
        (p): p is string => typeof p === 'string' && p !== '',
      )
      if (parts.length > 0) return snippet(parts.join(': '), secrets)
    }
  } catch {
    /* not JSON */
  }
  return snippet(text, secrets)
}

/** The keys of the initiate body that may be `null`, meaning "not given". */
const OPTIONAL_INITIATE = ['localTimezone', 'userAgent', 'browserLanguage', 'userLanguage', 'deviceName'] as const

/**
 * Builds the provider client on `fetch`. Every failure is a {@link TenNPayError}; an abort
 * through `signal` rejects with the signal's reason.
 *
 * All three calls go through one `send()`: one timeout on `clock` that covers the body, the
 * caller's signal linked in, redirects refused (`redirect: 'manual'`; a `3xx` is a
 * `bad-response`), the body streamed and cut at `maxResponseBytes`, one error mapping, one
 * forced token refresh after a `401`. Through `fetch`, ky builds the two POSTs (its own timeout
 * and retries off: the chart owns retries) and the status GET, the hot path, calls `fetch`
 * straight; with `transport` (on Node, `createNodeTransport()`) every call goes through it.
 *
 * @example
 * const api = createHttpApi({ baseUrl: 'https://api-test.10npay.com', getAccessToken: tokens.getAccessToken })
 * const status = await api.getStatus({ userId: 42, userType: 0 })
 */
export function createHttpApi(options: HttpApiOptions): IdentificationApi {
  const fn = 'createHttpApi'
  if (!options || typeof options !== 'object') throw new TypeError(`${fn}: options are required`)
  const { getAccessToken } = options
  const allowInsecureHttp = options.allowInsecureHttp ?? false
  if (typeof allowInsecureHttp !== 'boolean') throw new TypeError(`${fn}: allowInsecureHttp must be a boolean`)
  const base = checkServiceUrl(fn, 'baseUrl', options.baseUrl, allowInsecureHttp)
  if (typeof getAccessToken !== 'function') throw new TypeError(`${fn}: getAccessToken must be a function`)
  const timeout = options.requestTimeoutMs ?? 10_000
  if (!Number.isInteger(timeout) || timeout < 1) {
    throw new TypeError(`${fn}: requestTimeoutMs must be a positive integer (got ${String(timeout)})`)
  }
  const maxBytes = options.maxResponseBytes ?? 1_048_576
  if (!Number.isInteger(maxBytes) || maxBytes < 1) {
    throw new TypeError(`${fn}: maxResponseBytes must be a positive integer (got ${String(maxBytes)})`)
  }
  const clock = options.clock ?? systemClock
  if (!clock || typeof clock.setTimeout !== 'function' || typeof clock.clearTimeout !== 'function') {
    throw new TypeError(`${fn}: clock must have setTimeout and clearTimeout`)
  }
  if (options.fetch !== undefined && typeof options.fetch !== 'function') throw new TypeError(`${fn}: fetch must be a function`)
  if (options.transport !== undefined && typeof options.transport !== 'function') throw new TypeError(`${fn}: transport must be a function (createNodeTransport())`)
  if (options.fetch !== undefined && options.transport !== undefined) throw new TypeError(`${fn}: pass fetch or transport, not both`)
  const transport = options.transport
  const prefix = base.href.endsWith('/') ? base.href : `${base.href}/`

  const doFetch: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  // ky builds the POSTs (JSON body, headers) and hands them to the transport unchanged: no
  // timeout, no retries, no HTTP errors of its own; send() owns all of that.
  const client: KyInstance = ky.create({
    prefixUrl: prefix,
    retry: 0,
    timeout: false,
    throwHttpErrors: false,
    redirect: 'manual',
    fetch: doFetch,
  })

  async function token(forceRefresh: boolean, call: string): Promise<string> {
    let t: unknown
    try {
      t = getAccessToken({ forceRefresh })
      if (typeof t !== 'string') t = await t
    } catch (err) {
      if (err instanceof TenNPayError) throw err
      const why = plainCause(err)
      throw new TenNPayError('unauthorized', `${call}: getAccessToken failed: ${why.message}`, { cause: why })
    }
    if (typeof t !== 'string' || t === '') throw new TenNPayError('unauthorized', `${call}: getAccessToken returned no token`)
    return t
  }

  /** Starts one attempt with `bearer` on the exchange's `signal`. */
  type Start = (bearer: string, signal: AbortSignal) => Promise<HttpAnswer>

  /** The one request path of the three calls. */
  async function send<T>(method: 'GET' | 'POST', url: string, start: Start, schema: Schema<T>, opts: RequestOptions | undefined): Promise<T> {
    const call = `${method} ${url}`
    const signal = opts?.signal
    signal?.throwIfAborted()
    const used: string[] = []
    // At most two attempts: the second only after a 401, with a forced refresh.
    for (let attempt = 0; attempt < 2; attempt++) {
      const forceRefresh = attempt > 0
      const bearer = await token(forceRefresh, call)
      used.push(bearer)
      const r = await exchange({ start: (s) => start(bearer, s), url, timeoutMs: timeout, maxBytes, clock, signal })
      if (r.type === 'response') {
        const status = r.status
        if (status >= 200 && status <= 299) {
          let json: unknown
          try {
            json = JSON.parse(r.text)
          } catch (err) {
            throw new TenNPayError(
              'bad-response',
              `${call} answered ${status} with a body that is not JSON: ${snippet(r.text, used) || '(empty)'}`,
              { httpStatus: status, cause: plainCause(err, used) },
            )
          }
          const parsed = schema.safeParse(json)
          if (!parsed.success) {
            throw new TenNPayError(
              'bad-response',
              redact(`${call} answered ${status} with an unexpected body (${describeIssues(parsed.error.issues as never)})`, used),
              { httpStatus: status },
            )
          }
          return parsed.data
        }
        if (status === 401 && !forceRefresh) continue
        const retryAfterMs = parseRetryAfter(r.headers.get('retry-after'))
        const detail = r.text ? `: ${describeBody(r.text, used)}` : ''
        throw new TenNPayError(kindForStatus(status), `${call} answered ${status}${status === 401 ? ' after a token refresh' : ''}${detail}`, {
          httpStatus: status,
          ...(retryAfterMs !== undefined && { retryAfterMs }),
        })
      }
      switch (r.type) {
        case 'aborted':
          throw r.reason
        case 'timeout':
          throw new TenNPayError(
            'timeout',
            r.phase === 'headers' ? `${call}: no answer within ${timeout} ms` : `${call}: the body did not arrive within ${timeout} ms (HTTP ${r.status})`,
          )
        case 'redirect':
          throw new TenNPayError(
            'bad-response',
            `${call} answered ${r.status > 0 ? `${r.status}, ` : 'with '}a redirect${r.location ? ` to ${redact(r.location, used)}` : ''}, which is not followed`,
            r.status > 0 ? { httpStatus: r.status } : {},
          )
        case 'too-large': {
          const retryAfterMs = parseRetryAfter(r.headers.get('retry-after'))
          throw new TenNPayError(
            'bad-response',
            `${call} answered ${r.status} with a body larger than the limit of ${maxBytes} bytes (maxResponseBytes)${r.declared !== undefined ? `: Content-Length ${r.declared}` : ''}`,
            { httpStatus: r.status, ...(retryAfterMs !== undefined && { retryAfterMs }) },
          )
        }
        case 'network': {
          const cause = plainCause(r.error, used)
          const inner = (r.error as { cause?: unknown } | null)?.cause
          const reason = `${cause.message}${inner !== null && typeof inner === 'object' ? ` (${plainCause(inner, used).message})` : ''}`
          throw new TenNPayError(
            'network',
            r.phase === 'headers'
              ? `${call}: network error: ${reason}`
              : `${call}: the connection broke while reading the body (HTTP ${r.status}): ${reason}`,
            { cause, ...(r.phase === 'body' && r.status !== undefined && { httpStatus: r.status }) },
          )
        }
      }
    }
    // Unreachable: the second attempt always returns or throws.
    throw new TenNPayError('unauthorized', `${call}: no attempt left`)
  }

  function check<T>(schema: Schema<T>, value: unknown, call: string): T {
    const r = schema.safeParse(value)
    if (!r.success) throw new TypeError(`${call}: invalid request: ${describeIssues(r.error.issues as never)}`)
    return r.data
  }

  const toStatus = (r: { videoIdentificationUrl?: string | null; videoIdentificationStatus?: string | null; message?: string | null }): StatusResponse => ({
    videoIdentificationUrl: r.videoIdentificationUrl ?? null,
    videoIdentificationStatus: r.videoIdentificationStatus ?? null,
    message: r.message ?? null,
  })

  const headers = (bearer: string): Record<string, string> => ({ authorization: `Bearer ${bearer}`, accept: 'application/json' })
  const post = (path: string, json: unknown): Start =>
    transport
      ? (bearer, signal) => transport({ method: 'POST', url: `${prefix}${path}`, headers: { ...headers(bearer), 'content-type': 'application/json' }, body: JSON.stringify(json), signal })
      : async (bearer, signal) => answerOf(await client.post(path, { json, headers: headers(bearer), signal }))

  /** The status GET: the transport, or `fetch` through the same shape. */
  const sendGet = transport ?? fetchTransport(doFetch)

  const INITIATE = 'Enrollment/initiate-external-identification'
  const FINALIZE = 'Enrollment/finalize-external-identification'

  return {
    async initiate(req: InitiateRequest, opts?: RequestOptions): Promise<StatusResponse> {
      const body: Record<string, unknown> = { ...check(initiateRequestSchema, req, 'initiate') }
      for (const k of OPTIONAL_INITIATE) if (body[k] === null || body[k] === undefined) delete body[k]
      return toStatus(await send('POST', `${prefix}${INITIATE}`, post(INITIATE, body), statusResponseSchema, opts))
    },
    async getStatus(req: { userId: number; userType: UserType }, opts?: RequestOptions): Promise<StatusResponse> {
      // The hot path: a plain check for the valid case, the schema's message for the other.
      const valid = req && Number.isInteger(req.userId) && req.userId >= 1 && req.userId <= 2147483647 && (req.userType === 0 || req.userType === 1)
      const { userId, userType } = valid ? req : check(statusRequestSchema, req, 'getStatus')
      const url = `${prefix}Enrollment/${userId}/${userType}/true/get-identification-process-status`
      return toStatus(
        await send(
          'GET',
          url,
          (bearer, signal) => sendGet({ method: 'GET', url, headers: headers(bearer), signal }),
          statusResponseSchema,
          opts,
        ),
      )
    },
    async finalize(req: FinalizeRequest, opts?: RequestOptions): Promise<FinalizeResponse> {
      const body = check(finalizeRequestSchema, req, 'finalize')
      return send('POST', `${prefix}${FINALIZE}`, post(FINALIZE, body), finalizeResponseSchema, opts)
    },
  }
}
