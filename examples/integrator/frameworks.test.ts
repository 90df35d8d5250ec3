// The wiring of docs/backend.md, served on a port as an app serves it: a start POSTed as JSON
// (parsed first by Express's express.json() and by Fastify) answers 201 with the flow's view.
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { serve } from '@hono/node-server'
import { afterAll, afterEach, expect, it } from 'vitest'
import { createHttpApi } from '10npay-identification'
import { createIdentificationHandler, createIdentificationService, createMemoryFlowStore } from '10npay-identification/server'
import { createSimulator } from '10npay-identification/simulator'
import { createApp } from './app.js'
import { createExpressApp } from './express.js'
import { createFastifyApp } from './fastify.js'

const simulator = createSimulator({ scenario: 'happy' })
const api = createHttpApi({ baseUrl: 'http://127.0.0.1', fetch: simulator.fetch, getAccessToken: () => simulator.issueToken() })
const service = createIdentificationService({ api, store: createMemoryFlowStore() })
const handler = createIdentificationHandler(service, { authorize: () => true })
const listening = async (server: Server) => {
  if (!server.listening) await new Promise((resolve) => server.once('listening', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
const closers: (() => unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0)) await close()
})
afterAll(() => service.close())

const frameworks: Record<string, () => Promise<string>> = {
  async hono() {
    const server = serve({ fetch: createApp(service, () => 1).fetch, port: 0, hostname: '127.0.0.1' }) as Server
    closers.push(() => new Promise((resolve) => server.close(resolve)))
    return listening(server)
  },
  async express() {
    const server = createExpressApp(handler).listen(0, '127.0.0.1')
    closers.push(() => new Promise((resolve) => server.close(resolve)))
    return listening(server)
  },
  async fastify() {
    const app = createFastifyApp(handler)
    closers.push(() => app.close())
    return app.listen({ port: 0, host: '127.0.0.1' })
  },
}

for (const [name, start] of Object.entries(frameworks)) {
  it(`${name}: POST /identifications with a JSON body answers 201, then GET /identifications/:id the view`, async () => {
    const base = await start()
    const userId = Object.keys(frameworks).indexOf(name) + 1 // one user per framework (the Hono app's session says user 1)
    const body = JSON.stringify({ userId, userType: 0 })
    const res = await fetch(`${base}/identifications`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    expect(res.status, await res.clone().text()).toBe(201)
    const view = (await res.json()) as { id: string; state: string }
    expect(view.state).toBe('identifying')
    const again = await fetch(`${base}/identifications/${view.id}`)
    expect(again.status).toBe(200)
    expect(((await again.json()) as { id: string }).id).toBe(view.id)
  })
}
