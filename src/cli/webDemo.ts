import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { serveStatic } from '@hono/node-server/serve-static'
import { SCENARIOS, type Scenario, type SimulatorTiming } from '../simulator/scenarios.js'
import { startSimulator, type RunningSimulator } from '../simulator/server.js'

/** The built demo app, in a checkout of this repository. */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../examples/browser/dist', import.meta.url))

/** Options of {@link startWebDemo}. */
export interface WebDemoOptions {
  /** The built demo app (`vite build examples/browser`). @default examples/browser/dist */
  root?: string
  /** @default 0 (a free port) */
  port?: number
  /** The simulated provider's timings. */
  timing?: SimulatorTiming
  /** The default scenario. @default 'happy' */
  scenario?: Scenario
}

/**
 * Serves the browser demo at `/app/` on the simulator's own origin (no CORS, no proxy): the
 * simulator's Success/Fail redirects point at the demo page, and `POST /_demo/scenario` sets a
 * user's scenario from the page.
 */
export async function startWebDemo(options: WebDemoOptions = {}): Promise<RunningSimulator & { appUrl: string }> {
  const root = resolve(options.root ?? DEFAULT_WEB_ROOT)
  if (!existsSync(resolve(root, 'index.html'))) {
    throw new Error(`The demo app is not built in ${root}: run \`npm run demo:web\` (or \`npx vite build examples/browser\`) in a checkout`)
  }
  const sim = await startSimulator({
    scenario: options.scenario ?? 'happy',
    ...(options.timing && { timing: options.timing }),
    redirects: { success: '{base}/app/?redirect=success&step={step}', fail: '{base}/app/?redirect=fail&step={step}' },
    mount: (app, simulator) => {
      app.post('/_demo/scenario', async (c) => {
        const body = (await c.req.json().catch(() => ({}))) as { userId?: unknown; scenario?: unknown }
        if (typeof body.userId !== 'number' || !SCENARIOS.includes(body.scenario as Scenario)) {
          return c.json({ error: 'userId (number) and scenario (one of ' + SCENARIOS.join(', ') + ') are required' }, 400)
        }
        simulator.setScenario(body.userId, body.scenario as Scenario)
        return c.json({ ok: true })
      })
      app.get('/', (c) => c.redirect('/app/'))
      app.get('/app', (c) => c.redirect('/app/'))
      app.use('/app/*', serveStatic({ root, rewriteRequestPath: (p) => p.replace(/^\/app/, '') || '/' }))
    },
  })
  return Object.assign(sim, { appUrl: `${sim.url}/app/` })
}
