/**
 * `npm run bench`: the four benchmarks, library against the bare loop in the same run. Prints
 * a table, writes bench/results.json and docs/benchmarks.md.
 * `npm run bench:quick` (`--quick`): benchmarks 1a, 3 and 4 only; exits 1 when a figure is more
 * than 25 % worse than the committed bench/results.json.
 */
import { fork } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { economy } from './economy.js'
import type { ManyFlowsSide } from './manyFlows.js'
import { pollCpuHttp, pollCpuInProcess, pollCpuOtelNoSdk } from './pollCpu.js'
import { measureSizes } from './size.js'
import { benchmarksMarkdown } from './report.js'

const quick = process.argv.includes('--quick')
const resultsFile = fileURLToPath(new URL('./results.json', import.meta.url))
const t0 = Date.now()
const loadAtStart = Math.round(loadavg()[0]! * 100) / 100
const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`

function manyFlows(side: 'library' | 'bare'): Promise<ManyFlowsSide> {
  const child = fork(fileURLToPath(new URL('./manyFlows.ts', import.meta.url)), [side, '10000', '30000'], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
  })
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as ManyFlowsSide))
    child.once('exit', (code) => code !== 0 && reject(new Error(`manyFlows ${side} exited ${code}`)))
  })
}

const log = (s: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${s}`)

log('1a. per-poll CPU, in process')
const inProcess = await pollCpuInProcess(20_000, quick ? 7 : 5)
log(`    library ${inProcess.libraryMicrosPerPoll} µs, bare ${inProcess.bareMicrosPerPoll} µs, ratio ${inProcess.ratio}`)
let otel: Awaited<ReturnType<typeof pollCpuOtelNoSdk>> | undefined
if (!quick) {
  log('1c. per-poll CPU with the OpenTelemetry API and no SDK, against without')
  otel = await pollCpuOtelNoSdk(20_000, 9)
  log(`    with ${otel.withMicrosPerPoll} µs, without ${otel.withoutMicrosPerPoll} µs, ratio ${otel.ratio}`)
}
let http: Awaited<ReturnType<typeof pollCpuHttp>> | undefined
let many: { library: ManyFlowsSide; bare: ManyFlowsSide } | undefined
if (!quick) {
  log('1b. per-poll CPU, over loopback HTTP')
  http = await pollCpuHttp(20_000, 3)
  log(`    library ${http.libraryMicrosPerPoll} µs, bare ${http.bareMicrosPerPoll} µs, ratio ${http.ratio}`)
  log('2. 10 000 flows waiting in phase A, 30 s steady state (library, then bare)')
  const library = await manyFlows('library')
  const bare = await manyFlows('bare')
  many = { library, bare }
  log(`    library ${library.heapBytesPerFlow} B/flow, p99 ${library.eventLoopDelayP99Ms} ms, ${library.cpuPercentOfOneCore} % CPU; bare ${bare.heapBytesPerFlow} B/flow, p99 ${bare.eventLoopDelayP99Ms} ms, ${bare.cpuPercentOfOneCore} % CPU`)
}
log('3. request economy')
const eco = economy()
log(`    early p95 ratio ${eco.earlyDetectionP95Ratio}, requests over 120 s ratio ${eco.requestsRatio120s}`)
log('4. bundle sizes')
const sizes = await measureSizes()
log(`    browser entry ${sizes.browserEntry.gzipBytes} B gzip, own code ${sizes.ownCode.gzipBytes} B gzip`)

const results = {
  machine,
  date: new Date().toISOString().slice(0, 10),
  loadAverage: { start: loadAtStart, end: Math.round(loadavg()[0]! * 100) / 100 },
  pollCpuRatioInProcess: inProcess.ratio,
  pollCpuRatioHttp: http?.ratio,
  pollCpuOtelNoSdkRatio: otel?.ratio,
  heapBytesPerFlow: many?.library.heapBytesPerFlow,
  eventLoopDelayP99Ms: many?.library.eventLoopDelayP99Ms,
  manyFlowsCpuRatio: many ? Math.round((many.library.cpuPercentOfOneCore / many.bare.cpuPercentOfOneCore) * 100) / 100 : undefined,
  earlyDetectionP95Ratio: eco.earlyDetectionP95Ratio,
  requestsRatio120s: eco.requestsRatio120s,
  ownCodeGzipBytes: sizes.ownCode.gzipBytes,
  browserEntryGzipBytes: sizes.browserEntry.gzipBytes,
  raw: { pollCpuInProcess: inProcess, pollCpuOtelNoSdk: otel, pollCpuHttp: http, manyFlows: many, economy: eco, sizes },
}

if (quick) {
  const committed = JSON.parse(readFileSync(resultsFile, 'utf8')) as Record<string, number>
  const keys = ['pollCpuRatioInProcess', 'earlyDetectionP95Ratio', 'requestsRatio120s', 'ownCodeGzipBytes', 'browserEntryGzipBytes'] as const
  let worse = 0
  console.log(`\n${'figure'.padEnd(26)} ${'committed'.padStart(10)} ${'now'.padStart(10)}  (lower is better; fails above +25 %)`)
  for (const k of keys) {
    const was = committed[k]!
    const now = results[k] as number
    const bad = now > was * 1.25
    if (bad) worse++
    console.log(`${k.padEnd(26)} ${String(was).padStart(10)} ${String(now).padStart(10)}  ${bad ? 'WORSE by more than 25 %' : 'ok'}`)
  }
  log(worse ? `${worse} figure(s) more than 25 % worse than bench/results.json` : 'no figure more than 25 % worse than bench/results.json')
  process.exit(worse ? 1 : 0)
}

writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`)
writeFileSync(fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url)), benchmarksMarkdown(results as never))
log('wrote bench/results.json and docs/benchmarks.md')
