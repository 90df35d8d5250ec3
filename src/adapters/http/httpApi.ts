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
import { describeIssues } from '../../machine/input.js'
import { kindForStatus, parseRetryAfter, TenNPayError } from './errors.js'
import {
  finalizeRequestSchema,
  finalizeResponseSchema,
  initiateRequestSchema,
  statusRequestSchema,
  statusResponseSchema,
} from './schemas.js'

/** Returns an access token; with `forceRefresh` a fresh one (the last one was refused). */
export type GetAccessToken = (o: { forceRefresh: boolean }) => string | Promise<string>

/** Options of {@link createHttpApi}. */
export interface HttpApiOptions {
  /**
   * The API's base URL, e.g. `https://api-test.10npay.com`.
   */
  baseUrl: string
  /** Supplies the bearer token. Called once per request; with `forceRefresh: true` once after a `401`. */
  getAccessToken: GetAccessToken
  /**
   * The transport, for tests and custom runtimes (`simulator.fetch`).
   * @default globalThis.fetch
   */
  fetch?: typeof fetch
  /**
   * Per request, in milliseconds.
   * @default 10000
   */
  requestTimeoutMs?: number
}

type Schema<T> = { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: unknown[] } } }

const MAX_SNIPPET = 160

/** The reason the poll's own controller aborts with when the per-request timeout passes. */
class TimeoutSignalError extends Error {
  override readonly name = 'TimeoutSignalError'
}

/** A short, single-line, printable excerpt of a body for error messages. */
function snippet(text: string): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()
  return flat.length > MAX_SNIPPET ? `${flat.slice(0, MAX_SNIPPET)}…` : flat
}

/** The readable part of an error body: a problem-JSON's title and detail, else an excerpt. */
function describeBody(text: string): string {
  try {
    const j = JSON.parse(text) as Record<string, unknown>
    const parts = [j['title'], j['detail'] ?? j['message'] ?? j['error_description'] ?? j['error']].filter(
      (p): p is string => typeof p === 'string' && p !== '',
    )
    if (parts.length > 0) return snippet(parts.join(': '))
  } catch {
    /* not JSON */
  }
  return snippet(text)
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError'
}

/**
 * Builds the provider client on `fetch` (through ky, with ky's own retries off: the chart owns
 * retries). Every failure is a {@link TenNPayError}; an abort through `signal` rejects with the
 * signal's reason.
 *
 * @example
 * const api = createHttpApi({ baseUrl: 'https://api-test.10npay.com', getAccessToken: tokens.getAccessToken })
 * const status = await api.getStatus({ userId: 42, userType: 0 })
 */
export function createHttpApi(options: HttpApiOptions): IdentificationApi {
  if (!options || typeof options !== 'object') throw new TypeError('createHttpApi: options are required')
  const { baseUrl, getAccessToken } = options
  let base: URL
  try {
    base = new URL(baseUrl)
  } catch {
    throw new TypeError(`createHttpApi: baseUrl must be an absolute URL (got ${JSON.stringify(String(baseUrl))})`)
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new TypeError(`createHttpApi: baseUrl must be http(s) (got ${base.protocol})`)
  }
  if (typeof getAccessToken !== 'function') throw new TypeError('createHttpApi: getAccessToken must be a function')
  const timeout = options.requestTimeoutMs ?? 10_000
  if (!Number.isInteger(timeout) || timeout < 1) {
    throw new TypeError(`createHttpApi: requestTimeoutMs must be a positive integer (got ${String(timeout)})`)
  }
  if (options.fetch !== undefined && typeof options.fetch !== 'function') throw new TypeError('createHttpApi: fetch must be a function')
  const prefix = base.href.endsWith('/') ? base.href : `${base.href}/`

  const doFetch: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  // One ky instance for initiate and finalize; no hooks, so nothing is allocated per request beyond ky's own.
  const client: KyInstance = ky.create({
    prefixUrl: prefix,
    retry: 0,
    timeout,
    throwHttpErrors: false,
    ...(options.fetch && { fetch: options.fetch }),
  })

  async function token(forceRefresh: boolean, call: string): Promise<string> {
    let t: unknown
    try {
      t = getAccessToken({ forceRefresh })
      if (typeof t !== 'string') t = await t
    } catch (err) {
      if (err instanceof TenNPayError) throw err
      throw new TenNPayError('unauthorized', `${call}: getAccessToken failed: ${err instanceof Error ? err.message : 'unknown error'}`, {
        cause: err,
      })
    }
    if (typeof t !== 'string' || t === '') throw new TenNPayError('unauthorized', `${call}: getAccessToken returned no token`)
    return t
  }

  /**
   * The status poll, the hot path: `fetch` straight, with one controller and one timer for the
   * timeout. ky builds a `Request` per call and wraps it again; in process that costs about
   * 70 µs per poll, four times a whole bare poll (docs/benchmarks.md). The answer is mapped by
   * the same code as ky's.
   */
  async function pollFetch(path: string, bearer: string, signal: AbortSignal | undefined): Promise<Response> {
    const controller = new AbortController()
    const onAbort = () => controller.abort(signal!.reason)
    signal?.addEventListener('abort', onAbort)
    const timer = setTimeout(() => controller.abort(new TimeoutSignalError()), timeout)
    try {
      return await doFetch(prefix + path, {
        method: 'GET',
        headers: { authorization: `Bearer ${bearer}`, accept: 'application/json' },
        signal: controller.signal,
      })
    } catch (err) {
      if (controller.signal.reason instanceof TimeoutSignalError && !signal?.aborted) {
        const e = new Error('request timed out')
        e.name = 'TimeoutError'
        throw e
      }
      throw err
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }

  async function request<T>(
    method: 'get' | 'post',
    path: string,
    body: unknown,
    schema: Schema<T>,
    opts: RequestOptions | undefined,
  ): Promise<T> {
    const call = `${method.toUpperCase()} ${prefix}${path}`
    const signal = opts?.signal
    signal?.throwIfAborted()
    let forceRefresh = false
    for (;;) {
      const bearer = await token(forceRefresh, call)
      let response: Response
      try {
        response =
          method === 'get'
            ? await pollFetch(path, bearer, signal)
            : await client(path, {
                method,
                headers: { authorization: `Bearer ${bearer}`, accept: 'application/json' },
                ...(body !== undefined && { json: body }),
                ...(signal && { signal }),
              })
      } catch (err) {
        if (signal?.aborted) throw signal.reason
        if (err instanceof Error && err.name === 'TimeoutError') {
          throw new TenNPayError('timeout', `${call}: no answer within ${timeout} ms`, { cause: err })
        }
        const reason = err instanceof Error ? err.message + (err.cause instanceof Error ? ` (${err.cause.message})` : '') : 'unknown'
        throw new TenNPayError('network', `${call}: ${isAbort(err) ? 'aborted' : 'network error'}: ${reason}`, { cause: err })
      }
      const status = response.status
      let text: string
      try {
        text = await response.text()
      } catch (err) {
        if (signal?.aborted) throw signal.reason
        if (err instanceof Error && err.name === 'TimeoutError') {
          throw new TenNPayError('timeout', `${call}: the body did not arrive within ${timeout} ms`, { cause: err })
        }
        throw new TenNPayError('network', `${call}: the connection broke while reading the body (HTTP ${status})`, {
          cause: err,
          httpStatus: status,
        })
      }
      if (status === 401 && !forceRefresh) {
        forceRefresh = true
        continue
      }
      if (status < 200 || status > 299) {
        const kind = kindForStatus(status)
        const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'))
        const detail = text ? `: ${describeBody(text)}` : ''
        const opts2 = retryAfterMs === undefined ? { httpStatus: status } : { httpStatus: status, retryAfterMs }
        throw new TenNPayError(
          kind,
          `${call} answered ${status}${status === 401 ? ' after a token refresh' : ''}${detail}`,
          opts2,
        )
      }
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch (err) {
        throw new TenNPayError('bad-response', `${call} answered ${status} with a body that is not JSON: ${snippet(text) || '(empty)'}`, {
          httpStatus: status,
          cause: err,
        })
      }
      const parsed = schema.safeParse(json)
      if (!parsed.success) {
        throw new TenNPayError(
          'bad-response',
          `${call} answered ${status} with an unexpected body (${describeIssues(parsed.error.issues as never)})`,
          { httpStatus: status },
        )
      }
      return parsed.data
    }
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

  return {
    async initiate(req: InitiateRequest, opts?: RequestOptions): Promise<StatusResponse> {
      const body = check(initiateRequestSchema, req, 'initiate')
      return toStatus(await request('post', 'Enrollment/initiate-external-identification', body, statusResponseSchema, opts))
    },
    async getStatus(req: { userId: number; userType: UserType }, opts?: RequestOptions): Promise<StatusResponse> {
      // The hot path: a plain check for the valid case, the schema's message for the other.
      const valid = req && Number.isInteger(req.userId) && req.userId >= 1 && req.userId <= 2147483647 && (req.userType === 0 || req.userType === 1)
      const { userId, userType } = valid ? req : check(statusRequestSchema, req, 'getStatus')
      return toStatus(
        await request('get', `Enrollment/${userId}/${userType}/true/get-identification-process-status`, undefined, statusResponseSchema, opts),
      )
    },
    async finalize(req: FinalizeRequest, opts?: RequestOptions): Promise<FinalizeResponse> {
      const body = check(finalizeRequestSchema, req, 'finalize')
      return request('post', 'Enrollment/finalize-external-identification', body, finalizeResponseSchema, opts)
    },
  }
}
