import { DependencyError, FlowActionError, FlowNotFoundError, ServiceClosedError } from './errors.js'
import { isFlowId, type IdentificationService } from './identificationService.js'
import type { FlowHistoryEntry, FlowView } from './types.js'

/** Options of {@link createIdentificationHandler}. */
export interface IdentificationHandlerOptions {
  /**
   * Where the routes live.
   * @default '/identifications'
   */
  basePath?: string
  /**
   * Where `GET {basePath}/:id/success` sends the browser (303): a URL, `{id}` replaced by the
   * flow id, or a function of the flow id.
   * @default `${basePath}/{id}` (the flow's view)
   */
  successRedirect?: string | ((flowId: string) => string)
  /** Like `successRedirect`, for `/fail`. @default the same as successRedirect */
  failRedirect?: string | ((flowId: string) => string)
  /**
   * Who may see or act on a flow. Runs before any lookup, so that a denied request cannot tell
   * whether a flow exists. `flowId` is `null` for starting one (look at `body`'s user in your
   * session instead). Return `false` to answer `403`.
   * @default deny everything
   */
  authorize?: (request: Request, flowId: string | null, body?: { userId: number; userType: 0 | 1 }) => boolean | Promise<boolean>
  /**
   * The SSE heartbeat interval.
   * @default 15000
   */
  heartbeatMs?: number
  /**
   * Told about errors that became a `500` or `503`.
   * @default console.error
   */
  onError?: (error: unknown) => void
}

/** What a framework already knows about a request, for {@link createIdentificationHandler}'s handler. */
export interface HandlerContext {
  /**
   * The body a framework already parsed (Express's `express.json()`, Fastify): used instead of
   * reading the request's, which such a framework has already consumed.
   */
  body?: unknown
}

/** What {@link createIdentificationHandler} returns: a web-standard handler. */
export type IdentificationHandler = (request: Request, context?: HandlerContext) => Promise<Response>

/** The largest `POST` body the handler reads. */
export const MAX_BODY_BYTES = 16 * 1024

type Problem = { status: number; title: string; detail?: string; headers?: Record<string, string>; view?: FlowView }

const problem = ({ status, title, detail, headers, view }: Problem) =>
  new Response(JSON.stringify({ type: 'about:blank', title, status, ...(detail !== undefined && { detail }), ...(view && { view }) }), {
    status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...headers },
  })

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } })

const ACTIONS = new Set(['continue', 'retry', 'restart', 'cancel'])

class BodyError extends Error {
  constructor(readonly status: 413 | 415 | 400, message: string) {
    super(message)
  }
}

/** The request's media type, lower case, without parameters (`''` when there is none). */
const mediaType = (request: Request) => (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
const tooLarge = () => new BodyError(413, `the body must be at most ${MAX_BODY_BYTES} bytes`)

/** Reads a body up to {@link MAX_BODY_BYTES} (413 past it, before anything is parsed); `undefined` when there is none. */
async function readBody(request: Request, context: HandlerContext | undefined): Promise<unknown> {
  if (context && context.body !== undefined) {
    const size = JSON.stringify(context.body)?.length ?? 0
    if (size > MAX_BODY_BYTES) throw tooLarge()
    return context.body
  }
  const length = Number(request.headers.get('content-length') ?? NaN)
  if (length > MAX_BODY_BYTES) throw tooLarge()
  if (!request.body) return undefined
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > MAX_BODY_BYTES) throw tooLarge()
      chunks.push(value)
    }
  } finally {
    reader.cancel().catch(() => {})
  }
  if (size === 0) return undefined
  const type = mediaType(request)
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
    throw new BodyError(415, 'the body must be application/json')
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    bytes.set(c, at)
    at += c.byteLength
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    throw new BodyError(400, 'the body must be JSON: { "userId": number, "userType": 0 | 1 }')
  }
}

/**
 * A web-standard HTTP handler for an {@link IdentificationService}: `(request, context?) =>
 * Promise<Response>`, for Hono, Next.js route handlers, Deno, Bun, or Express and Fastify
 * through a `Request` adapter (pass the parsed body as `context.body` where the framework
 * already read it).
 *
 * | route | answer |
 * |---|---|
 * | `POST {basePath}` `{ userId, userType }` | `201` the view, once initiate answered (or the user's unfinished flow) |
 * | `GET {basePath}/:id` | the view |
 * | `GET {basePath}/:id/success`, `/fail` | records the provider's redirect, `303` to the app's page (GET only) |
 * | `POST {basePath}/:id/continue` (`retry`, `restart`, `cancel`) | the view; `409` with the view when the state does not accept it |
 * | `GET {basePath}/:id/events` | Server-Sent Events: `id:` the flow version, every change, a heartbeat; `Last-Event-ID` replays what was missed |
 * | `GET {basePath}/:id/history` | the flow's recent history |
 * | `GET {basePath}/health` | `200`/`503`: store and coordinator reachable, counts of flows (no authorization, no flow data) |
 *
 * `authorize` runs before any lookup. `POST` bodies must be `application/json` (415) and at
 * most 16 KiB (413). Ids match in any case. Bad ids answer `400`, unknown flows `404`, wrong
 * methods `405`, denied requests `403`, a dependency that fails `503`, all with a JSON problem
 * body; nothing throws past the handler.
 */
export function createIdentificationHandler(
  service: IdentificationService,
  options: IdentificationHandlerOptions = {},
): IdentificationHandler {
  if (!service || typeof service.start !== 'function') throw new TypeError('createIdentificationHandler: service must be an IdentificationService')
  const base = (options.basePath ?? '/identifications').replace(/\/+$/, '')
  if (!base.startsWith('/')) throw new TypeError('createIdentificationHandler: basePath must start with "/"')
  const authorize = options.authorize ?? (() => false)
  if (typeof authorize !== 'function') throw new TypeError('createIdentificationHandler: authorize must be a function')
  const heartbeatMs = options.heartbeatMs ?? 15_000
  const target = (t: IdentificationHandlerOptions['successRedirect'], id: string) =>
    t === undefined ? `${base}/${id}` : typeof t === 'function' ? t(id) : t.replaceAll('{id}', encodeURIComponent(id))
  const denied = () => problem({ status: 403, title: 'Forbidden' })

  async function route(request: Request, context: HandlerContext | undefined): Promise<Response> {
    const url = new URL(request.url)
    if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) return problem({ status: 404, title: 'Not Found' })
    const parts = url.pathname.slice(base.length).split('/').filter(Boolean)
    const method = request.method.toUpperCase()

    if (parts.length === 0) {
      if (method !== 'POST') return problem({ status: 405, title: 'Method Not Allowed', headers: { allow: 'POST' } })
      if (context?.body === undefined) {
        const type = mediaType(request)
        if (type !== 'application/json') return problem({ status: 415, title: 'Unsupported Media Type', detail: 'the body must be application/json' })
      }
      const body = (await readBody(request, context)) as { userId?: unknown; userType?: unknown; initiate?: unknown } | undefined
      const { userId, userType } = body && typeof body === 'object' ? body : ({} as Record<string, unknown>)
      if (typeof userId !== 'number' || !Number.isInteger(userId) || userId < 1 || userId > 2147483647) {
        return problem({ status: 400, title: 'Bad Request', detail: 'userId must be an integer from 1 to 2147483647' })
      }
      if (userType !== 0 && userType !== 1) return problem({ status: 400, title: 'Bad Request', detail: 'userType must be 0 or 1' })
      // authorize may read the body too: it gets a request that still has it.
      const forAuthorize = new Request(request.url, { method: 'POST', headers: request.headers, body: JSON.stringify(body), signal: request.signal })
      if (!(await authorize(forAuthorize, null, { userId, userType }))) return denied()
      const initiate = body!.initiate && typeof body!.initiate === 'object' ? (body!.initiate as Record<string, unknown>) : undefined
      try {
        return json(await service.start({ userId, userType, ...(initiate && { initiate: pickInitiate(initiate) }) }), 201)
      } catch (err) {
        if (err instanceof TypeError) return problem({ status: 400, title: 'Bad Request', detail: err.message })
        throw err
      }
    }

    if (parts.length === 1 && parts[0] === 'health') {
      if (method !== 'GET' && method !== 'HEAD') return problem({ status: 405, title: 'Method Not Allowed', headers: { allow: 'GET' } })
      const h = await service.health()
      return json({ ok: h.ok, store: h.store, coordinator: h.coordinator, ...(h.counts && { flows: h.counts }) }, h.ok ? 200 : 503)
    }

    const [rawId, action, ...rest] = parts
    if (!isFlowId(rawId)) return problem({ status: 400, title: 'Bad Request', detail: 'the flow id must be a UUID' })
    const id = rawId.toLowerCase()
    if (rest.length > 0) return problem({ status: 404, title: 'Not Found' })
    const getRoute = action === undefined || action === 'success' || action === 'fail' || action === 'events' || action === 'history'
    const allowFor = getRoute ? 'GET' : ACTIONS.has(action) ? 'POST' : undefined
    if (allowFor === undefined) return problem({ status: 404, title: 'Not Found' })
    // The provider's redirects change the flow: GET only (a HEAD, as link checkers and
    // prefetchers send, must not count as the user coming back).
    const headOk = allowFor === 'GET' && action !== 'success' && action !== 'fail'
    if (method !== allowFor && !(headOk && method === 'HEAD')) {
      return problem({ status: 405, title: 'Method Not Allowed', headers: { allow: allowFor } })
    }
    if (allowFor === 'POST') await readBody(request, context) // bounded and typed, though the actions take no body
    if (!(await authorize(request, id))) return denied()

    switch (action) {
      case undefined: {
        const view = await service.get(id)
        return view ? json(view) : notFound(id)
      }
      case 'history':
        return json(await service.history(id))
      case 'success':
      case 'fail': {
        // The provider's redirect is only a hint: the status endpoint decides what happens next.
        const cb = url.searchParams.get('bTrustAppCallBackId')
        await service.redirect(id, { outcome: action, bTrustAppCallBackId: cb }) // the service drops an empty one and cuts it at 512
        const to = target(action === 'success' ? options.successRedirect : (options.failRedirect ?? options.successRedirect), id)
        return new Response(null, { status: 303, headers: { location: to, 'cache-control': 'no-store' } })
      }
      case 'events': {
        const view = await service.get(id)
        if (!view) return notFound(id)
        const last = Number(request.headers.get('last-event-id') ?? url.searchParams.get('lastEventId') ?? NaN)
        return events(id, view, Number.isInteger(last) && last >= 0 ? last : undefined, request.signal)
      }
      default:
        return json(await service[action as 'continue' | 'retry' | 'restart' | 'cancel'](id))
    }
  }

  const notFound = (id: string) => problem({ status: 404, title: 'Not Found', detail: `no identification flow ${id}` })

  function events(id: string, first: FlowView, lastEventId: number | undefined, signal: AbortSignal): Response {
    const enc = new TextEncoder()
    let cleanup = () => {}
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        let open = true
        let sent = lastEventId ?? -1
        /** Views that arrive while the missed ones are read from the history wait here. */
        let queue: FlowView[] | undefined = []
        const send = (text: string) => {
          if (!open) return
          try {
            controller.enqueue(enc.encode(text))
          } catch {
            close()
          }
        }
        const close = () => {
          if (!open) return
          open = false
          unsubscribe()
          clearInterval(beat)
          signal.removeEventListener('abort', close)
          try {
            controller.close()
          } catch {
            /* already closed */
          }
        }
        cleanup = close
        const emit = (v: FlowView) => {
          if (v.version <= sent) return
          sent = v.version
          send(`id: ${v.version}\nevent: state\ndata: ${JSON.stringify(v)}\n\n`)
          if (v.state === 'finalized' || v.state === 'failed') close()
        }
        const unsubscribe = service.subscribe(id, (v) => (queue ? queue.push(v) : emit(v)))
        const beat = setInterval(() => send(': heartbeat\n\n'), heartbeatMs)
        signal.addEventListener('abort', close)
        send('retry: 2000\n\n')
        const replay: Promise<FlowView[]> =
          lastEventId === undefined
            ? Promise.resolve([first])
            : service.history(id).then(
                (h: FlowHistoryEntry[]) => [...h.flatMap((e) => (e.kind === 'view' && e.version > lastEventId ? [e.view] : [])), first],
                () => [first],
              )
        void replay.then((views) => {
          const later = queue ?? []
          queue = undefined
          for (const v of [...views, ...later].sort((a, b) => a.version - b.version)) emit(v)
        })
      },
      cancel() {
        cleanup()
      },
    })
    return new Response(stream, {
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' },
    })
  }

  return async (request, context) => {
    try {
      return await route(request, context)
    } catch (err) {
      if (err instanceof BodyError) {
        const title = err.status === 413 ? 'Content Too Large' : err.status === 415 ? 'Unsupported Media Type' : 'Bad Request'
        return problem({ status: err.status, title, detail: err.message })
      }
      if (err instanceof FlowNotFoundError) return problem({ status: 404, title: 'Not Found', detail: err.message })
      if (err instanceof FlowActionError) return problem({ status: 409, title: 'Conflict', detail: err.message, view: err.view })
      const report = () => {
        try {
          ;(options.onError ?? ((e: unknown) => console.error('identification handler:', e)))(err)
        } catch {
          /* ignore */
        }
      }
      report()
      if (err instanceof DependencyError || err instanceof ServiceClosedError) {
        return problem({ status: 503, title: 'Service Unavailable', detail: err instanceof DependencyError ? `${err.dependency} is unavailable; try again` : 'the service is shutting down', headers: { 'retry-after': '2' } })
      }
      // Nothing throws past the handler; the detail stays generic (no internals, no secrets).
      return problem({ status: 500, title: 'Internal Server Error', detail: 'the identification service failed; see the server log' })
    }
  }
}

function pickInitiate(o: Record<string, unknown>) {
  const out: Record<string, string> = {}
  for (const k of ['localTimezone', 'userAgent', 'browserLanguage', 'userLanguage', 'deviceName']) {
    if (typeof o[k] === 'string') out[k] = (o[k] as string).slice(0, 512)
  }
  return out
}
