import { FlowNotFoundError, isFlowId, type FlowView, type IdentificationService } from './identificationService.js'

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
   * Who may see or act on a flow: `flowId` is `null` for starting one (look at the body's
   * user in your session instead). Return `false` to answer `403`.
   * @default deny everything
   */
  authorize?: (request: Request, flowId: string | null, body?: { userId: number; userType: 0 | 1 }) => boolean | Promise<boolean>
  /**
   * The SSE heartbeat interval.
   * @default 15000
   */
  heartbeatMs?: number
  /**
   * Told about errors that became a `500`.
   * @default console.error
   */
  onError?: (error: unknown) => void
}

type Problem = { status: number; title: string; detail?: string; headers?: Record<string, string> }

const problem = ({ status, title, detail, headers }: Problem) =>
  new Response(JSON.stringify({ type: 'about:blank', title, status, ...(detail !== undefined && { detail }) }), {
    status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...headers },
  })

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } })

const ACTIONS = new Set(['continue', 'retry', 'restart', 'cancel'])
const ENDED = new Set(['finalized', 'failed'])

/**
 * A web-standard HTTP handler for an {@link IdentificationService}: `(request) => Promise<Response>`,
 * for Hono, Next.js route handlers, Deno, Bun, or Express through a `Request` adapter.
 *
 * | route | answer |
 * |---|---|
 * | `POST {basePath}` `{ userId, userType }` | `201` the view (starts, or the user's unfinished flow) |
 * | `GET {basePath}/:id` | the view |
 * | `GET {basePath}/:id/success`, `/fail` | records the provider's redirect, `303` to the app's page |
 * | `POST {basePath}/:id/continue` (`retry`, `restart`, `cancel`) | the view |
 * | `GET {basePath}/:id/events` | Server-Sent Events: every change, a heartbeat, closed when the flow ends |
 *
 * Bad ids answer `400`, unknown flows `404`, wrong methods `405`, denied requests `403`, all
 * with a JSON problem body; nothing throws past the handler.
 */
export function createIdentificationHandler(
  service: IdentificationService,
  options: IdentificationHandlerOptions = {},
): (request: Request) => Promise<Response> {
  const base = (options.basePath ?? '/identifications').replace(/\/+$/, '')
  if (!base.startsWith('/')) throw new TypeError('createIdentificationHandler: basePath must start with "/"')
  const authorize = options.authorize ?? (() => false)
  const heartbeatMs = options.heartbeatMs ?? 15_000
  const target = (t: IdentificationHandlerOptions['successRedirect'], id: string) =>
    t === undefined ? `${base}/${id}` : typeof t === 'function' ? t(id) : t.replaceAll('{id}', encodeURIComponent(id))

  async function route(request: Request): Promise<Response> {
    const url = new URL(request.url)
    if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) return problem({ status: 404, title: 'Not Found' })
    const parts = url.pathname.slice(base.length).split('/').filter(Boolean)
    const method = request.method.toUpperCase()

    if (parts.length === 0) {
      if (method !== 'POST') return problem({ status: 405, title: 'Method Not Allowed', headers: { allow: 'POST' } })
      let body: { userId?: unknown; userType?: unknown; initiate?: unknown }
      try {
        body = (await request.json()) as typeof body
      } catch {
        return problem({ status: 400, title: 'Bad Request', detail: 'the body must be JSON: { "userId": number, "userType": 0 | 1 }' })
      }
      const { userId, userType } = body ?? {}
      if (typeof userId !== 'number' || !Number.isInteger(userId) || userId < 1 || userId > 2147483647) {
        return problem({ status: 400, title: 'Bad Request', detail: 'userId must be an integer from 1 to 2147483647' })
      }
      if (userType !== 0 && userType !== 1) return problem({ status: 400, title: 'Bad Request', detail: 'userType must be 0 or 1' })
      if (!(await authorize(request, null, { userId, userType }))) return problem({ status: 403, title: 'Forbidden' })
      const initiate = body.initiate && typeof body.initiate === 'object' ? (body.initiate as Record<string, unknown>) : undefined
      try {
        const view = await service.start({ userId, userType, ...(initiate && { initiate: pickInitiate(initiate) }) })
        return json(view, 201)
      } catch (err) {
        if (err instanceof TypeError) return problem({ status: 400, title: 'Bad Request', detail: err.message })
        throw err
      }
    }

    const [id, action, ...rest] = parts
    if (!isFlowId(id)) return problem({ status: 400, title: 'Bad Request', detail: 'the flow id must be a UUID' })
    if (rest.length > 0) return problem({ status: 404, title: 'Not Found' })
    const allowFor = action === undefined || action === 'success' || action === 'fail' || action === 'events' ? 'GET' : ACTIONS.has(action) ? 'POST' : undefined
    if (allowFor === undefined) return problem({ status: 404, title: 'Not Found' })
    // The provider's redirects change the flow: GET only (a HEAD, as link checkers and
    // prefetchers send, must not count as the user coming back).
    const headOk = allowFor === 'GET' && action !== 'success' && action !== 'fail'
    if (method !== allowFor && !(headOk && method === 'HEAD')) {
      return problem({ status: 405, title: 'Method Not Allowed', headers: { allow: allowFor } })
    }
    const view = await service.get(id)
    if (!view) return problem({ status: 404, title: 'Not Found', detail: `no identification flow ${id}` })
    if (!(await authorize(request, id))) return problem({ status: 403, title: 'Forbidden' })

    switch (action) {
      case undefined:
        return json(view)
      case 'success':
      case 'fail': {
        // The provider's redirect is only a hint: the status endpoint decides what happens next.
        const cb = url.searchParams.get('bTrustAppCallBackId')
        await service.redirect(id, { outcome: action, ...(cb && { bTrustAppCallBackId: cb.slice(0, 512) }) })
        const to = target(action === 'success' ? options.successRedirect : (options.failRedirect ?? options.successRedirect), id)
        return new Response(null, { status: 303, headers: { location: to, 'cache-control': 'no-store' } })
      }
      case 'events':
        return events(id, view, request.signal)
      default: {
        const next = await service[action as 'continue' | 'retry' | 'restart' | 'cancel'](id)
        return json(next)
      }
    }
  }

  function events(id: string, first: FlowView, signal: AbortSignal): Response {
    const enc = new TextEncoder()
    let cleanup = () => {}
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        let open = true
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
          send(`event: state\ndata: ${JSON.stringify(v)}\n\n`)
          if (ENDED.has(v.state)) close()
        }
        const unsubscribe = service.subscribe(id, emit)
        const beat = setInterval(() => send(': heartbeat\n\n'), heartbeatMs)
        signal.addEventListener('abort', close)
        send('retry: 2000\n\n')
        emit(first)
      },
      cancel() {
        cleanup()
      },
    })
    return new Response(stream, {
      headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' },
    })
  }

  return async (request) => {
    try {
      return await route(request)
    } catch (err) {
      if (err instanceof FlowNotFoundError) return problem({ status: 404, title: 'Not Found', detail: err.message })
      // Nothing throws past the handler; the detail stays generic (no internals, no secrets).
      try {
        ;(options.onError ?? ((e: unknown) => console.error('identification handler:', e)))(err)
      } catch {
        /* ignore */
      }
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
