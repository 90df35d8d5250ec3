/**
 * The fake provider of `npm run bench:cluster`: the package's simulator on a loopback port,
 * behind a fixed latency, recording what a provider can see of every request — which user,
 * which endpoint, which replica sent it (the `x-replica` header), when it arrived and when its
 * answer was sent — and counting status requests of one user in flight at once (overlapping
 * polls), as test/cluster/fixtures/cluster.ts does for the suites.
 */
import { fork, type ChildProcess } from 'node:child_process'
import type { ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setPriority } from 'node:os'
import { fileURLToPath } from 'node:url'
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
        let res = await sim.app.fetch(req)
        if (entry) {
          entry.status = res.status
          if (tracked && res.status === 200) {
            // Read once and answered from the text (no clone: the provider's CPU per request is part of what it measures).
            const text = await res.text()
            entry.providerStatus = (JSON.parse(text) as { videoIdentificationStatus?: string }).videoIdentificationStatus ?? ''
            res = new Response(text, { status: res.status, headers: res.headers })
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

/**
 * The provider as the parent process sees it when the provider runs in a process of its own
 * (`forkBenchProvider`): the driver of the benchmark — standing in for 2 000 browsers — no longer
 * shares the event loop of the process whose clock measures the poll lag.
 */
export interface ForkedBenchProvider {
  url: string
  /** `sim.act` in the provider's process; resolves once it is applied (before the redirect is sent). */
  act(userId: number, phase: 'identification' | 'signing', outcome: 'success' | 'fail'): Promise<void>
  /** What the provider has seen so far: every request, the overlapping polls. */
  seen(): Promise<{ log: ProviderRequest[]; overlaps: number }>
  /** Starts counting the provider process's CPU and event-loop delay (the beginning of the workload). */
  resetStats(): Promise<void>
  /** CPU seconds and event-loop delay p99 of the provider's process since `resetStats`. */
  stats(): Promise<{ cpuSeconds: number; eventLoopDelayP99Ms: number }>
  /** Stops the server and the process. */
  close(): Promise<void>
}

/**
 * Forks this module as the provider's process (`BENCH_PROVIDER_CHILD=1`) and talks to it over
 * IPC; each call bounded to 30 s. `nice`: the process's scheduling priority (a remote service
 * on its own machine is not starved by the system under test); not applied when the OS refuses.
 */
export async function forkBenchProvider(options: { latencyMs: number; timing: SimulatorTiming; nice?: number }): Promise<ForkedBenchProvider> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_PROVIDER_CHILD: '1', BENCH_PROVIDER_OPTIONS: JSON.stringify(options) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  })
  if (options.nice !== undefined) setNice(child.pid!, options.nice, 'the bench provider')
  let next = 0
  const waiting = new Map<number, (m: ProviderMessage) => void>()
  child.on('message', (m: ProviderMessage) => {
    const w = m.id !== undefined ? waiting.get(m.id) : undefined
    if (w) {
      waiting.delete(m.id!)
      w(m)
    }
  })
  const ask = (m: Omit<ProviderMessage, 'id'>): Promise<ProviderMessage> =>
    new Promise((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`the bench provider's process has exited (${child.exitCode ?? child.signalCode})`))
      const id = next++
      const t = setTimeout(() => {
        waiting.delete(id)
        reject(new Error(`the bench provider did not answer '${m.type}' within 30 s`))
      }, 30_000)
      waiting.set(id, (a) => {
        clearTimeout(t)
        resolve(a)
      })
      child.send({ ...m, id })
    })
  const ready = await ask({ type: 'ready' })
  return {
    url: ready.url!,
    act: async (userId, phase, outcome) => void (await ask({ type: 'act', userId, phase, outcome })),
    seen: async () => {
      const a = await ask({ type: 'seen' })
      return { log: a.log!, overlaps: a.overlaps! }
    },
    resetStats: async () => void (await ask({ type: 'reset' })),
    stats: async () => {
      const a = await ask({ type: 'stats' })
      return { cpuSeconds: a.cpuSeconds!, eventLoopDelayP99Ms: a.eventLoopDelayP99Ms! }
    },
    close: () => stopProcess(child),
  }
}

/** Sends `signal` (SIGKILL after 10 s) and waits for the exit. */
export function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.once('exit', () => {
      clearTimeout(t)
      resolve()
    })
    child.kill(signal)
  })
}

/** Sets a process's nice value; false (and a warning) when the OS refuses (no privilege to raise it). */
export function setNice(pid: number, nice: number, who: string): boolean {
  try {
    setPriority(pid, nice)
    return true
  } catch (err) {
    console.warn(`bench:cluster: could not set the priority of ${who} to ${nice}: ${String(err)}`)
    return false
  }
}

interface ProviderMessage {
  type: 'ready' | 'act' | 'seen' | 'reset' | 'stats'
  id?: number
  url?: string
  userId?: number
  phase?: 'identification' | 'signing'
  outcome?: 'success' | 'fail'
  log?: ProviderRequest[]
  overlaps?: number
  cpuSeconds?: number
  eventLoopDelayP99Ms?: number
}

if (process.env['BENCH_PROVIDER_CHILD'] === '1' && process.send) {
  const { monitorEventLoopDelay } = await import('node:perf_hooks')
  const p = await startBenchProvider(JSON.parse(process.env['BENCH_PROVIDER_OPTIONS']!) as { latencyMs: number; timing: SimulatorTiming })
  let cpu0 = process.cpuUsage()
  const eld = monitorEventLoopDelay({ resolution: 10 })
  eld.enable()
  process.on('message', (m: ProviderMessage) => {
    const answer = (a: Partial<ProviderMessage>) => process.connected && process.send!({ ...a, type: m.type, id: m.id })
    if (m.type === 'ready') answer({ url: p.url })
    else if (m.type === 'act') answer((p.sim.act(m.userId!, m.phase!, m.outcome!), {}))
    else if (m.type === 'seen') answer({ log: p.log, overlaps: p.overlaps })
    else if (m.type === 'reset') {
      cpu0 = process.cpuUsage()
      eld.reset()
      answer({})
    } else if (m.type === 'stats') {
      const c = process.cpuUsage(cpu0)
      answer({ cpuSeconds: (c.user + c.system) / 1e6, eventLoopDelayP99Ms: eld.percentile(99) / 1e6 })
    }
  })
  const stop = () => void p.close().then(() => process.exit(0))
  process.once('SIGTERM', stop)
  process.once('disconnect', stop)
}
