// The backend example: the identification service behind the web-standard handler, mounted in
// a Hono app, with a small page that starts a flow, follows its events and navigates when told.
// The provider credentials stay here; the browser only ever sees flow views.
//
//   10npay-id serve                      # against the embedded simulator, SQLite in ./identifications.db
//   node examples/backend/server.mjs     # the same (after npm run build), or against a real provider:
//   TENNPAY_API=https://api-test.10npay.com TENNPAY_TOKEN_URL=https://auth-test.10npay.com/connect/token \
//   TENNPAY_CLIENT_ID=… TENNPAY_CLIENT_SECRET=… TENNPAY_USERNAME=… TENNPAY_PASSWORD=… node examples/backend/server.mjs
//
// As one replica of many (every replica with the same database, Redis, provider and session secret):
//   10npay-id serve --postgres postgres://app@db/app --redis redis://127.0.0.1:6379 \
//     --simulator-url http://127.0.0.1:4010 --session-secret "$SESSION_SECRET"
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Hono } from 'hono'
import { setCookie } from 'hono/cookie'
import { serve } from '@hono/node-server'
import { createHttpApi, describeFailure, describeState } from '10npay-identification'
import {
  createIdentificationHandler,
  createIdentificationService,
  createNodeTransport,
  createPasswordGrantTokenSource,
  createSqliteFlowStore,
} from '10npay-identification/node'
import { startSimulator } from '10npay-identification/simulator'

const page = readFileSync(new URL('./page.html', import.meta.url), 'utf8')

/**
 * Starts the example.
 * @param {{
 *   port?: number,
 *   db?: string,
 *   postgres?: string,
 *   redis?: string,
 *   prefix?: string,
 *   simulatorUrl?: string,
 *   sessionSecret?: string,
 *   provider?: { apiUrl: string, tokenUrl: string, clientId: string, clientSecret: string, username: string, password: string },
 * }} [options] `postgres` + `redis`: one replica of a cluster (PostgreSQL flows, BullMQ work);
 *   else one process on the SQLite file `db`. `simulatorUrl`: a simulator started elsewhere (shared
 *   by the replicas) instead of an embedded one. `sessionSecret`: the replicas' shared key for the
 *   demo session cookie.
 */
export async function startBackendExample(options = {}) {
  if (Boolean(options.postgres) !== Boolean(options.redis)) throw new TypeError('startBackendExample: postgres and redis go together')
  // Without a provider: a simulator (embedded, or shared by replicas), whose pages redirect back here.
  let appUrl = ''
  const sim = options.provider || options.simulatorUrl
    ? undefined
    : await startSimulator({
        timing: { captureMs: 3000, staleMs: 1000, signMs: 3000 },
      })
  const simUrl = options.simulatorUrl ?? sim?.url
  const provider = options.provider ?? {
    apiUrl: simUrl,
    tokenUrl: `${simUrl}/connect/token`,
    clientId: 'demo-client',
    clientSecret: 'demo-secret',
    username: 'demo',
    password: 'demo',
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
    // node:http with keep-alive instead of fetch: about a third of the CPU per status poll.
    transport: createNodeTransport(),
  })
  // Whatever fails from here on (no better-sqlite3, a database that cannot be opened, PostgreSQL
  // or Redis down) closes what was started, so that nothing keeps the process alive.
  let store
  let coordinator
  try {
    if (options.postgres) {
      const { createPostgresFlowStore } = await import('10npay-identification/postgres')
      const { createBullMQCoordinator } = await import('10npay-identification/bullmq')
      store = createPostgresFlowStore({ connectionString: options.postgres })
      coordinator = createBullMQCoordinator({ connection: options.redis, prefix: options.prefix ?? '10npay-example' })
    } else {
      store = createSqliteFlowStore(options.db ?? 'identifications.db')
    }
  } catch (err) {
    await sim?.close()
    throw err
  }
  const service = createIdentificationService({ api, store, ...(coordinator && { coordinator }) })
  try {
    await service.ready
  } catch (err) {
    await service.close().catch(() => {})
    await store.close?.()
    await sim?.close()
    throw err
  }

  // A demo "login": the browser says which user it is; a signed session cookie remembers it, so
  // that every replica knows the user. A real app takes the user from its own session instead.
  const secret = options.sessionSecret ?? randomBytes(32).toString('hex')
  const sign = (userId) => createHmac('sha256', secret).update(String(userId)).digest('base64url')
  const sessionOf = (request) => {
    const sid = /(?:^|;\s*)sid=([^;]+)/.exec(request.headers.get('cookie') ?? '')?.[1]
    const [userId, mac] = (sid ?? '').split('.')
    if (!userId || !mac || !/^[1-9]\d{0,9}$/.test(userId)) return undefined
    const want = Buffer.from(sign(userId))
    const got = Buffer.from(mac)
    return got.length === want.length && timingSafeEqual(got, want) ? { userId: Number(userId), userType: 0 } : undefined
  }

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
    setCookie(c, 'sid', `${userId}.${sign(userId)}`, { httpOnly: true, sameSite: 'Lax', path: '/' })
    return c.json({ userId })
  })
  // Texts for people, in the language the page asks for (describeState / describeFailure).
  app.get('/describe', (c) => {
    const locale = c.req.query('lang') ?? c.req.header('accept-language')?.split(',')[0] ?? 'en'
    const state = c.req.query('state') ?? 'idle'
    let failure
    try {
      const f = JSON.parse(c.req.query('failure') ?? 'null')
      if (f && typeof f.reason === 'string') failure = describeFailure({ reason: f.reason, phase: f.phase, retryable: Boolean(f.retryable) }, { locale })
    } catch {
      /* no failure */
    }
    return c.json({ state: describeState(state, { locale }), failure: failure ?? null })
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
      await store.close?.()
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
  const ex = await startBackendExample({
    port: Number(env.PORT ?? 0),
    provider,
    ...(env.DATABASE_URL && env.REDIS_URL && { postgres: env.DATABASE_URL, redis: env.REDIS_URL }),
    ...(env.SESSION_SECRET && { sessionSecret: env.SESSION_SECRET }),
  })
  console.log(`Backend example at ${ex.url}${ex.simulatorUrl ? ` (simulator at ${ex.simulatorUrl})` : ''}`)
  process.once('SIGINT', () => void ex.close().then(() => process.exit(0)))
}
