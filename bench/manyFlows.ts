/**
 * Benchmark 2: 10 000 flows waiting in phase A (2 s interval, in-process transport) for a
 * steady-state window: heap bytes per flow after GC, event-loop delay p99, CPU % of one core.
 * The same for 10 000 bare loops. Run in a child process started with --expose-gc, one side
 * per process so that one side's garbage does not count against the other.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createActor } from 'xstate'
import { createHttpApi } from '../src/adapters/http/httpApi.js'
import { identificationMachine } from '../src/machine/identificationMachine.js'
import { createIdentificationWorkers } from '../src/machine/workers.js'
import { PROCESSING_BODY, STATUS_URL_PATH } from './common.js'

export interface ManyFlowsSide {
  flows: number
  heapBytesPerFlow: number
  eventLoopDelayP99Ms: number
  cpuPercentOfOneCore: number
  polls: number
}

const gc = () => (globalThis as { gc?: () => void }).gc!()
const heap = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

async function measure(side: 'library' | 'bare', flows: number, steadyMs: number): Promise<ManyFlowsSide> {
  let polls = 0
  const fetchFn = (async () => {
    polls++
    return new Response(PROCESSING_BODY, { status: 200, headers: { 'content-type': 'application/json' } })
  }) as unknown as typeof fetch
  const base = 'https://bench.invalid'
  const before = heap()
  const stops: (() => void)[] = []
  if (side === 'library') {
    const api = createHttpApi({ baseUrl: base, getAccessToken: () => 'bench-token', fetch: fetchFn })
    const machine = identificationMachine.provide({ actors: createIdentificationWorkers({ api }) })
    for (let i = 0; i < flows; i++) {
      const actor = createActor(machine, { input: { userId: 1 + i, userType: 0 } })
      actor.start()
      actor.send({ type: 'REDIRECT', outcome: 'success' })
      stops.push(() => actor.stop())
    }
  } else {
    for (let i = 0; i < flows; i++) {
      let stopped = false
      let timer: NodeJS.Timeout | undefined
      const url = `${base}${STATUS_URL_PATH.replace('42', String(1 + i))}`
      const poll = async () => {
        const res = await fetchFn(url, { headers: { authorization: 'Bearer bench-token' } })
        const body = (await res.json()) as { videoIdentificationStatus: string | null }
        if (stopped || body.videoIdentificationStatus === 'DOCUMENT_SIGN_SUCCESS') return
        timer = setTimeout(poll, 2000 * (0.9 + 0.2 * Math.random()))
      }
      void poll()
      stops.push(() => {
        stopped = true
        clearTimeout(timer)
      })
    }
  }
  // Let every flow reach its steady state (the library re-arms once after the first answer).
  await new Promise((r) => setTimeout(r, 3000))
  const h = monitorEventLoopDelay({ resolution: 10 })
  h.enable()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const polls0 = polls
  await new Promise((r) => setTimeout(r, steadyMs))
  const cpu = process.cpuUsage(cpu0)
  const wall = performance.now() - t0
  h.disable()
  const after = heap()
  for (const s of stops) s()
  return {
    flows,
    heapBytesPerFlow: Math.round((after - before) / flows),
    eventLoopDelayP99Ms: Math.round((h.percentile(99) / 1e6) * 100) / 100,
    cpuPercentOfOneCore: Math.round(((cpu.user + cpu.system) / 1000 / wall) * 10000) / 100,
    polls: polls - polls0,
  }
}

if (process.argv[2] === 'library' || process.argv[2] === 'bare') {
  const flows = Number(process.argv[3] ?? 10_000)
  const steadyMs = Number(process.argv[4] ?? 30_000)
  measure(process.argv[2], flows, steadyMs).then((r) => {
    process.send?.(r)
    process.exit(0)
  })
}
