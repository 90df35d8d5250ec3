/**
 * The fake provider of `npm run bench:cluster`: the package's simulator on a loopback port,
 * behind a fixed latency, recording what a provider can see of every request — which user,
 * which endpoint, which replica sent it (the `x-replica` header), when it arrived and when its
 * answer was sent — and counting status requests of one user in flight at once (overlapping
 * polls), as test/cluster/fixtures/cluster.ts does for the suites.
 */
import type { ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'
import { createSimulator, type Simulator } from '../src/simulator/simulator.js'
import type { SimulatorTiming } from '../src/simulator/scenarios.js'

/** One provider request. Times are `performance.timeOrigin + performance.now()` ms (epoch ms, sub-ms). */
export interface ProviderRequest {
  userId: number
  endpoint: 'initiate' | 'status' | 'finalize'
  replica: string
  /** When the request reached the provider (before the latency). */
  at: number
  /** When the answer was written to the socket (`finish` of the response), after the latency. */
  sentAt: number
  /** When the provider was done with it (the end of "in flight" for the overlap count). */
  doneAt: number
  /** The answer's HTTP status. */
  status: number
  /** `videoIdentificationStatus` of a status answer. */
  providerStatus?: string
  /** The JSON body of initiate and finalize. */
  body?: unknown
}

export interface BenchProvider {
  url: string
  sim: Simulator
  /** Status requests that reached the provider while another status request of the same user was in flight. */
  overlaps: number
  /** Every initiate, status and finalize request, in order of arrival (`sentAt` filled in when answered). */
  log: ProviderRequest[]
  close(): Promise<void>
}

/** Epoch milliseconds with sub-millisecond resolution. */
export const nowMs = () => performance.timeOrigin + performance.now()

const STATUS = /\/Enrollment\/(\d+)\/\d+\/(?:true|false)\/get-identification-process-status$/

export async function startBenchProvider(options: { latencyMs: number; timing: SimulatorTiming }): Promise<BenchProvider> {
  const sim = createSimulator({ timing: options.timing })
  const inflight = new Map<number, number>()
  const p: BenchProvider = { url: '', sim, overlaps: 0, log: [], close: async () => {} }
  const server = createAdaptorServer({
    fetch: async (req: Request, env: unknown) => {
      const at = nowMs()
      const path = new URL(req.url).pathname
      const m = STATUS.exec(path)
      const endpoint = m ? 'status' : path.includes('initiate') ? 'initiate' : path.includes('finalize') ? 'finalize' : undefined
      let entry: ProviderRequest | undefined
      if (endpoint) {
        let userId = m ? Number(m[1]) : undefined
        let body: unknown
        if (!m) {
          body = await req.clone().json().catch(() => undefined)
          const u = (body as { userId?: unknown } | undefined)?.userId
          if (typeof u === 'number') userId = u
        }
        if (userId !== undefined) {
          entry = { userId, endpoint, replica: req.headers.get('x-replica') ?? '?', at, sentAt: Number.NaN, doneAt: Number.NaN, status: 0, ...(body !== undefined && { body }) }
          p.log.push(entry)
        }
      }
      const tracked = endpoint === 'status' && entry !== undefined
      if (tracked) {
        const n = (inflight.get(entry!.userId) ?? 0) + 1
        inflight.set(entry!.userId, n)
        if (n > 1) p.overlaps++
      }
      try {
        await new Promise((r) => setTimeout(r, options.latencyMs))
        const res = await sim.app.fetch(req)
        if (entry) {
          entry.status = res.status
          if (tracked && res.status === 200) {
            const text = await res.clone().text()
            entry.providerStatus = (JSON.parse(text) as { videoIdentificationStatus?: string }).videoIdentificationStatus ?? ''
          }
          const e = entry
          const outgoing = (env as { outgoing?: ServerResponse } | undefined)?.outgoing
          if (outgoing) outgoing.once('finish', () => (e.sentAt = nowMs()))
          else e.sentAt = nowMs()
        }
        return res
      } finally {
        // The request stops being "in flight" when its answer goes out (the client sees it at once on loopback).
        if (entry) entry.doneAt = nowMs()
        if (tracked) inflight.set(entry!.userId, inflight.get(entry!.userId)! - 1)
      }
    },
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  p.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  sim.setBaseUrl(p.url)
  p.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      ;(server as unknown as { closeAllConnections?(): void }).closeAllConnections?.()
    })
  return p
}
