import { createAdaptorServer } from '@hono/node-server'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { createSimulator, RESET_HEADER, type Simulator, type SimulatorOptions, type SimulatorRequest } from './simulator.js'
import type { Scenario } from './scenarios.js'

/** Options of {@link startSimulator}. */
export interface StartSimulatorOptions extends SimulatorOptions {
  /**
   * The port; `0` picks a free one.
   * @default 0
   */
  port?: number
  /**
   * The interface to listen on. Loopback only by default: the simulator is for tests and demos.
   * @default '127.0.0.1'
   */
  host?: string
  /** Adds routes of your own to the simulator's Hono app before it listens (a demo page, say). */
  mount?: (app: Simulator['app'], simulator: Simulator) => void
}

/** A running simulator. */
export interface RunningSimulator {
  /** e.g. `http://127.0.0.1:41234` */
  url: string
  /** Stops listening and closes every connection. */
  close(): Promise<void>
  /** Sets the scenario of one user. */
  setScenario(userId: number, scenario: Scenario): void
  /** Every request answered, in order. */
  requests: SimulatorRequest[]
  /** The in-process simulator behind the server. */
  simulator: Simulator
}

/**
 * Serves the simulator over HTTP on loopback.
 * @example
 * const sim = await startSimulator({ scenario: 'happy' })
 * console.log(sim.url) // http://127.0.0.1:41234
 * await sim.close()
 */
export async function startSimulator(options: StartSimulatorOptions = {}): Promise<RunningSimulator> {
  const { port = 0, host = '127.0.0.1', mount, ...rest } = options
  const simulator = createSimulator(rest)
  mount?.(simulator.app, simulator)
  const server = createAdaptorServer({
    fetch: async (req, env) => {
      const res = await simulator.app.fetch(req, env)
      // A reset or a refusal (fault profile, flaky scenario): the socket goes without an answer.
      if (res.headers.get(RESET_HEADER)) {
        ;(env as { incoming: { socket: { destroy(): void } } }).incoming.socket.destroy()
      }
      return res
    },
  }) as Server
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const addr = server.address() as AddressInfo
  const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  const url = `http://${h}:${addr.port}`
  if (rest.baseUrl === undefined) simulator.setBaseUrl(url)
  return {
    url,
    simulator,
    requests: simulator.requests,
    setScenario: simulator.setScenario,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections?.()
      }),
  }
}
