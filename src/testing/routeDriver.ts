import type { HostEvent } from '../machine/events.js'
import type { FlowHistoryEntry, FlowView } from '../adapters/server/types.js'
import type { PathDriver, PathProvider } from './pathProvider.js'

/** Options of {@link createRouteDriver}. */
export interface RouteDriverOptions {
  /** Your app's HTTP handler (or `createIdentificationHandler(service, …)` itself): `(request) => Promise<Response>`. */
  handler: (request: Request) => Response | Promise<Response>
  /** The service behind it: the driver follows the flow's changes with `subscribe` and `history`. */
  service: { subscribe(flowId: string, fn: (view: FlowView) => void): () => void; history(flowId: string): Promise<FlowHistoryEntry[]> }
  provider: PathProvider
  /** Where the routes live. @default '/identifications' */
  basePath?: string
  /** The origin of the requests. @default 'http://app.test' */
  origin?: string
  /** Headers every request carries (a session cookie for your `authorize`). */
  headers?: Record<string, string>
}

/**
 * A {@link PathDriver} for a backend: host events become your routes (`START`: `POST {basePath}`;
 * `REDIRECT`: `GET /:id/success` or `/fail`; `RETRY`, `RESTART`, `CANCEL`: `POST /:id/<action>`;
 * `CONTINUE` the service sends itself), and the flow's states come from the service. Paths that begin with a redirect
 * for a flow started elsewhere, or with `LOST`, are a browser's: take `modelPaths({ from: 'start' })`.
 *
 * @example
 * await runPath(path, provider, createRouteDriver({ handler: app.fetch, service, provider }))
 */
export function createRouteDriver(o: RouteDriverOptions): PathDriver & { readonly flowId: string | undefined } {
  const base = `${o.origin ?? 'http://app.test'}${(o.basePath ?? '/identifications').replace(/\/+$/, '')}`
  let flowId: string | undefined
  let started = false
  let last: FlowView | undefined
  const listeners = new Set<(v: unknown) => void>()
  let unsubscribe: (() => void) | undefined
  const seen = (v: FlowView) => {
    if (last && v.version <= last.version) return
    last = v
    for (const l of listeners) l(v)
  }
  /** Once the flow has an id: what it showed so far (its history), then every change. */
  const follow = async (id: string) => {
    flowId = id
    for (const e of await o.service.history(id)) if (e.kind === 'view') seen(e.view)
    unsubscribe = o.service.subscribe(id, seen)
  }
  const call = async (path: string, method: 'GET' | 'POST', body?: unknown) => {
    const res = await o.handler(
      new Request(`${base}${path}`, {
        method,
        headers: { ...o.headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      }),
    )
    if (res.status >= 400) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`)
    return res
  }
  return {
    get flowId() {
      return flowId
    },
    async send(event: HostEvent) {
      if (event.type === 'START') {
        started = true
        const res = await call('', 'POST', { userId: o.provider.userId, userType: o.provider.userType })
        await follow(((await res.json()) as FlowView).id)
        return
      }
      if (!flowId) throw new Error(`${event.type} before the flow was started: a route driver takes paths that begin with START`)
      if (event.type === 'REDIRECT') await call(`/${flowId}/${event.outcome}`, 'GET')
      else if (event.type === 'CONTINUE') return // the service sends CONTINUE itself as soon as the signing URL is known
      else if (event.type === 'LOST') throw new Error('LOST is a browser with no stored flow: a route driver has no route for it')
      else await call(`/${flowId}/${event.type.toLowerCase()}`, 'POST')
    },
    state: () => last ?? (started ? 'initiating' : 'idle'),
    subscribe(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
        if (listeners.size === 0) unsubscribe?.()
      }
    },
  }
}
