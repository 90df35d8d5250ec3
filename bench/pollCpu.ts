/**
 * Benchmark 1: CPU per status poll, library against the bare loop, alternating in one process.
 * (a) in process: both call the same trivial fetch that returns a constant answer;
 * (b) over loopback HTTP against a minimal node:http server in a child process (client CPU only).
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { barePolls, cpuMicros, libraryPolls, median, PROCESSING_BODY } from './common.js'

export interface PollCpuFigures {
  polls: number
  rounds: number
  libraryMicrosPerPoll: number
  bareMicrosPerPoll: number
  ratio: number
}

const constantFetch = (async () =>
  new Response(PROCESSING_BODY, { status: 200, headers: { 'content-type': 'application/json' } })) as unknown as typeof fetch

/**
 * Runs `a` and `b` (each a batch, in µs per poll) in `rounds` pairs, alternating which goes first,
 * and takes the ratio of each adjacent pair: load on the machine then weighs on both sides of a
 * ratio alike. Resolves with the medians.
 */
async function pairedRounds(rounds: number, a: () => Promise<number>, b: () => Promise<number>): Promise<{ a: number; b: number; ratio: number }> {
  const as: number[] = []
  const bs: number[] = []
  const ratios: number[] = []
  for (let r = 0; r < rounds; r++) {
    let x: number
    let y: number
    if (r % 2 === 0) {
      x = await a()
      y = await b()
    } else {
      y = await b()
      x = await a()
    }
    as.push(x)
    bs.push(y)
    ratios.push(x / y)
  }
  return { a: round(median(as)), b: round(median(bs)), ratio: round(median(ratios)) }
}

async function alternate(fetchFn: typeof fetch, baseUrl: string, polls: number, rounds: number): Promise<PollCpuFigures> {
  // Warm-up: JIT both paths.
  await libraryPolls(fetchFn, baseUrl, Math.min(2000, polls))
  await barePolls(fetchFn, baseUrl, Math.min(2000, polls))
  const m = await pairedRounds(
    rounds,
    async () => (await cpuMicros(() => libraryPolls(fetchFn, baseUrl, polls))) / polls,
    async () => (await cpuMicros(() => barePolls(fetchFn, baseUrl, polls))) / polls,
  )
  return { polls, rounds, libraryMicrosPerPoll: m.a, bareMicrosPerPoll: m.b, ratio: m.ratio }
}

const round = (x: number) => Math.round(x * 100) / 100

export function pollCpuInProcess(polls = 20_000, rounds = 5): Promise<PollCpuFigures> {
  return alternate(constantFetch, 'https://bench.invalid', polls, rounds)
}

export async function pollCpuHttp(polls = 20_000, rounds = 3): Promise<PollCpuFigures> {
  const child = fork(fileURLToPath(new URL('./statusServer.mjs', import.meta.url)), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port))
    child.once('exit', (c) => reject(new Error(`status server exited ${c}`)))
  })
  try {
    return await alternate(fetch, `http://127.0.0.1:${port}`, polls, rounds)
  } finally {
    child.kill()
  }
}

/**
 * Benchmark 1c: the per-poll CPU of the poll path with OpenTelemetry's API present and no SDK
 * registered — `createOpenTelemetry()`'s phase and request hooks on every poll, as the service
 * calls them — against the same path without telemetry. The issue's bound: within 5 %.
 */
export async function pollCpuOtelNoSdk(polls = 20_000, rounds = 9): Promise<{ polls: number; rounds: number; withMicrosPerPoll: number; withoutMicrosPerPoll: number; ratio: number }> {
  const { createOpenTelemetry } = await import('../src/adapters/otel/index.js')
  const phase = createOpenTelemetry().phase({ id: '00000000-0000-4000-8000-000000000000', userType: 0, trace: undefined }, 'A')
  const onRequest: Parameters<typeof libraryPolls>[4] = (_flow, operation) => phase.request(operation)
  const base = 'https://bench.invalid'
  await libraryPolls(constantFetch, base, Math.min(2000, polls), undefined, onRequest)
  await libraryPolls(constantFetch, base, Math.min(2000, polls))
  const m = await pairedRounds(
    rounds,
    async () => (await cpuMicros(() => libraryPolls(constantFetch, base, polls, undefined, onRequest))) / polls,
    async () => (await cpuMicros(() => libraryPolls(constantFetch, base, polls))) / polls,
  )
  return { polls, rounds, withMicrosPerPoll: m.a, withoutMicrosPerPoll: m.b, ratio: m.ratio }
}
