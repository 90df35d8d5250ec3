import { createHttpApi } from '../adapters/http/httpApi.js'
import { createNodeTransport } from '../adapters/node/nodeTransport.js'
import { runIdentification } from '../adapters/node/runIdentification.js'
import { createPasswordGrantTokenSource } from '../adapters/node/tokenSource.js'
import { topState } from '../machine/persistence.js'
import { SCENARIO_SLOWDOWN, type Scenario } from '../simulator/scenarios.js'
import { startSimulator } from '../simulator/server.js'
import type { InspectOption } from '../machine/inspect.js'
import { EXIT, secs, UsageError, type CliIo } from './io.js'
import { createProgress } from './progress.js'

/** Options of the `demo` command. */
export interface DemoOptions {
  json: boolean
  scenario: Scenario
  userId: number
  /** How long the simulated user takes on each provider page. */
  clickMs: number
  /** Answer Fail on this step instead of Complete. */
  failAt?: 'identification' | 'signing'
  /** Runs the simulated provider and the polling this many times faster. */
  speed: number
  /** Watch the flow in Stately's inspector: the port of `@statelyai/inspect`'s inspector server. */
  inspectPort?: number
}

/**
 * Starts the simulator on a free loopback port and runs one whole flow through
 * `runIdentification`, with simulated clicks on the fake provider pages.
 */
export async function demo(opts: DemoOptions, io: CliIo): Promise<number> {
  const k = 1 / opts.speed
  const ms = (n: number) => Math.max(1, Math.round(n * k))
  // The longest wait without a status change is one provider step (capture or signing); the
  // phase deadline is three of them, at least 15 s (scaled by --speed), and never under 5 s: a
  // provider's Retry-After is not sped up.
  const slowdown = SCENARIO_SLOWDOWN[opts.scenario] ?? 1
  const phaseTimeoutMs = Math.max(5000, ms(Math.max(15_000, 3 * 3000 * slowdown)))
  const inspector = opts.inspectPort === undefined ? undefined : await startInspector(opts.inspectPort, io)
  const sim = await startSimulator({ scenario: opts.scenario, timing: { captureMs: ms(3000), staleMs: ms(1000), signMs: ms(3000) } })
  const started = Date.now()
  const timeline: { at: number; state: string }[] = []
  const progress = createProgress(io, opts.json, started, Date.now)
  const polls = () => sim.requests.filter((r) => r.endpoint === 'status').length
  if (!opts.json) io.stdout.write(`Simulator at ${sim.url} (scenario ${opts.scenario}), user ${opts.userId}\n`)
  try {
    const c = sim.simulator.credentials
    const api = createHttpApi({
      baseUrl: sim.url,
      getAccessToken: createPasswordGrantTokenSource({ tokenUrl: `${sim.url}/connect/token`, ...c }),
      transport: createNodeTransport(),
    })
    const outcome = await runIdentification({
      api,
      userId: opts.userId,
      userType: 0,
      polling: { intervalMs: ms(1000), maxIntervalMs: ms(3000), phaseTimeoutMs },
      ...(inspector && { inspect: inspector.inspect }),
      onSnapshot: (s) => {
        const state = topState(s.value)
        if (timeline.at(-1)?.state !== state) timeline.push({ at: Date.now() - started, state })
        progress.update(state, polls())
      },
      onAction: async ({ type, url }) => {
        const step = type === 'open-identification' ? 'identification' : 'signing'
        await new Promise((r) => setTimeout(r, ms(opts.clickMs)))
        const button = opts.failAt === step ? 'fail' : 'complete'
        const res = await fetch(`${url}/${button}`, { method: 'POST', redirect: 'manual' })
        await res.body?.cancel()
        return res.status === 303 && button === 'complete' ? 'success' : 'fail'
      },
    })
    const elapsed = Date.now() - started
    const summary = {
      outcome: outcome.type,
      ...(outcome.type === 'finalized'
        ? { correlationId: outcome.correlationId, individualId: outcome.individualId }
        : { failure: outcome.failure }),
      elapsedMs: elapsed,
      polls: polls(),
      requests: sim.requests.filter((r) => r.endpoint !== 'page').length,
      timeline,
    }
    if (opts.json) io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
    else {
      progress.done(
        outcome.type === 'finalized'
          ? `finalized in ${secs(elapsed)}: correlationId ${outcome.correlationId}, individualId ${outcome.individualId}`
          : `failed (${outcome.failure.reason}): ${outcome.failure.message}`,
        outcome.type === 'finalized',
      )
      io.stdout.write('Timeline:\n')
      for (const t of timeline) io.stdout.write(`  ${secs(t.at).padStart(7)}  ${t.state}\n`)
      io.stdout.write(`${summary.polls} status polls, ${summary.requests} API requests in all\n`)
    }
    return outcome.type === 'finalized' ? EXIT.ok : EXIT.failed
  } finally {
    inspector?.stop()
    await sim.close()
  }
}

/**
 * Starts `@statelyai/inspect`'s inspector server (an optional peer dependency) and a WebSocket
 * inspector connected to it; says on stderr what to open.
 */
async function startInspector(port: number, io: CliIo): Promise<{ inspect: InspectOption; stop(): void }> {
  let lib: typeof import('@statelyai/inspect')
  let server: typeof import('@statelyai/inspect/server')
  try {
    ;[lib, server] = await Promise.all([import('@statelyai/inspect'), import('@statelyai/inspect/server')])
  } catch {
    throw new UsageError('--inspect needs the @statelyai/inspect package: npm install @statelyai/inspect')
  }
  const s = server.createInspectorServer({ port, autoOpen: false })
  const inspector = lib.createWebSocketInspector({ url: `ws://127.0.0.1:${port}` })
  io.stderr.write(`Stately inspector: open http://localhost:${port} in a browser (it embeds https://stately.ai/inspect) to watch the flow.\n`)
  return {
    inspect: inspector.inspect,
    stop() {
      inspector.stop()
      s.stop()
    },
  }
}
