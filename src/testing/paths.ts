import { createRequire } from 'node:module'
import { fromCallback } from 'xstate'
import type { HostEvent, IdentificationEvent, WorkerEvent } from '../machine/events.js'
import { identificationMachine } from '../machine/identificationMachine.js'
import { createModelOptions, serializeModelState } from '../machine/model.js'
import type { IdentificationInput } from '../machine/types.js'

const inert = fromCallback<WorkerEvent, unknown>(() => () => {})

/**
 * The chart with workers that do nothing: traverse it, or run an actor of it and send it the
 * workers' events yourself (`initiate.ok`, `poll.status`, …). Nothing is sent anywhere.
 */
export const testMachine = identificationMachine.provide({ actors: { initiator: inert, statusPoller: inert, finalizer: inert } })

/** One step of a {@link ModelPath}: an event, and the model state the flow is in after it. */
export interface ModelStep {
  event: IdentificationEvent
  /** The model state after the event (`serializeModelState`: `pollingA`, `pollingA(confirming)`, `failed:timeout:A`, …). */
  state: string
  /** Whether the host sends this event (a UI or a backend route does it); else a worker sends it. */
  host: boolean
}

/** A path through the chart, from `idle`: a test makes it happen and checks the state after each step. */
export interface ModelPath {
  /** e.g. `START → initiate.ok(STARTED) → REDIRECT(fail) ⇒ pollingA(confirming)`. */
  name: string
  steps: ModelStep[]
  /** The model state at the end. */
  end: string
}

/** Options of {@link modelPaths}. */
export interface ModelPathOptions {
  /**
   * `shortest`: one shortest path to every model state; `simple`: paths to every end
   * (`finalized`, each failure), reduced to a few that together take every edge.
   * @default 'shortest'
   */
  kind?: 'shortest' | 'simple'
  /**
   * Include the events a UI sends on its own (`RESTART`, `CANCEL`, `RETRY`, `LOST`).
   * @default true
   */
  hostEvents?: boolean
  /** The chart's input for the traversal. @default { userId: 1, userType: 0 } */
  input?: IdentificationInput
  /**
   * `start`: only paths that begin with `START` (an app that starts its own flows, not one that
   * picks up a redirect for a flow started elsewhere); chosen before the covering reduction, so
   * that every edge reachable from `START` is still taken.
   * @default 'anywhere'
   */
  from?: 'anywhere' | 'start'
}

const HOST = new Set<string>(['START', 'REDIRECT', 'CONTINUE', 'RETRY', 'RESTART', 'CANCEL', 'LOST'])

/** Whether an event is one the host sends (not a worker's). */
export const isHostEvent = (e: IdentificationEvent): e is HostEvent => HOST.has(e.type)

type Graph = typeof import('@xstate/graph')
let graph: Graph | undefined
function loadGraph(): Graph {
  if (graph) return graph
  try {
    graph = createRequire(import.meta.url)('@xstate/graph') as Graph
    return graph
  } catch (err) {
    throw new Error('10npay-identification/testing needs the @xstate/graph package for path generation: npm install --save-dev @xstate/graph', { cause: err })
  }
}

/** A short label of an event: its type and what tells it apart. */
function label(e: IdentificationEvent): string {
  const x = e as { outcome?: string; step?: string; error?: { kind: string }; response?: { videoIdentificationStatus: string | null; videoIdentificationUrl: string | null } }
  const detail =
    x.outcome !== undefined
      ? `${x.outcome}${x.step ? `, ${x.step}` : ''}`
      : (x.error?.kind ?? (x.response ? `${x.response.videoIdentificationStatus}${x.response.videoIdentificationUrl?.startsWith('javascript') ? ', unsafe URL' : ''}` : ''))
  return detail ? `${e.type}(${detail})` : e.type
}

/**
 * Paths through the chart for a model-based test of your own app, generated with
 * `@xstate/graph` (a peer to install: `npm install --save-dev @xstate/graph`). Each path starts
 * in `idle` (no `xstate.init` step to skip) and names the model state after every step.
 *
 * @example
 * for (const path of modelPaths({ kind: 'simple', hostEvents: false })) it(path.name, () => …)
 */
export function modelPaths(options: ModelPathOptions = {}): ModelPath[] {
  const { getShortestPaths, getSimplePaths } = loadGraph()
  const traversal = createModelOptions({ hostEvents: options.hostEvents ?? true, ...(options.input && { input: options.input }) })
  const kind = options.kind ?? 'shortest'
  const fromStart = (options.from ?? 'anywhere') === 'start'
  const wanted = (p: RawPath) => !fromStart || p.steps[1]?.event.type === 'START'
  const raw: RawPath[] =
    kind === 'shortest'
      ? (getShortestPaths(testMachine, traversal as never) as unknown as RawPath[]).filter(wanted)
      : coveringPaths(
          (getSimplePaths(testMachine, { ...traversal, toState: (s: { hasTag(t: string): boolean }) => s.hasTag('ended') } as never) as unknown as RawPath[]).filter(wanted),
        )
  return raw.map((p) => {
    const steps = p.steps.slice(1).map((s) => ({ event: s.event, state: serializeModelState(s.state), host: isHostEvent(s.event) }))
    const end = serializeModelState(p.state)
    return { name: `${steps.map((s) => label(s.event)).join(' → ') || '(start)'} ⇒ ${end}`, steps, end }
  })
}

type RawPath = { steps: { event: IdentificationEvent; state: never }[]; state: never }

/** A few paths that together take every edge the given paths take (greedy set cover): simple paths repeat one another a lot. */
function coveringPaths(paths: RawPath[]): RawPath[] {
  const edgesOf = (p: RawPath) => new Set(p.steps.slice(1).map((s, i) => `${serializeModelState(p.steps[i]!.state)} ${JSON.stringify(s.event)}`))
  const edges = paths.map(edgesOf)
  const uncovered = new Set(edges.flatMap((e) => [...e]))
  const chosen: RawPath[] = []
  while (uncovered.size > 0) {
    let best = -1
    let gain = 0
    for (const [i, e] of edges.entries()) {
      let g = 0
      for (const x of e) if (uncovered.has(x)) g++
      if (g > gain) [best, gain] = [i, g]
    }
    chosen.push(paths[best]!)
    for (const x of edges[best]!) uncovered.delete(x)
  }
  return chosen
}
