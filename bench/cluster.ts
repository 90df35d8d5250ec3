/**
 * `npm run bench:cluster`: the backend service as 3 replica processes on PostgreSQL + BullMQ,
 * 2 000 flows against a loopback fake provider with 100 ms latency, one replica SIGKILLed in
 * the middle of phase B; then the same workload in ONE process (in-process coordinator, SQLite
 * store) for the CPU comparison. The fake provider runs in a process of its own (its clock
 * measures the poll lag); this process is the driver, standing in for the people's browsers. Every figure is measured here (at the provider, or by the
 * replicas about themselves); nothing is typed in. Prints a table, writes bench/cluster.json and
 * the cluster section of docs/benchmarks.md, and exits 1 when a target is missed.
 *
 * Options: `--flows N` (default 2000), `--interval MS` (default 2000): for trying things out;
 * a run with other values writes its figures to the temporary directory only (not
 * bench/cluster.json, not the docs).
 *
 * Bounded: every wait has a limit, the whole run a watchdog; servers on 127.0.0.1 only; a
 * throw-away PostgreSQL database, a random Redis prefix and a temporary SQLite directory, all
 * removed at the end (nothing else is touched).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { createTestDatabase, type TestDatabase } from '../test/cluster/pgHelpers.js'
import { deleteRedisPrefix } from '../test/cluster/redisHelpers.js'
import { quantile } from './common.js'
import { forkBenchProvider, nowMs, setNice, stopProcess, type ProviderRequest } from './clusterProvider.js'
import { appendClusterRun, CLUSTER_TARGETS, writeClusterSection, type ClusterResults, type ClusterRun } from './clusterReport.js'

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? Number(process.argv[i + 1]) : dflt
}
const FLOWS = arg('flows', 2000)
const REPLICAS = 3
const LATENCY_MS = 100
const INTERVAL_MS = arg('interval', 2000)
/**
 * The simulated people and provider: capture takes 4 s, the signature 45 s, so that phase B
 * outlasts the signing redirects (up to 30 s on a loaded machine), the kill and the recovery.
 */
const TIMING = { captureMs: 4000, staleMs: 1000, signMs: 45_000 }
/** Requests in flight from the driver at once (starts, redirects, views). */
const CONCURRENCY = 50
const REDIS_URL = process.env['TENPAY_REDIS_URL'] ?? 'redis://127.0.0.1:6379'
const WATCHDOG_MS = 12 * 60_000
/**
 * Scheduling priorities (nice values). On one 2-core machine everything competes for CPU; in
 * production the people's browsers (the driver) and the provider run elsewhere. The fake
 * provider, whose clock measures the poll lag, runs ahead of the system under test, the driver
 * behind it; the replicas, PostgreSQL and Redis at the default 0.
 */
const NICE = { provider: -10, driver: 10, replicas: 0 }


const FIXTURE = fileURLToPath(new URL('./clusterReplica.ts', import.meta.url))
const resultsFile = fileURLToPath(new URL('./cluster.json', import.meta.url))
const t0 = Date.now()
const log = (s: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${s}`)
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d

// ——— replicas ———

interface ReplicaStats {
  replica: string
  cpuMicros: number
  userMicros: number
  systemMicros: number
  ops: Record<string, number>
  renewedLeases: number
  finalizedCalls: number
  eventLoopDelayP99Ms: number
  eventLoopDelayMaxMs: number
}

/** The replicas' cumulative CPU at the end of a stage of the workload. */
interface Stage {
  name: string
  from: number
  to: number
  cpuMicros: Record<string, number>
}

interface Replica {
  name: string
  child: ChildProcess
  base: string
  stderr: () => string
  stats(): Promise<ReplicaStats>
}

/** States of the flows as the replicas wrote them (highest version wins). */
const states = new Map<string, { version: number; state: string }>()
const children = new Set<ChildProcess>()

function startReplica(name: string, env: Record<string, string>): Promise<Replica> {
  const child = fork(FIXTURE, [], {
    // BENCH_CLUSTER_CPU_PROF=dir: a V8 CPU profile of every replica that exits normally (for looking into a run).
    execArgv: ['--import', 'tsx', ...(process.env['BENCH_CLUSTER_CPU_PROF'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_CLUSTER_CPU_PROF']}`] : [])],
    env: {
      ...process.env, ...env, REPLICA_ID: name, INTERVAL_MS: String(INTERVAL_MS),
      ...(process.env['BENCH_CLUSTER_DUMP'] && { BENCH_TRACE: join(process.env['BENCH_CLUSTER_DUMP'], `trace-${env['BENCH_MODE']}-${name}.jsonl`) }),
    },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  // Forked from the driver, the replica would inherit its priority.
  if (priorities.driver) setNice(child.pid!, NICE.replicas, `replica ${name}`)
  let err = ''
  child.stderr!.on('data', (d) => {
    err += d
    if (err.length > 200_000) err = err.slice(-100_000)
  })
  const waiters: ((m: ReplicaStats) => void)[] = []
  child.on('message', (m: { type: string; items?: [string, number, string][] } & Partial<ReplicaStats>) => {
    if (m.type === 'writes') {
      for (const [id, version, state] of m.items!) {
        const s = states.get(id)
        if (!s || s.version < version) states.set(id, { version, state })
      }
    } else if (m.type === 'stats') waiters.shift()?.(m as ReplicaStats)
  })
  return new Promise<Replica>((resolve, reject) => {
    const limit = setTimeout(() => reject(new Error(`replica ${name} not ready within 60 s: ${err}`)), 60_000)
    child.on('message', (m: { type: string; port?: number }) => {
      if (m.type !== 'ready') return
      clearTimeout(limit)
      resolve({
        name,
        child,
        base: `http://127.0.0.1:${m.port}/identifications`,
        stderr: () => err,
        stats: () =>
          new Promise<ReplicaStats>((res, rej) => {
            const t = setTimeout(() => rej(new Error(`replica ${name} did not answer stats within 10 s`)), 10_000)
            waiters.push((s) => {
              clearTimeout(t)
              res(s)
            })
            child.send({ type: 'stats' })
          }),
      })
    })
    child.once('exit', (code, signal) => {
      clearTimeout(limit)
      reject(new Error(`replica ${name} exited (${code ?? signal}) before it was ready: ${err}`))
    })
  })
}

// ——— CPU outside the replicas (what else the benchmark makes the machine do) ———

/** Busy and total jiffies of all CPUs (/proc/stat), for the machine's load during the workload. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
    const total = f.reduce((a, b) => a + b, 0)
    return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total }
  } catch {
    return undefined
  }
}

/** user + system CPU seconds of a process, from /proc (0 when it is gone). */
function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / 100 // utime, stime in clock ticks (CLK_TCK 100 on Linux)
  } catch {
    return 0
  }
}

/** The CPU the PostgreSQL backends of this run's database and the Redis server used, sampled now and then. */
function serverCpuTracker(db: TestDatabase | undefined) {
  const backends = new Map<number, { first: number; last: number }>()
  let redis0: number | undefined
  let redis1: number | undefined
  const pgPool = db?.pool(1)
  const redisCpu = async () => {
    const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
    await r.connect()
    try {
      const info = await r.info('cpu')
      const v = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0)
      return v('used_cpu_sys') + v('used_cpu_user')
    } finally {
      r.disconnect()
    }
  }
  return {
    async sample() {
      if (!pgPool) return
      const { rows } = await pgPool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')
      for (const { pid } of rows) {
        const cpu = procCpuSeconds(pid)
        const b = backends.get(pid)
        if (b) b.last = Math.max(b.last, cpu)
        else backends.set(pid, { first: cpu, last: cpu })
      }
      const r = await redisCpu().catch(() => undefined)
      if (r !== undefined) {
        redis0 ??= r
        redis1 = r
      }
    },
    /** CPU seconds since the first sample (backends that appeared later count from the moment they were first seen). */
    result() {
      if (!pgPool) return undefined
      let pg = 0
      for (const b of backends.values()) pg += b.last - b.first
      return { postgresBackends: round(pg), postgresBackendCount: backends.size, redisServer: redis0 !== undefined && redis1 !== undefined ? round(redis1 - redis0) : null }
    },
  }
}

// ——— the driver's HTTP ———

async function call(url: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const res = await fetch(url, {
    method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'),
    redirect: 'manual',
    signal: AbortSignal.timeout(60_000),
    ...(init.body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(init.body) }),
  })
  const text = await res.text()
  let json: Record<string, unknown> | undefined
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined
  } catch {
    json = undefined
  }
  return { status: res.status, json }
}

/** Runs `fn` over `items`, `CONCURRENCY` at a time; collects the errors (bounded by the per-call timeout). */
async function pool<T>(items: T[], fn: (item: T, i: number) => Promise<void>): Promise<string[]> {
  const errors: string[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, items.length) }, async () => {
      while (next < items.length) {
        const i = next++
        await fn(items[i]!, i).catch((e: unknown) => errors.push(e instanceof Error ? e.message : String(e)))
      }
    }),
  )
  return errors
}

async function waitFor(what: string, ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) {
      log(`    gave up waiting for ${what} after ${ms / 1000} s`)
      return false
    }
    await sleep(250)
  }
  return true
}

const countState = (ids: string[], state: string) => ids.filter((id) => states.get(id)?.state === state).length

// ——— one run ———

interface Flow {
  userId: number
  id: string
  home: number
  identificationAt: number
  signingAt: number
}

interface RunOutput {
  run: ClusterRun
  flows: Flow[]
  killAt?: number
  victim?: string
  victimFlows?: number[]
}

async function runWorkload(mode: 'cluster' | 'single'): Promise<RunOutput> {
  states.clear()
  const n = mode === 'cluster' ? REPLICAS : 1
  // The provider in a process of its own: its clock measures the poll lag, and the driver's bursts
  // (standing in for the people's browsers, on other machines in production) stay out of its event loop.
  const provider = await forkBenchProvider({ latencyMs: LATENCY_MS, timing: TIMING, nice: NICE.provider })
  let db: TestDatabase | undefined
  let prefix: string | undefined
  let dir: string | undefined
  const replicas: Replica[] = []
  const errors: Record<string, string[]> = {}
  let cleaned: Promise<void> | undefined
  const cleanUp = () =>
    (cleaned ??= (async () => {
      await Promise.all(replicas.map((r) => stopProcess(r.child)))
      await provider.close()
      if (prefix) await deleteBenchKeys(prefix).catch((e: unknown) => log(`    could not delete the Redis keys ${prefix}:*: ${String(e)}`))
      if (db) await db.drop().catch((e: unknown) => log(`    could not drop the database ${db!.name}: ${String(e)}`))
      if (dir) rmSync(dir, { recursive: true, force: true })
    })())
  cleanups.add(cleanUp)
  try {
    let env: Record<string, string>
    if (mode === 'cluster') {
      db = await createTestDatabase('tenpay_bench')
      prefix = `tenpay-bench-${randomBytes(6).toString('hex')}`
      env = { BENCH_MODE: 'cluster', SIM_URL: provider.url, DATABASE_URL: db.url, REDIS_URL, PREFIX: prefix }
    } else {
      dir = mkdtempSync(join(tmpdir(), 'tenpay-bench-'))
      env = { BENCH_MODE: 'single', SIM_URL: provider.url, SQLITE_PATH: join(dir, 'flows.db') }
    }
    for (let i = 0; i < n; i++) replicas.push(await startReplica(mode === 'cluster' ? String.fromCharCode(65 + i) : 'single', env))
    log(`    ${n} replica process(es) ready (${mode === 'cluster' ? `PostgreSQL database ${db!.name}, Redis prefix ${prefix}` : 'SQLite in a temporary directory'})`)
    // CPU is counted from here, for every replica at once.
    await Promise.all(
      replicas.map(
        (r) =>
          new Promise<void>((resolve) => {
            r.child.on('message', function once(m: { type: string }) {
              if (m.type !== 'reset-cpu') return
              r.child.off('message', once)
              resolve()
            })
            r.child.send({ type: 'reset-cpu' })
          }),
      ),
    )
    await provider.resetStats()
    const servers = serverCpuTracker(db)
    await servers.sample()
    const machine0 = machineTicks()
    const self0 = process.cpuUsage()
    const workStart = nowMs()
    const eld = monitorEventLoopDelay({ resolution: 10 })
    eld.enable()
    const other = (home: number, k: number) => replicas[(home + k) % n]!
    /** CPU of every live replica at the end of each stage (the killed one's last figure stays). */
    const stages: Stage[] = []
    const latest = new Map<string, ReplicaStats>()
    const stage = async (name: string, from: number) => {
      for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) latest.set(r.name, await r.stats())
      await servers.sample()
      stages.push({ name, from, to: nowMs(), cpuMicros: Object.fromEntries([...latest].map(([k, v]) => [k, v.cpuMicros])) })
      return nowMs()
    }
    let stageFrom = workStart

    // 1. Starts, round robin over the replicas; each answers once initiate answered.
    const flows: Flow[] = []
    const users = Array.from({ length: FLOWS }, (_, i) => 100_000 + i)
    errors['start'] = await pool(users, async (userId, i) => {
      const res = await call(replicas[i % n]!.base, { body: { userId, userType: 0 } })
      if (res.status !== 201 || res.json?.['state'] !== 'identifying') throw new Error(`start ${userId}: ${res.status} ${JSON.stringify(res.json)?.slice(0, 200)}`)
      flows.push({ userId, id: String(res.json['id']), home: i % n, identificationAt: 0, signingAt: 0 })
    })
    const ids = () => flows.map((f) => f.id)
    log(`    ${flows.length} flows started (${errors['start'].length} errors)`)
    stageFrom = await stage('starts (initiate)', stageFrom)

    // 2. The person finishes the ID capture; the browser comes back to another replica.
    errors['identification'] = await pool(flows, async (f) => {
      f.identificationAt = nowMs()
      await provider.act(f.userId, 'identification', 'success')
      const res = await call(`${other(f.home, 1).base}/${f.id}/success`)
      if (res.status !== 303) throw new Error(`identification redirect ${f.id}: ${res.status}`)
    })
    await waitFor('every flow at signing', () => countState(ids(), 'signing') === flows.length, 120_000)
    log(`    phase A done: ${countState(ids(), 'signing')} flows at signing (${errors['identification'].length} errors)`)
    stageFrom = await stage('capture redirects, phase A polling, to signing', stageFrom)

    // 3. The person signs; the browser comes back to yet another replica. Phase B polls for signMs.
    const ready = flows.filter((f) => states.get(f.id)?.state === 'signing')
    errors['signing'] = await pool(ready, async (f) => {
      f.signingAt = nowMs()
      await provider.act(f.userId, 'signing', 'success')
      const res = await call(`${other(f.home, 2).base}/${f.id}/success`)
      if (res.status !== 303) throw new Error(`signing redirect ${f.id}: ${res.status}`)
    })
    log(`    phase B redirects sent (${errors['signing'].length} errors)`)
    stageFrom = await stage('signing redirects', stageFrom)

    let killAt: number | undefined
    let victim: Replica | undefined
    let victimFlows: number[] | undefined
    if (mode === 'cluster') {
      // 4. Mid phase B: SIGKILL one replica while it drives many polling flows.
      await sleep(INTERVAL_MS + 1500)
      victim = replicas[1]!
      const before = nowMs()
      const last = new Map<number, ProviderRequest>()
      const finalizing = new Set<number>()
      for (const r of (await provider.seen()).log) {
        if (r.endpoint === 'finalize') finalizing.add(r.userId)
        if (r.endpoint === 'status') last.set(r.userId, r)
      }
      stageFrom = await stage('phase B polling until the kill', stageFrom) // the victim's last figures
      killAt = nowMs()
      victim.child.kill('SIGKILL')
      await new Promise<void>((r) => (victim!.child.exitCode !== null || victim!.child.signalCode !== null ? r() : victim!.child.once('exit', () => r())))
      // The flows it drove: its status request was the flow's last one, within the last interval (+ latency and slack).
      const signedAt = new Map(flows.map((f) => [f.userId, f.signingAt]))
      victimFlows = [...last.values()]
        .filter(
          (r) =>
            r.replica === victim!.name &&
            !finalizing.has(r.userId) &&
            r.at >= (signedAt.get(r.userId) ?? Infinity) &&
            r.at >= before - INTERVAL_MS - LATENCY_MS - 1000 &&
            // Still polling: the answer was a pending status (not DOCUMENT_SIGN_SUCCESS, after which it finalizes).
            r.status === 200 &&
            r.providerStatus !== undefined &&
            r.providerStatus !== 'DOCUMENT_SIGN_SUCCESS',
        )
        .map((r) => r.userId)
      log(`    SIGKILLed replica ${victim.name} while it drove ${victimFlows.length} polling flows`)
    }

    // 5. Every flow to the end.
    // A write the killed replica made in its last moments was never reported: look at the flows
    // still not seen finalized, now and then, through a live replica's handler.
    let looked = Date.now()
    await waitFor(
      'every flow finalized',
      () => {
        const missing = flows.filter((f) => states.get(f.id)?.state !== 'finalized')
        if (missing.length > 0 && missing.length <= 300 && Date.now() - looked > 5000) {
          looked = Date.now()
          const live = replicas.filter((r) => r !== victim)
          void pool(missing, async (f, i) => {
            const res = await call(`${live[i % live.length]!.base}/${f.id}`)
            const version = Number(res.json?.['version'])
            const s = states.get(f.id)
            if (res.json && (!s || s.version < version)) states.set(f.id, { version, state: String(res.json['state']) })
          })
        }
        return missing.length === 0
      },
      150_000,
    )
    const workEnd = nowMs()
    await stage(mode === 'cluster' ? 'phase B polling after the kill, finalize' : 'phase B polling, finalize', stageFrom)
    eld.disable()
    const selfCpu = process.cpuUsage(self0)
    const providerStats = await provider.stats()
    const seen = await provider.seen()
    const machine1 = machineTicks()
    const live = replicas.filter((r) => r !== victim)
    const stats = [...latest.values()]
    // The views, from the replicas (the authority), after the CPU figures were taken.
    const finalViews = new Map<string, string>()
    errors['views'] = await pool(flows, async (f, i) => {
      const res = await call(`${live[i % live.length]!.base}/${f.id}`)
      finalViews.set(f.id, String(res.json?.['state']))
    })
    const finalized = [...finalViews.values()].filter((s) => s === 'finalized').length
    log(`    ${finalized} of ${FLOWS} flows finalized in ${((workEnd - workStart) / 1000).toFixed(1)} s`)
    const stderr = replicas.map((r) => r.stderr()).join('')
    const run = summarize(mode, seen, flows, stats, {
      finalized, workMs: workEnd - workStart, stderr, errors, killAt, victim: victim?.name, victimFlows, stages,
      providerEventLoopDelayP99Ms: round(providerStats.eventLoopDelayP99Ms),
      driverEventLoopDelayP99Ms: round(eld.percentile(99) / 1e6),
      otherCpu: {
        providerSeconds: round(providerStats.cpuSeconds),
        driverSeconds: round((selfCpu.user + selfCpu.system) / 1e6),
        ...servers.result(),
        ...(machine0 && machine1 && { machineBusyCores: round(((machine1.busy - machine0.busy) / (machine1.total - machine0.total)) * cpus().length), machineCores: cpus().length }),
      },
    })
    // For looking into a run: BENCH_CLUSTER_DUMP=dir writes what the provider saw, the flows and the kill.
    const dump = process.env['BENCH_CLUSTER_DUMP']
    if (dump) writeFileSync(join(dump, `${mode}.json`), JSON.stringify({ flows, killAt, victim: victim?.name, victimFlows, log: seen.log, stderr }))
    return { run, flows, ...(killAt !== undefined && { killAt, victim: victim!.name, victimFlows: victimFlows! }) }
  } finally {
    await cleanUp()
    cleanups.delete(cleanUp)
  }
}

/** What a run in progress must remove, also when the run is interrupted (SIGINT, the watchdog). */
const cleanups = new Set<() => Promise<void>>()

/** Deletes every key of this run's prefix (and nothing else). */
/** Deletes the run's Redis keys: only a prefix this bench made (`tenpay-bench-` and 12 hex digits). */
async function deleteBenchKeys(prefix: string): Promise<number> {
  if (!/^tenpay-bench-[0-9a-f]{12}$/.test(prefix)) throw new Error(`refusing to delete keys of prefix ${prefix}`)
  return deleteRedisPrefix(prefix, REDIS_URL)
}

// ——— figures ———

function summarize(
  mode: 'cluster' | 'single',
  provider: { log: ProviderRequest[]; overlaps: number },
  flows: Flow[],
  stats: ReplicaStats[],
  o: {
    finalized: number
    workMs: number
    stderr: string
    errors: Record<string, string[]>
    killAt: number | undefined
    victim: string | undefined
    victimFlows: number[] | undefined
    stages: Stage[]
    providerEventLoopDelayP99Ms: number
    driverEventLoopDelayP99Ms: number
    otherCpu: ClusterRun['otherCpu']
  },
): ClusterRun {
  const byUser = new Map<number, ProviderRequest[]>()
  for (const r of provider.log) {
    const l = byUser.get(r.userId)
    if (l) l.push(r)
    else byUser.set(r.userId, [r])
  }
  const statusPolls = provider.log.filter((r) => r.endpoint === 'status').length
  let duplicateInitiates = 0
  /** Duplicate initiates of flows whose initiates all came from one replica. */
  let duplicateInitiatesOneReplica = 0
  for (const f of flows) {
    const inits = (byUser.get(f.userId) ?? []).filter((r) => r.endpoint === 'initiate')
    duplicateInitiates += Math.max(0, inits.length - 1)
    if (inits.length > 1 && new Set(inits.map((r) => r.replica)).size === 1) duplicateInitiatesOneReplica += inits.length - 1
  }
  /** Overlapping status requests, by whether the one in flight came from the same replica. */
  const overlapsBy = { sameReplica: 0, otherReplica: 0 }
  for (const l of byUser.values()) {
    const polls = l.filter((r) => r.endpoint === 'status')
    for (let i = 1; i < polls.length; i++) {
      const r = polls[i]!
      const q = polls.slice(0, i).find((x) => x.at <= r.at && !(x.doneAt <= r.at))
      if (q) overlapsBy[q.replica === r.replica ? 'sameReplica' : 'otherReplica']++
    }
  }

  // Recovery: for each flow the killed replica drove, the kill → that flow's first status request from another replica.
  let recovery: ClusterRun['recovery'] = null
  let window: [number, number] | null = null
  if (o.killAt !== undefined) {
    const times: number[] = []
    let missing = 0
    for (const u of o.victimFlows!) {
      const first = (byUser.get(u) ?? []).find((r) => r.endpoint === 'status' && r.at >= o.killAt! && r.replica !== o.victim)
      if (first) times.push(first.at - o.killAt)
      else missing++
    }
    const max = times.length ? Math.max(...times) : 0
    window = [o.killAt, o.killAt + max]
    recovery = {
      victim: o.victim!,
      flows: o.victimFlows!.length,
      withoutStatusRequestElsewhere: missing,
      p50Ms: times.length ? Math.round(quantile(times, 0.5)) : null,
      p99Ms: missing > 0 ? null : times.length ? Math.round(quantile(times, 0.99)) : null,
      maxMs: Math.round(max),
      minMs: times.length ? Math.round(Math.min(...times)) : null,
    }
  }

  // Poll lag: consecutive status requests of one flow in one polling phase, the next one outside the recovery window.
  const lags: number[] = []
  /** The same pairs, with the arrival of their second request (for the lag by stage). */
  const lagsAt: [number, number][] = []
  let excluded = 0
  for (const f of flows) {
    const polls = (byUser.get(f.userId) ?? []).filter((r) => r.endpoint === 'status')
    const phase = (r: ProviderRequest) => (f.signingAt && r.at >= f.signingAt ? 'B' : f.identificationAt && r.at >= f.identificationAt ? 'A' : '-')
    for (let i = 1; i < polls.length; i++) {
      const prev = polls[i - 1]!
      const next = polls[i]!
      if (phase(prev) === '-' || phase(prev) !== phase(next) || prev.status !== 200 || Number.isNaN(prev.sentAt)) continue
      if (window && next.at >= window[0] && next.at <= window[1]) {
        excluded++
        continue
      }
      lags.push(next.at - (prev.sentAt + INTERVAL_MS))
      lagsAt.push([next.at, next.at - (prev.sentAt + INTERVAL_MS)])
    }
  }

  const sum = (k: string) => stats.reduce((s, x) => s + (x.ops[k] ?? 0), 0)
  const perFlow = (x: number) => round(x / flows.length)
  const cpuMicros = stats.reduce((s, x) => s + x.cpuMicros, 0)
  const pollsBy: Record<string, number> = {}
  for (const r of provider.log) if (r.endpoint === 'status') pollsBy[r.replica] = (pollsBy[r.replica] ?? 0) + 1
  const errorLines = o.stderr.split('\n').filter((l) => l.trim() !== '')
  return {
    mode,
    processes: mode === 'cluster' ? REPLICAS : 1,
    store: mode === 'cluster' ? 'PostgreSQL' : 'SQLite',
    coordinator: mode === 'cluster' ? 'BullMQ' : 'in-process',
    flows: flows.length,
    finalized: o.finalized,
    workSeconds: round(o.workMs / 1000, 1),
    overlappingPolls: provider.overlaps,
    duplicateInitiates,
    overlapsBy,
    duplicateInitiatesOneReplica,
    initiates: provider.log.filter((r) => r.endpoint === 'initiate').length,
    finalizes: provider.log.filter((r) => r.endpoint === 'finalize').length,
    statusPolls,
    statusPollsByReplica: pollsBy,
    recovery,
    pollLag: {
      pairs: lags.length,
      excludedInRecoveryWindow: excluded,
      p50Ms: lags.length ? round(quantile(lags, 0.5), 1) : null,
      p99Ms: lags.length ? round(quantile(lags, 0.99), 1) : null,
      maxMs: lags.length ? round(Math.max(...lags), 1) : null,
    },
    store_calls: Object.fromEntries(Object.keys(Object.assign({}, ...stats.map((s) => s.ops)) as object).sort().map((k) => [k, sum(k)])),
    storeWritesPerFlow: perFlow(sum('create') + sum('write') + sum('appendEvent')),
    storeWritesPerFlowDetail: {
      create: perFlow(sum('create')),
      write: perFlow(sum('write')),
      appendEvent: perFlow(sum('appendEvent')),
      acquireLease: perFlow(sum('acquireLease')),
      renewLeases: perFlow(sum('renewLeases')),
      renewedLeaseRows: perFlow(stats.reduce((s, x) => s + x.renewedLeases, 0)),
      releaseLease: perFlow(sum('releaseLease')),
    },
    cpu: {
      seconds: round(cpuMicros / 1e6),
      byReplica: Object.fromEntries(stats.map((s) => [s.replica, round(s.cpuMicros / 1e6)])),
      microsPerStatusPoll: round(cpuMicros / statusPolls, 1),
      // In the kernel (system) and in the process (user): a round trip on loopback costs the
      // sender much of the receiver's TCP work too.
      userSeconds: round(stats.reduce((s, x) => s + x.userMicros, 0) / 1e6),
      systemSeconds: round(stats.reduce((s, x) => s + x.systemMicros, 0) / 1e6),
    },
    stages: o.stages.map((st, i) => {
      const prev = i > 0 ? o.stages[i - 1]!.cpuMicros : {}
      const cpu = Object.entries(st.cpuMicros).reduce((sum, [k, v]) => sum + v - (prev[k] ?? 0), 0)
      const polls = provider.log.filter((r) => r.endpoint === 'status' && r.at >= st.from && r.at < st.to).length
      const stageLags = lagsAt.filter(([at]) => at >= st.from && at < st.to).map(([, lag]) => lag)
      return {
        name: st.name,
        seconds: round((st.to - st.from) / 1000, 1),
        cpuSeconds: round(cpu / 1e6),
        statusPolls: polls,
        ...(polls > 0 && { cpuMicrosPerStatusPoll: round(cpu / polls, 1) }),
        ...(stageLags.length > 0 && { pollLagP99Ms: round(quantile(stageLags, 0.99), 1) }),
      }
    }),
    eventLoopDelayP99Ms: Object.fromEntries(stats.map((s) => [s.replica, s.eventLoopDelayP99Ms])),
    eventLoopDelayMaxMs: Object.fromEntries(stats.map((s) => [s.replica, s.eventLoopDelayMaxMs])),
    providerEventLoopDelayP99Ms: o.providerEventLoopDelayP99Ms,
    driverEventLoopDelayP99Ms: o.driverEventLoopDelayP99Ms,
    otherCpu: o.otherCpu,
    onFinalizedCalls: stats.reduce((s, x) => s + x.finalizedCalls, 0),
    driverErrors: Object.fromEntries(Object.entries(o.errors).map(([k, v]) => [k, { count: v.length, first: v.slice(0, 3) }])),
    replicaErrorLines: {
      count: errorLines.length,
      first: errorLines.slice(0, 5),
      // The same error for different flows counts once: the flow id and the replica are taken out.
      kinds: errorLines.reduce<Record<string, number>>((k, l) => {
        const kind = l.replace(/^\[[^\]]*\] /, '').replace(/\([0-9a-f-]{36}\)/g, '(…)').replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, '…')
        k[kind] = (k[kind] ?? 0) + 1
        return k
      }, {}),
    },
  }
}

// ——— main ———

let cleaningUp = false
async function emergency(why: string) {
  if (cleaningUp) return
  cleaningUp = true
  console.error(`bench:cluster: ${why}; stopping the replicas, removing the database and the Redis keys of the run`)
  await Promise.all([...children].map((c) => stopProcess(c, 'SIGKILL')))
  await Promise.race([Promise.all([...cleanups].map((f) => f())), sleep(30_000)])
  process.exit(1)
}
const watchdog = setTimeout(() => void emergency(`still running after ${WATCHDOG_MS / 60_000} minutes`), WATCHDOG_MS)
watchdog.unref()
process.once('SIGINT', () => void emergency('interrupted'))

const priorities = { driver: setNice(process.pid, NICE.driver, 'the driver') }
const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`
const loadAtStart = loadavg().map((x) => round(x))
log(`cluster: ${REPLICAS} replicas (PostgreSQL + BullMQ), ${FLOWS} flows, provider latency ${LATENCY_MS} ms, interval ${INTERVAL_MS} ms (load average ${loadAtStart.join(' ')})`)
const cluster = await runWorkload('cluster')
log('single process: the same workload, in-process coordinator, SQLite store')
const single = await runWorkload('single')

const c = cluster.run
const ratio = round(c.cpu.microsPerStatusPoll / single.run.cpu.microsPerStatusPoll)
const results: ClusterResults = {
  machine,
  date: new Date().toISOString().slice(0, 10),
  loadAverageAtStart: loadAtStart,
  loadAverageAtEnd: loadavg().map((x) => round(x)),
  workload: {
    replicas: REPLICAS,
    flows: FLOWS,
    providerLatencyMs: LATENCY_MS,
    polling: { intervalMs: INTERVAL_MS, maxIntervalMs: INTERVAL_MS, jitter: 0 },
    simulator: TIMING,
    leaseMs: 10_000,
    lockDurationMs: 10_000,
    driverConcurrency: CONCURRENCY,
    nice: { ...NICE, applied: priorities.driver },
  },
  replicas: REPLICAS,
  flows: FLOWS,
  finalized: c.finalized,
  overlappingPolls: c.overlappingPolls,
  duplicateInitiates: c.duplicateInitiates,
  recoveryP99Ms: c.recovery?.p99Ms ?? null,
  pollLagP99Ms: c.pollLag.p99Ms,
  storeWritesPerFlow: c.storeWritesPerFlow,
  storeLeaseOpsPerFlow: {
    acquireLease: c.storeWritesPerFlowDetail.acquireLease,
    renewLeases: c.storeWritesPerFlowDetail.renewLeases,
    releaseLease: c.storeWritesPerFlowDetail.releaseLease,
  },
  cpuPerPollRatioVsSingleProcess: ratio,
  runs: { cluster: c, single: single.run },
}

const checks: { key: string; value: number | null; target: string; met: boolean }[] = [
  { key: 'finalized', value: results.finalized, target: `= flows (${FLOWS})`, met: results.finalized === FLOWS },
  { key: 'overlappingPolls', value: results.overlappingPolls, target: '0', met: results.overlappingPolls === 0 },
  { key: 'duplicateInitiates', value: results.duplicateInitiates, target: '0', met: results.duplicateInitiates === 0 },
  { key: 'recoveryP99Ms', value: results.recoveryP99Ms, target: `≤ ${CLUSTER_TARGETS.recoveryP99Ms}`, met: results.recoveryP99Ms !== null && results.recoveryP99Ms <= CLUSTER_TARGETS.recoveryP99Ms },
  { key: 'pollLagP99Ms', value: results.pollLagP99Ms, target: `≤ ${CLUSTER_TARGETS.pollLagP99Ms}`, met: results.pollLagP99Ms !== null && results.pollLagP99Ms <= CLUSTER_TARGETS.pollLagP99Ms },
  { key: 'cpuPerPollRatioVsSingleProcess', value: ratio, target: `≤ ${CLUSTER_TARGETS.cpuPerPollRatioVsSingleProcess}`, met: ratio <= CLUSTER_TARGETS.cpuPerPollRatioVsSingleProcess },
]
results.targetsMissed = checks.filter((x) => !x.met).map((x) => x.key)

// A workload other than the defaults (`--flows`, `--interval`) is a try-out: its figures go to the temporary directory only.
const tryOut = FLOWS !== 2000 || INTERVAL_MS !== 2000
const written = tryOut ? join(tmpdir(), 'tenpay-bench-cluster.json') : resultsFile
writeFileSync(written, `${JSON.stringify(results, null, 2)}\n`)
if (!tryOut) {
  appendClusterRun(results)
  writeClusterSection(results)
}

console.log(`\n${'figure'.padEnd(32)} ${'value'.padStart(10)}  target`)
for (const x of checks) console.log(`${x.key.padEnd(32)} ${String(x.value).padStart(10)}  ${x.target.padEnd(16)} ${x.met ? 'met' : 'MISSED'}`)
console.log(`${'replicas'.padEnd(32)} ${String(REPLICAS).padStart(10)}`)
console.log(`${'flows'.padEnd(32)} ${String(FLOWS).padStart(10)}`)
console.log(`${'storeWritesPerFlow'.padEnd(32)} ${String(results.storeWritesPerFlow).padStart(10)}  (create + write + appendEvent; lease ops: acquire ${results.storeLeaseOpsPerFlow.acquireLease}, renew ${results.storeLeaseOpsPerFlow.renewLeases}, release ${results.storeLeaseOpsPerFlow.releaseLease} per flow)`)
console.log(`${'CPU µs per status poll'.padEnd(32)} ${String(c.cpu.microsPerStatusPoll).padStart(10)}  (single process: ${single.run.cpu.microsPerStatusPoll})`)
log(`wrote ${tryOut ? written : 'bench/cluster.json and the cluster section of docs/benchmarks.md'}${results.targetsMissed.length ? `; targets missed: ${results.targetsMissed.join(', ')}` : '; every target met'}`)
process.exit(results.targetsMissed.length ? 1 : 0)
