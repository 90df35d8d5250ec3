/**
 * One replica of `npm run bench:cluster`, as a process of its own (forked with IPC): the
 * identification service behind its web handler on a loopback port.
 *
 * - `BENCH_MODE=cluster`: PostgreSQL store + BullMQ coordinator, with the library's defaults for
 *   `leaseMs`, `lockDurationMs`, `dependencyTimeoutMs` and the pool;
 * - `BENCH_MODE=single`: the same service alone, with the in-process coordinator and the SQLite
 *   store on `SQLITE_PATH`.
 *
 * The store is wrapped in a Proxy that counts its calls by method (and the leases renewed).
 * Every write the store accepts is reported to the parent (`{ type: 'writes', items: [id,
 * version, state][] }`, batched every 200 ms), so that the parent follows the flows' states
 * without asking the service. `{ type: 'stats' }` from the parent is answered with the CPU time
 * used since the workload began (`process.cpuUsage`, user + system; `reset-cpu` marks the
 * beginning), the event-loop delay since then, and the counts.
 * Env: BENCH_MODE, SIM_URL, DATABASE_URL, REDIS_URL, PREFIX, SQLITE_PATH, REPLICA_ID, INTERVAL_MS.
 * SIGTERM closes the service and the store, then the process.
 */
import type { AddressInfo } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createAdaptorServer } from '@hono/node-server'
import { createHttpApi } from '../src/adapters/http/httpApi.js'
import { createPasswordGrantTokenSource } from '../src/adapters/node/tokenSource.js'
import { createNodeTransport } from '../src/adapters/node/nodeTransport.js'
import { createIdentificationHandler, createIdentificationService, type FlowCoordinator, type FlowRecord, type FlowStore } from '../src/adapters/server/index.js'

const env = process.env
const send = (m: unknown) => {
  if (process.connected) process.send!(m)
}
if (!process.send) {
  console.error('clusterReplica: run it forked with an IPC channel (bench/cluster.ts does)')
  process.exit(2)
}
const mode = env['BENCH_MODE'] === 'single' ? 'single' : 'cluster'
const replicaId = env['REPLICA_ID'] ?? `replica-${process.pid}`
const sim = env['SIM_URL']!
const interval = Number(env['INTERVAL_MS'] ?? 2000)

// The transport a Node deployment uses (node:http, keep-alive). It names the replica to the
// provider, which attributes requests by it.
const nodeTransport = createNodeTransport()
const api = createHttpApi({
  baseUrl: sim,
  getAccessToken: createPasswordGrantTokenSource({
    tokenUrl: `${sim}/connect/token`, clientId: 'demo-client', clientSecret: 'demo-secret', username: 'demo', password: 'demo',
  }),
  transport: (r) => {
    const t = nowMs()
    const out = nodeTransport({ ...r, headers: { ...r.headers, 'x-replica': replicaId } })
    // BENCH_TRACE: when each provider request was handed to the transport and when its answer came back.
    if (requestTrace) void out.then(() => requestTrace!.push(`${JSON.stringify([t, nowMs(), r.url])}\n`), () => {})
    return out
  },
})
const nowMs = () => performance.timeOrigin + performance.now()
let requestTrace: string[] | undefined = env['BENCH_TRACE'] ? [] : undefined

/** Store calls by method. */
const ops: Record<string, number> = {}
/** Leases extended by `renewLeases` calls (rows, not calls). */
let renewedLeases = 0
let writes: [string, number, string][] = []
const track = (r: FlowRecord | null | undefined) => {
  if (r) writes.push([r.id, r.version, r.state])
}

let inner: FlowStore & { close?(): Promise<void> }
let coordinator: FlowCoordinator | undefined
if (mode === 'cluster') {
  const { createPostgresFlowStore } = await import('../src/adapters/postgres/index.js')
  const { createBullMQCoordinator } = await import('../src/adapters/bullmq/index.js')
  inner = createPostgresFlowStore({ connectionString: env['DATABASE_URL']! })
  coordinator = createBullMQCoordinator({
    connection: env['REDIS_URL']!,
    prefix: env['PREFIX']!,
    onError: (e) => process.stderr.write(`[${replicaId}] coordinator error: ${String(e)}\n`),
  })
} else {
  const { createSqliteFlowStore } = await import('../src/adapters/node/sqliteFlowStore.js')
  inner = createSqliteFlowStore(env['SQLITE_PATH']!)
}

/**
 * BENCH_TRACE=file: every lease and write call of the store with its outcome, one JSON line each
 * ([time, method, flow id or count, outcome]), for looking into a run.
 */
const traceFile = env['BENCH_TRACE']
let trace: string[] = []
if (traceFile) {
  const { appendFileSync } = await import('node:fs')
  setInterval(() => {
    if (trace.length > 0) appendFileSync(traceFile, trace.join(''))
    trace = []
    if (requestTrace && requestTrace.length > 0) {
      appendFileSync(`${traceFile}.requests`, requestTrace.join(''))
      requestTrace = []
    }
  }, 500).unref()
}
const traced = (key: string, args: unknown[], out: unknown) => {
  if (!traceFile || !['acquireLease', 'releaseLease', 'write', 'renewLeases', 'create'].includes(key)) return
  const t0 = Date.now()
  void Promise.resolve(out).then(
    (r) => {
      const x = r as (FlowRecord & { created?: boolean; record?: FlowRecord }) | { id: string }[] | null | undefined
      let outcome: unknown
      if (key === 'renewLeases') {
        const asked = (args[1] as { id: string }[]).map((l) => l.id)
        const got = new Set((x as { id: string }[]).map((l) => l.id))
        outcome = { asked: asked.length, missing: asked.filter((id) => !got.has(id)) }
      } else if (key === 'create') outcome = (x as { record: FlowRecord }).record.id
      else outcome = x ? { v: (x as FlowRecord).version, s: (x as FlowRecord).state, e: (x as FlowRecord).lease?.epoch ?? null } : null
      trace.push(`${JSON.stringify([t0, Date.now() - t0, key, key === 'renewLeases' ? null : args[0], key === 'releaseLease' ? args[2] : undefined, outcome])}\n`)
    },
    (err: unknown) => trace.push(`${JSON.stringify([t0, Date.now() - t0, key, args[0], null, `error: ${String(err)}`])}\n`),
  )
}

const store = new Proxy(inner, {
  get(target, key, receiver) {
    const v = Reflect.get(target, key, receiver) as unknown
    if (typeof v !== 'function' || typeof key !== 'string') return v
    const fn = v as (...args: unknown[]) => unknown
    return (...args: unknown[]) => {
      ops[key] = (ops[key] ?? 0) + 1
      const out = fn.apply(target, args)
      traced(key, args, out)
      if (key === 'renewLeases') renewedLeases += (args[1] as unknown[]).length
      if (key === 'create') return (out as Promise<{ created: boolean; record: FlowRecord }>).then((r) => (r.created && track(r.record), r))
      if (key === 'write' || key === 'acquireLease') return (out as Promise<FlowRecord | null>).then((r) => (key === 'write' && track(r), r))
      return out
    }
  },
}) as FlowStore

let finalizedCalls = 0
/**
 * BENCH_TRACE also records every phase this replica let go of without finishing it (`handed-over`:
 * its lease lost or in doubt, or close()), through the service's telemetry hook.
 */
const handOvers = traceFile
  ? {
      flowCreated: () => undefined,
      phase: (flow: { id: string }, phase: string) => ({
        request: () => () => {},
        end: (how: string) => {
          if (how === 'handed-over') trace.push(`${JSON.stringify([Date.now(), 0, 'handedOver', flow.id, undefined, phase])}\n`)
        },
      }),
      flowEnded: () => {},
    }
  : undefined
const service = createIdentificationService({
  api,
  store,
  ...(coordinator && { coordinator }),
  ...(handOvers && { telemetry: handOvers }),
  replicaId,
  polling: { intervalMs: interval, maxIntervalMs: interval, jitter: 0 },
  onError: (e, id) => process.stderr.write(`[${replicaId}] service error${id ? ` (${id})` : ''}: ${String(e)}\n`),
  onFinalized: () => void finalizedCalls++,
})
const handler = createIdentificationHandler(service, { authorize: () => true })
const server = createAdaptorServer({ fetch: (request: Request) => handler(request) })
await service.ready
let cpu0 = process.cpuUsage()
/** Event-loop delay since the workload began (what delays a due poll in this process). */
const eld = monitorEventLoopDelay({ resolution: 10 })
eld.enable()

setInterval(() => {
  if (writes.length === 0) return
  const items = writes
  writes = []
  send({ type: 'writes', items })
}, 200).unref()

process.on('message', (m: { type?: string }) => {
  if (m?.type === 'stats') {
    const c = process.cpuUsage(cpu0)
    send({
      type: 'stats', replica: replicaId, cpuMicros: c.user + c.system, userMicros: c.user, systemMicros: c.system, ops: { ...ops }, renewedLeases, finalizedCalls,
      eventLoopDelayP99Ms: Math.round(eld.percentile(99) / 1e4) / 100, eventLoopDelayMaxMs: Math.round(eld.max / 1e4) / 100,
    })
  } else if (m?.type === 'reset-cpu') {
    cpu0 = process.cpuUsage()
    eld.reset()
    send({ type: 'reset-cpu' })
  }
})
server.listen(0, '127.0.0.1', () => send({ type: 'ready', port: (server.address() as AddressInfo).port }))
process.on('SIGTERM', () => {
  void service.close().then(async () => {
    await inner.close?.()
    server.close(() => process.exit(0))
    setTimeout(() => process.exit(0), 2000).unref()
  })
})
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'))
