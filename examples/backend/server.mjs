// The backend example: the identification service behind the web-standard handler, mounted in
// a Hono app, with a small page that starts a flow, follows its events and navigates when told.
// The provider credentials stay here; the browser only ever sees flow views.
//
//   10npay-id serve                      # against the embedded simulator, SQLite in ./identifications.db
//   node examples/backend/server.mjs     # the same (after npm run build), or against a real provider:
//   TENNPAY_API=https://api-test.10npay.com TENNPAY_TOKEN_URL=https://auth-test.10npay.com/connect/token \
//   TENNPAY_CLIENT_ID=… TENNPAY_CLIENT_SECRET=… TENNPAY_USERNAME=… TENNPAY_PASSWORD=… node examples/backend/server.mjs
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Hono } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'
import { serve } from '@hono/node-server'
import { createHttpApi } from '10npay-identification'
import {
  createIdentificationHandler,
  createIdentificationService,
  createPasswordGrantTokenSource,
  createSqliteSnapshotStore,
} from '10npay-identification/node'
import { startSimulator } from '10npay-identification/simulator'

const page = readFileSync(new URL('./page.html', import.meta.url), 'utf8')

/**
 * Starts the example.
 * @param {{ port?: number, db?: string, provider?: { apiUrl: string, tokenUrl: string, clientId: string, clientSecret: string, username: string, password: string } }} [options]
 */
export async function startBackendExample(options = {}) {
  // Without a provider: the embedded simulator, whose pages redirect back to this server.
  let appUrl = ''
  const sim = options.provider
    ? undefined
    : await startSimulator({
        timing: { captureMs: 3000, staleMs: 1000, signMs: 3000 },
      })
  const provider = options.provider ?? {
    apiUrl: sim.url,
    tokenUrl: `${sim.url}/connect/token`,
    ...sim.simulator.credentials,
  }
  const api = createHttpApi({
    baseUrl: provider.apiUrl,
    getAccessToken: createPasswordGrantTokenSource({
      tokenUrl: provider.tokenUrl,
      clientId: provider.clientId,
      clientSecret: provider.clientSecret,
      username: provider.username,
      password: provider.password,
    }),
  })
  const store = createSqliteSnapshotStore(options.db ?? 'identifications.db')
  const service = createIdentificationService({ api, store })

  // A demo "login": the browser says which user it is; the session cookie remembers it.
  // A real app takes the user from its own session instead.
  const sessions = new Map() // sid -> { userId, userType }
  const sessionOf = (request) => sessions.get(/(?:^|;\s*)sid=([^;]+)/.exec(request.headers.get('cookie') ?? '')?.[1])

  const handler = createIdentificationHandler(service, {
    basePath: '/identifications',
    successRedirect: '/?flow={id}',
    failRedirect: '/?flow={id}',
    authorize: async (request, flowId, body) => {
      const user = sessionOf(request)
      if (!user) return false
      if (flowId === null) return body.userId === user.userId && body.userType === user.userType
      const view = await service.get(flowId)
      return view !== undefined && view.userId === user.userId && view.userType === user.userType
    },
  })

  const app = new Hono()
  app.get('/', (c) => c.html(page))
  app.post('/login', async (c) => {
    const { userId } = await c.req.json()
    if (!Number.isInteger(userId) || userId < 1) return c.json({ error: 'userId must be a positive integer' }, 400)
    const sid = getCookie(c, 'sid') ?? randomUUID()
    sessions.set(sid, { userId, userType: 0 })
    setCookie(c, 'sid', sid, { httpOnly: true, sameSite: 'Lax', path: '/' })
    return c.json({ userId })
  })
  // The Success/Fail URLs configured in the provider's portal are the same for every flow:
  // the user's session says which flow came back.
  app.get('/kyc/:outcome{success|fail}', async (c) => {
    const user = sessionOf(c.req.raw)
    const flow = user && (await service.findByUser(user.userType, user.userId))
    if (!flow) return c.redirect('/?lost=1', 303)
    const query = new URL(c.req.url).search
    return c.redirect(`/identifications/${flow.id}/${c.req.param('outcome')}${query}`, 303)
  })
  app.all('/identifications', (c) => handler(c.req.raw))
  app.all('/identifications/*', (c) => handler(c.req.raw))

  const server = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: options.port ?? 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  appUrl = `http://127.0.0.1:${server.address().port}`
  if (sim) {
    // As configured in the provider's portal: one Success and one Fail URL for every flow.
    sim.simulator.setRedirects({ success: `${appUrl}/kyc/success`, fail: `${appUrl}/kyc/fail` })
  }
  return {
    url: appUrl,
    simulatorUrl: sim?.url,
    service,
    async close() {
      await service.close()
      await new Promise((r) => server.close(r))
      store.close()
      await sim?.close()
    },
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const env = process.env
  const provider = env.TENNPAY_API
    ? {
        apiUrl: env.TENNPAY_API,
        tokenUrl: env.TENNPAY_TOKEN_URL,
        clientId: env.TENNPAY_CLIENT_ID,
        clientSecret: env.TENNPAY_CLIENT_SECRET,
        username: env.TENNPAY_USERNAME,
        password: env.TENNPAY_PASSWORD,
      }
    : undefined
  const ex = await startBackendExample({ port: Number(env.PORT ?? 0), provider })
  console.log(`Backend example at ${ex.url}${ex.simulatorUrl ? ` (simulator at ${ex.simulatorUrl})` : ''}`)
  process.once('SIGINT', () => void ex.close().then(() => process.exit(0)))
}
