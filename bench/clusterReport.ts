/**
 * The cluster section of docs/benchmarks.md (from bench/cluster.json), between its own markers:
 * `npm run bench:cluster` rewrites only that section, and `npm run bench` (bench/report.ts)
 * keeps it as it is in the file when it rewrites its own part.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const SINGLE_START = '<!-- bench:start (npm run bench) -->'
export const SINGLE_END = '<!-- bench:end -->'
export const CLUSTER_START = '<!-- bench:cluster:start (npm run bench:cluster) -->'
export const CLUSTER_END = '<!-- bench:cluster:end -->'

const DOC = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url))
const RESULTS = fileURLToPath(new URL('./cluster.json', import.meta.url))

/** The targets of issue 10 ("Done when"). */
export const CLUSTER_TARGETS = { recoveryP99Ms: 15_000, pollLagP99Ms: 250, cpuPerPollRatioVsSingleProcess: 2.0 }

/** One run of the workload (the cluster, or the single process). */
export interface ClusterRun {
  mode: 'cluster' | 'single'
  processes: number
  store: string
  coordinator: string
  flows: number
  finalized: number
  workSeconds: number
  overlappingPolls: number
  duplicateInitiates: number
  initiates: number
  finalizes: number
  statusPolls: number
  statusPollsByReplica: Record<string, number>
  recovery: {
    victim: string
    flows: number
    withoutStatusRequestElsewhere: number
    p50Ms: number | null
    p99Ms: number | null
    maxMs: number
    minMs: number | null
  } | null
  pollLag: { pairs: number; excludedInRecoveryWindow: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null }
  store_calls: Record<string, number>
  storeWritesPerFlow: number
  storeWritesPerFlowDetail: {
    create: number
    write: number
    appendEvent: number
    acquireLease: number
    renewLeases: number
    renewedLeaseRows: number
    releaseLease: number
  }
  cpu: { seconds: number; byReplica: Record<string, number>; microsPerStatusPoll: number }
  /** CPU of the replicas and status polls at the provider, by stage of the workload. */
  stages: { name: string; seconds: number; cpuSeconds: number; statusPolls: number; cpuMicrosPerStatusPoll?: number }[]
  /** p99 event-loop delay of each replica process over the workload (the killed one up to the kill). */
  eventLoopDelayP99Ms: Record<string, number>
  /** The same for the process that runs the fake provider and the driver. */
  providerEventLoopDelayP99Ms: number
  onFinalizedCalls: number
  driverErrors: Record<string, { count: number; first: string[] }>
  replicaErrorLines: { count: number; first: string[] }
}

/** bench/cluster.json. */
export interface ClusterResults {
  machine: string
  date: string
  loadAverageAtStart: number[]
  loadAverageAtEnd: number[]
  workload: {
    replicas: number
    flows: number
    providerLatencyMs: number
    polling: { intervalMs: number; maxIntervalMs: number; jitter: number }
    simulator: { captureMs: number; staleMs: number; signMs: number }
    leaseMs: number
    lockDurationMs: number
    driverConcurrency: number
  }
  replicas: number
  flows: number
  finalized: number
  overlappingPolls: number
  duplicateInitiates: number
  recoveryP99Ms: number | null
  pollLagP99Ms: number | null
  storeWritesPerFlow: number
  storeLeaseOpsPerFlow: { acquireLease: number; renewLeases: number; releaseLease: number }
  cpuPerPollRatioVsSingleProcess: number
  targetsMissed?: string[]
  runs: { cluster: ClusterRun; single: ClusterRun }
}

const met = (ok: boolean) => (ok ? 'met' : '**not met**')
const v = (x: number | null | undefined, unit = '') => (x === null || x === undefined ? '—' : `${x.toLocaleString('en')}${unit}`)

/** The cluster section, markers included. */
export function clusterMarkdown(r: ClusterResults): string {
  const c = r.runs.cluster
  const s = r.runs.single
  const w = r.workload
  const rec = c.recovery
  const T = CLUSTER_TARGETS
  return `${CLUSTER_START}
<!-- Written by \`npm run bench:cluster\` (bench/cluster.ts) with bench/cluster.json. Do not edit by hand. -->

## 5. Many replicas (\`npm run bench:cluster\`)

Measured ${r.date} on ${r.machine} (load average ${r.loadAverageAtStart.join(' ')} at the start —
the machine is shared, and everything below runs on it at once: the replicas, PostgreSQL, Redis,
the fake provider and the driver).

**Workload.** ${w.flows.toLocaleString('en')} flows, one user each, driven through the backend's web handler as a
browser and the provider would: \`POST /identifications\` round robin over the replicas (answers once
initiate answered), the person finishes the ID capture at the provider and the browser comes back
to \`GET /:id/success\` on *another* replica; once the flow waits at \`signing\`, the person signs
and the browser comes back to yet another replica; phase B polls until the provider answers
\`DOCUMENT_SIGN_SUCCESS\` (${w.simulator.signMs / 1000} s after the signature), then finalize. The provider is the package's
simulator on a loopback port behind a fixed ${w.providerLatencyMs} ms latency per request (capture ${w.simulator.captureMs / 1000} s,
stale answers ${w.simulator.staleMs / 1000} s after signing); polling \`intervalMs = maxIntervalMs = ${w.polling.intervalMs}\`, \`jitter: 0\`; the
driver keeps ${w.driverConcurrency} requests in flight.

- **Cluster**: ${w.replicas} replica processes (bench/clusterReplica.ts), each the service +
  handler on \`createPostgresFlowStore\` (a throw-away database) and \`createBullMQCoordinator\`
  (a random key prefix), with the library's defaults: \`leaseMs\` ${w.leaseMs.toLocaleString('en')}, \`lockDurationMs\`
  ${w.lockDurationMs.toLocaleString('en')} (stalled check every ${(w.lockDurationMs / 2).toLocaleString('en')}), \`dependencyTimeoutMs\` 5 000, a pool of 10 connections.
  ${w.polling.intervalMs + 1500} ms after the last signing redirect, replica ${rec?.victim ?? '?'} gets \`SIGKILL\`; it is not restarted.
- **Single process**: the same workload against one process running the same service with the
  in-process coordinator and \`createSqliteFlowStore\` (a temporary file); no kill.

| figure (bench/cluster.json) | cluster | single process | target | |
|---|---|---|---|---|
| \`replicas\` | ${r.replicas} | 1 | | |
| \`flows\` | ${r.flows.toLocaleString('en')} | ${s.flows.toLocaleString('en')} | | |
| \`finalized\` | ${r.finalized.toLocaleString('en')} | ${s.finalized.toLocaleString('en')} | = \`flows\` | ${met(r.finalized === r.flows)} |
| \`overlappingPolls\` | ${r.overlappingPolls} | ${s.overlappingPolls} | 0 | ${met(r.overlappingPolls === 0)} |
| \`duplicateInitiates\` | ${r.duplicateInitiates} | ${s.duplicateInitiates} | 0 | ${met(r.duplicateInitiates === 0)} |
| \`recoveryP99Ms\` | ${v(r.recoveryP99Ms, ' ms')} | — (no kill) | ≤ ${T.recoveryP99Ms.toLocaleString('en')} ms | ${met(r.recoveryP99Ms !== null && r.recoveryP99Ms <= T.recoveryP99Ms)} |
| \`pollLagP99Ms\` | ${v(r.pollLagP99Ms, ' ms')} | ${v(s.pollLag.p99Ms, ' ms')} | ≤ ${T.pollLagP99Ms} ms | ${met(r.pollLagP99Ms !== null && r.pollLagP99Ms <= T.pollLagP99Ms)} |
| \`storeWritesPerFlow\` (create + write + appendEvent) | ${r.storeWritesPerFlow} | ${s.storeWritesPerFlow} | — | |
| lease ops per flow: acquireLease / renewLeases (calls; rows) / releaseLease | ${c.storeWritesPerFlowDetail.acquireLease} / ${c.storeWritesPerFlowDetail.renewLeases} (${c.storeWritesPerFlowDetail.renewedLeaseRows}) / ${c.storeWritesPerFlowDetail.releaseLease} | ${s.storeWritesPerFlowDetail.acquireLease} / ${s.storeWritesPerFlowDetail.renewLeases} (${s.storeWritesPerFlowDetail.renewedLeaseRows}) / ${s.storeWritesPerFlowDetail.releaseLease} | — | |
| CPU per status poll (all replica processes) | ${c.cpu.microsPerStatusPoll} µs | ${s.cpu.microsPerStatusPoll} µs | | |
| \`cpuPerPollRatioVsSingleProcess\` | ${r.cpuPerPollRatioVsSingleProcess} | 1 | ≤ ${T.cpuPerPollRatioVsSingleProcess} | ${met(r.cpuPerPollRatioVsSingleProcess <= T.cpuPerPollRatioVsSingleProcess)} |

Other figures of the same runs:

| | cluster | single process |
|---|---|---|
| status polls (at the provider) | ${c.statusPolls.toLocaleString('en')} (${Object.entries(c.statusPollsByReplica).map(([k, n]) => `${k}: ${n.toLocaleString('en')}`).join(', ')}) | ${s.statusPolls.toLocaleString('en')} |
| initiates / finalizes (at the provider) | ${c.initiates.toLocaleString('en')} / ${c.finalizes.toLocaleString('en')} | ${s.initiates.toLocaleString('en')} / ${s.finalizes.toLocaleString('en')} |
| \`onFinalized\` calls (all replicas) | ${c.onFinalizedCalls.toLocaleString('en')} | ${s.onFinalizedCalls.toLocaleString('en')} |
| CPU seconds (user + system) | ${c.cpu.seconds} (${Object.entries(c.cpu.byReplica).map(([k, n]) => `${k}: ${n}`).join(', ')}) | ${s.cpu.seconds} |
| wall time of the workload | ${c.workSeconds} s | ${s.workSeconds} s |
| poll lag p50 / p99 / max (pairs) | ${v(c.pollLag.p50Ms)} / ${v(c.pollLag.p99Ms)} / ${v(c.pollLag.maxMs)} ms (${c.pollLag.pairs.toLocaleString('en')}; ${c.pollLag.excludedInRecoveryWindow} in the recovery window left out) | ${v(s.pollLag.p50Ms)} / ${v(s.pollLag.p99Ms)} / ${v(s.pollLag.maxMs)} ms (${s.pollLag.pairs.toLocaleString('en')}) |
| recovery min / p50 / p99 / max | ${rec ? `${v(rec.minMs)} / ${v(rec.p50Ms)} / ${v(rec.p99Ms)} / ${v(rec.maxMs)} ms over the ${rec.flows} flows replica ${rec.victim} drove${rec.withoutStatusRequestElsewhere ? `; ${rec.withoutStatusRequestElsewhere} never polled elsewhere` : ''}` : '—'} | — |
| store calls, all kinds | ${Object.entries(c.store_calls).map(([k, n]) => `${k} ${n.toLocaleString('en')}`).join(', ')} | ${Object.entries(s.store_calls).map(([k, n]) => `${k} ${n.toLocaleString('en')}`).join(', ')} |
| errors the replicas reported (stderr lines) | ${c.replicaErrorLines.count} | ${s.replicaErrorLines.count} |

### Definitions

Every figure is measured in the run, at the fake provider (which sees every request, with the
replica that sent it in an \`x-replica\` header) or by the replica processes about themselves;
none is typed in.

- \`finalized\`: flows whose view, read from a replica's handler after the run, is \`finalized\`.
- \`overlappingPolls\`: status requests that reached the provider while another status request of
  the same user was in flight there (arrived, answer not sent yet).
- \`duplicateInitiates\`: initiate requests beyond one per flow, summed over the flows.
- \`recoveryP99Ms\`: the flows the killed replica was driving are those whose latest status
  request before the kill came from it (within the last interval + latency + 1 s, in phase B,
  not finalizing). For each, the time from the \`SIGKILL\` to the flow's first status request from
  another replica; the p99 (nearest rank) over those flows. A flow that never got one makes the
  figure missing.
- \`pollLagP99Ms\`: with \`jitter: 0\` and \`intervalMs = maxIntervalMs\`, the worker schedules the
  next status request \`interval\` after the previous answer arrived. For every pair of
  consecutive status requests of one flow in the same polling phase (A: after the capture
  redirect; B: after the signing redirect), measured at the provider:
  lag = arrival of the next request − (time the previous answer was sent + interval), where
  "sent" is the \`finish\` of the HTTP response. p99 over all pairs, leaving out the pairs whose
  second request falls in the recovery window [kill, kill + the longest recovery].
- \`storeWritesPerFlow\`: calls of the store's writing methods \`create\` + \`write\` +
  \`appendEvent\`, counted by a Proxy around the store in every replica, summed over the replicas
  (the killed one up to the kill) and divided by \`flows\`. The lease operations
  (\`acquireLease\`, \`renewLeases\` — one call renews every lease a replica holds —, \`releaseLease\`)
  are reported next to it, per flow, and so are the reads.
- \`cpuPerPollRatioVsSingleProcess\`: user + system CPU time (\`process.cpuUsage()\`, every thread of
  the process) of all replica processes from the start of the workload to its end (the killed one
  up to the kill), divided by the status requests the provider received; the same for the
  single process; the cluster's figure over the single process's. PostgreSQL's and Redis's own
  CPU is not in it.
${clusterAnalysis(r)}
### Running it

\`\`\`sh
npm run bench:cluster   # about ${Math.max(2, Math.round((c.workSeconds + s.workSeconds + 60) / 60))} minutes; PostgreSQL and Redis on 127.0.0.1 (see DEVELOPERS.md); writes bench/cluster.json and this section
\`\`\`
${CLUSTER_END}`
}

/** What the figures say, for the targets missed (written with the run's own numbers). */
function clusterAnalysis(r: ClusterResults): string {
  const missed = r.targetsMissed ?? []
  if (missed.length === 0) return '\nEvery target of issue 10 is met in this run.\n'
  return `\nTargets missed in this run: ${missed.map((k) => `\`${k}\``).join(', ')}.\n`
}

/** `text` (the part `npm run bench` writes) followed by the cluster section as it is in the file now. */
export function withClusterSection(text: string): string {
  let section: string | undefined
  if (existsSync(DOC)) {
    const doc = readFileSync(DOC, 'utf8')
    const a = doc.indexOf(CLUSTER_START)
    const b = doc.indexOf(CLUSTER_END)
    if (a >= 0 && b > a) section = doc.slice(a, b + CLUSTER_END.length)
  }
  if (section === undefined && existsSync(RESULTS)) section = clusterMarkdown(JSON.parse(readFileSync(RESULTS, 'utf8')) as ClusterResults)
  return section === undefined ? text : `${text.replace(/\n*$/, '')}\n\n${section}\n`
}

/** Rewrites the cluster section of docs/benchmarks.md (appends it when the file has none). */
export function writeClusterSection(r: ClusterResults): void {
  const section = clusterMarkdown(r)
  const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Benchmarks\n'
  const a = doc.indexOf(CLUSTER_START)
  const b = doc.indexOf(CLUSTER_END)
  const next = a >= 0 && b > a ? `${doc.slice(0, a)}${section}${doc.slice(b + CLUSTER_END.length)}` : `${doc.replace(/\n*$/, '')}\n\n${section}\n`
  writeFileSync(DOC, next)
}
