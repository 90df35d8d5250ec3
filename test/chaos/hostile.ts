/**
 * The "Hostile provider" measurements of docs/reliability.md (issue 9, items 1, 6, 7 and 9),
 * run by the chaos suite. Each function measures, checks nothing itself, and returns figures;
 * the suite asserts the issue's bounds on them. Servers listen on 127.0.0.1 only; every loop
 * is bounded.
 */
import { execFile, fork, spawn } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { TenNPayError } from '../../src/adapters/http/errors.js'
import { runIdentification, type IdentificationOutcome } from '../../src/adapters/node/runIdentification.js'
import { createPasswordGrantTokenSource } from '../../src/adapters/node/tokenSource.js'
import type { IdentificationApi } from '../../src/machine/types.js'
import { createSimulator } from '../../src/simulator/simulator.js'
import { startSimulator } from '../../src/simulator/server.js'

const MiB = 1024 * 1024
const root = fileURLToPath(new URL('../../', import.meta.url))

export interface Spread {
  min: number
  p50: number
  max: number
}

export const spread = (xs: number[]): Spread => {
  const s = [...xs].sort((a, b) => a - b)
  const r = (x: number) => Math.round(x * 10) / 10
  return s.length === 0 ? { min: 0, p50: 0, max: 0 } : { min: r(s[0]!), p50: r(s[Math.ceil(s.length / 2) - 1]!), max: r(s.at(-1)!) }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The largest lateness of a 20 ms timer that re-arms itself while `during` runs. */
export async function timerLag<T>(during: () => Promise<T>): Promise<{ result: T; maxLagMs: number }> {
  let maxLagMs = 0
  let done = false
  let timer: ReturnType<typeof setTimeout> | undefined
  const tick = () => {
    const at = performance.now()
    timer = setTimeout(() => {
      maxLagMs = Math.max(maxLagMs, performance.now() - at - 20)
      if (!done) tick()
    }, 20)
  }
  tick()
  try {
    return { result: await during(), maxLagMs: Math.round(maxLagMs * 10) / 10 }
  } finally {
    done = true
    clearTimeout(timer)
  }
}

/** The largest RSS growth over `baseline` while `during` runs, sampled every 5 ms. */
export async function rssPeak<T>(during: () => Promise<T>): Promise<{ result: T; baselineMb: number; growthMb: number }> {
  const baseline = process.memoryUsage.rss()
  let peak = baseline
  const iv = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5)
  try {
    const result = await during()
    peak = Math.max(peak, process.memoryUsage.rss())
    return { result, baselineMb: Math.round(baseline / MiB), growthMb: Math.round(((peak - baseline) / MiB) * 10) / 10 }
  } finally {
    clearInterval(iv)
  }
}

// ---------------------------------------------------------------------------------------------
// Item 1: transports that answer without I/O.

export interface SpinVariant {
  name: string
  runs: number
  /** From `runIdentification` to its `failed` outcome. */
  msToEnd: Spread
  /** Outcome → count (`failed/timeout` is the right one). */
  outcomes: Record<string, number>
  /** Of a 20 ms timer elsewhere in the process, over all runs. */
  maxTimerLagMs: number
  requestsPerRun: Spread
}

export interface SpinFigures {
  phaseTimeoutMs: number
  polling: Record<string, number>
  variants: SpinVariant[]
}

const outcomeName = (o: IdentificationOutcome | 'threw') => (o === 'threw' ? 'threw' : o.type === 'failed' ? `failed/${o.failure.reason}` : o.type)

/**
 * A 300 ms phase deadline against transports that answer without waiting: the in-process
 * simulator stuck in `PROCESSING`, the in-process simulator refusing every request, and Node's
 * own `fetch` to the blocked port 9 (refused at once). Each run is bounded by a 10 s abort.
 */
export async function measureSpin(runs: number): Promise<SpinFigures> {
  const polling = { phaseTimeoutMs: 300, intervalMs: 50, maxIntervalMs: 50 }
  const variants: SpinVariant[] = []
  const variant = async (name: string, make: (i: number) => { api: IdentificationApi; requests: () => number; resume: boolean; act?: () => void }) => {
    const ms: number[] = []
    const reqs: number[] = []
    const outcomes: Record<string, number> = {}
    let lag = 0
    for (let i = 0; i < runs; i++) {
      const { api, requests, resume, act } = make(i)
      const ac = new AbortController()
      const guard = setTimeout(() => ac.abort(new Error('stuck')), 10_000)
      const t0 = performance.now()
      const { result, maxLagMs } = await timerLag(() =>
        runIdentification({
          api, userId: 7, userType: 0, polling, signal: ac.signal,
          ...(resume && { resumeAfter: 'identification' as const }),
          onAction: () => {
            act?.()
            return 'success'
          },
        }).catch(() => 'threw' as const),
      )
      clearTimeout(guard)
      ms.push(performance.now() - t0)
      reqs.push(requests())
      lag = Math.max(lag, maxLagMs)
      const o = outcomeName(result)
      outcomes[o] = (outcomes[o] ?? 0) + 1
    }
    variants.push({ name, runs, msToEnd: spread(ms), outcomes, maxTimerLagMs: lag, requestsPerRun: spread(reqs) })
  }

  await variant('in-process simulator, phase A stays PROCESSING (`scenario: \'timeout\'`)', () => {
    const sim = createSimulator({ scenario: 'timeout', timing: { captureMs: 0 } })
    const api = createHttpApi({ baseUrl: 'http://127.0.0.1', fetch: sim.fetch, getAccessToken: () => sim.issueToken() })
    return { api, requests: () => sim.requests.length, resume: false, act: () => sim.act(7, 'identification', 'success') }
  })
  await variant('in-process simulator refusing every request at once (`faults: { refused: 1 }`)', () => {
    const sim = createSimulator({ faults: { refused: 1 } })
    const api = createHttpApi({ baseUrl: 'http://127.0.0.1', fetch: sim.fetch, getAccessToken: () => sim.issueToken() })
    return { api, requests: () => sim.requests.length, resume: true }
  })
  await variant("Node's fetch to 127.0.0.1:9 (connection refused at once)", () => {
    let n = 0
    const api = createHttpApi({
      baseUrl: 'http://127.0.0.1:9',
      getAccessToken: () => 'x',
      fetch: (input, init) => (n++, globalThis.fetch(input, init)),
    })
    return { api, requests: () => n, resume: true }
  })
  return { phaseTimeoutMs: polling.phaseTimeoutMs, polling, variants }
}

export interface CliFigures {
  command: string
  runs: number
  exitCodes: Record<string, number>
  /** Wall time of each run, node start-up included. */
  seconds: Spread
}

/**
 * The CLI repro of item 1, `runs` times in a row. The CLI is built from the current sources
 * into `.tmp/chaos-dist` (git-ignored; `node_modules` resolves from the repository), the same
 * `tsc` build as `npm run build` without touching `dist/`.
 */
export async function measureCli(runs: number): Promise<CliFigures> {
  const outDir = '.tmp/chaos-dist'
  const main = `${root}${outDir}/cli/main.js`
  rmSync(`${root}${outDir}`, { recursive: true, force: true })
  // tsc emits even when a file elsewhere in src/ has a type error; what matters here is the CLI's JavaScript.
  await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.build.json', '--outDir', outDir, '--declaration', 'false'], { cwd: root }).catch((err: unknown) => {
    if (!existsSync(main)) throw err
  })
  const args = ['wait', '--phase', 'A', '--base-url', 'http://127.0.0.1:9', '--user-id', '42', '--phase-timeout-ms', '3000']
  const exitCodes: Record<string, number> = {}
  const seconds: number[] = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    const code = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, [`${outDir}/cli/main.js`, ...args], {
        cwd: root,
        env: { ...process.env, TENNPAY_TOKEN: 'x' },
        stdio: 'ignore',
      })
      // Bounded: a run that hangs (the defect) is killed after 30 s and counted as such.
      const guard = setTimeout(() => child.kill('SIGKILL'), 30_000)
      child.on('exit', (c, signal) => {
        clearTimeout(guard)
        resolve(signal ? `killed (${signal})` : String(c))
      })
    })
    seconds.push((performance.now() - t0) / 1000)
    exitCodes[code] = (exitCodes[code] ?? 0) + 1
  }
  const s = spread(seconds)
  const r2 = (x: number) => Math.round(x * 100) / 100
  return {
    command: `TENNPAY_TOKEN=x node dist/cli/main.js ${args.join(' ')}`,
    runs,
    exitCodes,
    seconds: { min: r2(s.min), p50: r2(s.p50), max: r2(s.max) },
  }
}

// ---------------------------------------------------------------------------------------------
// Item 6: a body that trickles.

/** A server on 127.0.0.1 with `handler`, noting when each client socket closes. */
async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => handler(req, res))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

export interface SlowBodyFigures {
  runs: number
  requestTimeoutMs: number
  byteEveryMs: number
  /** The error each call ended with (`kind`), by count. */
  errors: Record<string, number>
  /** From the call to its rejection. */
  msToError: Spread
  /** From the rejection to the server seeing the socket close. */
  msErrorToSocketClosed: Spread
  socketsClosed: number
  /** Body bytes the server had written when the socket closed. */
  bytesSent: Spread
}

/**
 * Headers at once, then one byte per second, against each of the three calls in turn:
 * `runs` calls one after the other with `requestTimeoutMs`.
 */
export async function measureSlowBody(runs: number, requestTimeoutMs: number): Promise<SlowBodyFigures> {
  const byteEveryMs = 1000
  let onClose: ((bytes: number) => void) | undefined
  const srv = await listen((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    let bytes = 0
    const write = () => {
      res.write(bytes === 0 ? '{' : ' ')
      bytes++
    }
    write()
    // Bounded: at most 120 bytes (two minutes).
    const iv = setInterval(() => (bytes >= 120 ? clearInterval(iv) : write()), byteEveryMs)
    res.on('close', () => {
      clearInterval(iv)
      onClose?.(bytes)
    })
  })
  const api = createHttpApi({ baseUrl: srv.url, getAccessToken: () => 'x', requestTimeoutMs })
  const calls = [
    () => api.getStatus({ userId: 7, userType: 0 }),
    () => api.initiate({ userId: 7, isRestartIdentification: false, correlationType: 0 }),
    () => api.finalize({ userId: 7, bTrustAppCallBackId: null, correlationType: 0 }),
  ]
  const errors: Record<string, number> = {}
  const toError: number[] = []
  const toClose: number[] = []
  const sent: number[] = []
  let closed = 0
  try {
    for (let i = 0; i < runs; i++) {
      const socketClosed = new Promise<{ at: number; bytes: number } | undefined>((resolve) => {
        const guard = setTimeout(() => resolve(undefined), 5000)
        onClose = (bytes) => {
          clearTimeout(guard)
          resolve({ at: performance.now(), bytes })
        }
      })
      const t0 = performance.now()
      const err = await calls[i % calls.length]!().then(() => undefined, (e: unknown) => e)
      const tErr = performance.now()
      const kind = err instanceof TenNPayError ? err.kind : err === undefined ? 'no error' : 'other'
      errors[kind] = (errors[kind] ?? 0) + 1
      toError.push(tErr - t0)
      const c = await socketClosed
      if (c) {
        closed++
        toClose.push(Math.max(0, c.at - tErr))
        sent.push(c.bytes)
      }
    }
  } finally {
    onClose = undefined
    await srv.close()
  }
  return { runs, requestTimeoutMs, byteEveryMs, errors, msToError: spread(toError), msErrorToSocketClosed: spread(toClose), socketsClosed: closed, bytesSent: spread(sent) }
}

// ---------------------------------------------------------------------------------------------
// Item 7: a huge body.

export interface HugeBodyFigures {
  answerBytes: number
  maxResponseBytes: number
  /** One status answer of `answerBytes`. */
  single: { error: string; rssBaselineMb: number; rssGrowthMb: number }
  /** A whole flow whose every other API answer (seeded) is `answerBytes` long. */
  flow: { outcome: string; hugeAnswers: number; apiRequests: number; rssGrowthMb: number }
}

/** A 200 MiB status answer from the simulator over loopback HTTP, then a flow through many of them. */
export async function measureHugeBody(): Promise<HugeBodyFigures> {
  const answerBytes = 200 * MiB
  const sim = await startSimulator({ timing: { captureMs: 200, staleMs: 50, signMs: 200 }, seed: 7 })
  try {
    const tokens = createPasswordGrantTokenSource({ tokenUrl: `${sim.url}/connect/token`, ...sim.simulator.credentials })
    const api = createHttpApi({ baseUrl: sim.url, getAccessToken: tokens })
    await api.initiate({ userId: 7, isRestartIdentification: false, correlationType: 0 })
    sim.simulator.setFaults(7, { hugeBody: 1, hugeBodyBytes: answerBytes })
    const single = await rssPeak(() => api.getStatus({ userId: 7, userType: 0 }).then(() => 'no error', (e: unknown) => (e instanceof TenNPayError ? `${e.kind}: ${e.message}` : String(e))))

    sim.simulator.setFaults(8, { hugeBody: 0.5, hugeBodyBytes: answerBytes })
    const ac = new AbortController()
    const guard = setTimeout(() => ac.abort(new Error('stuck')), 60_000)
    const flow = await rssPeak(() =>
      runIdentification({
        api, userId: 8, userType: 0, signal: ac.signal,
        polling: { intervalMs: 100, maxIntervalMs: 250, phaseTimeoutMs: 30_000 },
        onAction: async ({ url }) => {
          const res = await fetch(`${url}/complete`, { method: 'POST', redirect: 'manual' })
          await res.body?.cancel()
          return res.status === 303 ? 'success' : 'fail'
        },
      }).then(outcomeName, () => 'threw'),
    ).finally(() => clearTimeout(guard))
    const mine = sim.requests.filter((r) => r.userId === 8 && r.endpoint !== 'page')
    return {
      answerBytes,
      maxResponseBytes: MiB,
      single: { error: single.result, rssBaselineMb: single.baselineMb, rssGrowthMb: single.growthMb },
      flow: { outcome: flow.result, hugeAnswers: mine.filter((r) => r.fault === 'huge-body').length, apiRequests: mine.length, rssGrowthMb: flow.growthMb },
    }
  } finally {
    await sim.close()
  }
}

/**
 * {@link measureHugeBody} in a fresh child process (test/chaos/hugeBodyChild.ts): RSS growth
 * means something only against a process that has not been through the other runs.
 */
export function measureHugeBodyInChild(): Promise<HugeBodyFigures> {
  const child = fork(fileURLToPath(new URL('./hugeBodyChild.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    const guard = setTimeout(() => child.kill('SIGKILL'), 120_000)
    let figures: HugeBodyFigures | undefined
    child.once('message', (m) => (figures = m as HugeBodyFigures))
    // Settles once the child is gone and its pipes are closed: nothing of it is left behind.
    child.once('close', (code, signal) => {
      clearTimeout(guard)
      if (figures) resolve(figures)
      else reject(new Error(`the huge-body measurement exited (${signal ?? code}) without figures`))
    })
  })
}

// ---------------------------------------------------------------------------------------------
// Item 9: the token endpoint down.

export interface TokenDownFigures {
  flows: number
  seconds: number
  pollIntervalMs: number
  tokenRequests: number
  /** API requests that reached the provider (none can: there is no token). */
  apiRequests: number
  /** The token requests, by second since the start. */
  tokenRequestsBySecond: number[]
}

/** `flows` flows polling phase A every 100 ms, one shared token source, the token endpoint answering `503`, for `seconds`. */
export async function measureTokenDown(flows: number, seconds: number): Promise<TokenDownFigures> {
  const sim = await startSimulator({ faults: { tokenServerError: 1 } })
  const controllers = Array.from({ length: flows }, () => new AbortController())
  try {
    const tokens = createPasswordGrantTokenSource({ tokenUrl: `${sim.url}/connect/token`, ...sim.simulator.credentials })
    const api = createHttpApi({ baseUrl: sim.url, getAccessToken: tokens })
    const t0 = Date.now()
    const running = Array.from({ length: flows }, (_, i) =>
      runIdentification({
        api, userId: 900 + i, userType: 0, resumeAfter: 'identification', signal: controllers[i]!.signal,
        polling: { intervalMs: 100, maxIntervalMs: 100 },
        onAction: () => 'success',
      }).catch(() => undefined),
    )
    await sleep(seconds * 1000)
    for (const c of controllers) c.abort()
    await Promise.all(running)
    const token = sim.requests.filter((r) => r.endpoint === 'token')
    const bySecond = Array.from({ length: seconds }, (_, s) => token.filter((r) => r.at - t0 >= s * 1000 && r.at - t0 < (s + 1) * 1000).length)
    return {
      flows,
      seconds,
      pollIntervalMs: 100,
      tokenRequests: token.length,
      apiRequests: sim.requests.filter((r) => r.endpoint !== 'token').length,
      tokenRequestsBySecond: bySecond,
    }
  } finally {
    await sim.close()
  }
}

export interface HostileFigures {
  spin?: SpinFigures
  cli?: CliFigures
  slowBody?: SlowBodyFigures
  hugeBody?: HugeBodyFigures
  tokenDown?: TokenDownFigures
}
