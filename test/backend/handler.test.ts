import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'
import { describe, expect, it } from 'vitest'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { createIdentificationHandler } from '../../src/adapters/server/identificationHandler.js'
import { createIdentificationService } from '../../src/adapters/server/identificationService.js'
import { createMemoryFlowStore } from '../../src/adapters/server/memoryFlowStore.js'
import { createPasswordGrantTokenSource } from '../../src/adapters/node/tokenSource.js'
import { startSimulator } from '../../src/simulator/server.js'
import { flush, simSetup } from '../helpers.js'

const B = 'http://app.test/identifications'
const post = (path: string, body?: unknown) =>
  new Request(`${B}${path}`, { method: 'POST', ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } }) })
const get = (path: string) => new Request(`${B}${path}`)

function setup(authorize: (r: Request, id: string | null) => boolean = () => true) {
  const env = simSetup()
  const store = createMemoryFlowStore({ now: () => env.clock.now() })
  const service = createIdentificationService({ api: env.api, store, clock: env.clock })
  const errors: unknown[] = []
  const handler = createIdentificationHandler(service, {
    authorize,
    successRedirect: 'https://shop.test/kyc/{id}/done',
    failRedirect: (id) => `https://shop.test/kyc/${id}/failed`,
    onError: (e) => errors.push(e),
  })
  return { env, store, service, handler, errors }
}

describe('createIdentificationHandler with Request objects', () => {
  it('answers every route', async () => {
    const { env, handler, service } = setup()
    const created = await handler(post('', { userId: 21, userType: 0 }))
    expect(created.status).toBe(201)
    const view = await created.json()
    expect(view).toMatchObject({ state: 'identifying', userId: 21, url: expect.stringContaining('/capture/') })
    expect(Object.keys(view).sort()).toEqual(['failure', 'id', 'result', 'state', 'updatedAt', 'url', 'userId', 'userType', 'version'])

    const again = await (await handler(post('', { userId: 21, userType: 0 }))).json()
    expect(again.id).toBe(view.id)
    expect((await (await handler(get(`/${view.id}`))).json()).state).toBe('identifying')

    env.sim.act(21, 'identification', 'success')
    const back = await handler(get(`/${view.id}/success`))
    expect(back.status).toBe(303)
    expect(back.headers.get('location')).toBe(`https://shop.test/kyc/${view.id}/done`)
    expect((await service.get(view.id))?.state).toBe('pollingA')

    for (let i = 0; i < 60; i++) {
      await flush()
      env.clock.increment(100)
    }
    expect((await (await handler(get(`/${view.id}`))).json()).state).toBe('signing')
    const cancel = await handler(post(`/${view.id}/cancel`))
    expect((await cancel.json()).failure.reason).toBe('cancelled')
    const fail = await handler(get(`/${view.id}/fail`))
    expect(fail.headers.get('location')).toBe(`https://shop.test/kyc/${view.id}/failed`)
    const restart = await handler(post(`/${view.id}/restart`))
    expect(restart.status).toBe(200)
    expect(await restart.json()).toMatchObject({ state: 'identifying', url: expect.stringContaining('/capture/') }) // once initiate answered
    // Actions the state does not take: 409 with the view as it is.
    for (const action of ['retry', 'continue']) {
      const refused = await handler(post(`/${view.id}/${action}`))
      expect(refused.status).toBe(409)
      expect((await refused.json()).view).toMatchObject({ id: view.id, state: 'identifying' })
    }
    await service.close()
  })

  it('the redirect routes answer GET only: HEAD (a prefetch, a link checker) is 405 and changes nothing (issue 9, item 3)', async () => {
    const { env, handler, service } = setup()
    const view = await (await handler(post('', { userId: 22, userType: 0 }))).json()
    for (const action of ['success', 'fail']) {
      const head = await handler(new Request(`${B}/${view.id}/${action}`, { method: 'HEAD' }))
      expect(head.status).toBe(405)
      expect(head.headers.get('allow')).toBe('GET')
      expect((await service.get(view.id))?.state).toBe('identifying')
    }
    expect(env.sim.requests.filter((r) => r.endpoint === 'status')).toHaveLength(0)
    expect((await handler(new Request(`${B}/${view.id}`, { method: 'HEAD' }))).status).toBe(200)
    await service.close()
  })

  it('a Fail redirect asks the provider: when it recorded the step as done, the flow goes on and finalizes (issue 9, item 3)', async () => {
    const { env, handler, service } = setup()
    const view = await (await handler(post('', { userId: 23, userType: 0 }))).json()
    env.sim.act(23, 'identification', 'success') // the provider has the capture; the redirect says Fail
    const fail = await handler(get(`/${view.id}/fail`))
    expect(fail.status).toBe(303)
    expect((await service.get(view.id))?.state).toBe('pollingA')
    for (let i = 0; i < 60 && (await service.get(view.id))?.state !== 'signing'; i++) {
      await flush()
      env.clock.increment(100)
    }
    expect((await service.get(view.id))?.state).toBe('signing')
    expect(env.sim.requests.filter((r) => r.endpoint === 'status').length).toBeGreaterThan(0)
    await service.close()
  })

  it.each([
    ['bad JSON', post('', '{nope'), 400],
    ['a bad userId', post('', { userId: 0, userType: 0 }), 400],
    ['a bad userType', post('', { userId: 1, userType: 2 }), 400],
    ['a bad id', get('/not-a-uuid'), 400],
    ['an unknown flow', get('/00000000-0000-4000-8000-000000000000'), 404],
    ['an unknown flow action', post('/00000000-0000-4000-8000-000000000000/retry'), 404],
    ['a body that is not JSON', new Request(`${B}`, { method: 'POST', body: 'userId=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415],
    ['a body over 16 KiB', post('', { userId: 1, userType: 0, pad: 'x'.repeat(17 * 1024) }), 413],
    ['an action with a body that is not JSON', new Request(`${B}/00000000-0000-4000-8000-000000000000/retry`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } }), 415],
    ['an unknown action', post('/00000000-0000-4000-8000-000000000000/explode'), 404],
    ['a path below an action', get('/00000000-0000-4000-8000-000000000000/events/x'), 404],
    ['outside the base path', new Request('http://app.test/other'), 404],
    ['GET on the collection', get(''), 405],
    ['DELETE on a flow', new Request(`${B}/00000000-0000-4000-8000-000000000000`, { method: 'DELETE' }), 405],
    ['GET on an action', get('/00000000-0000-4000-8000-000000000000/retry'), 405],
    ['POST on success', post('/00000000-0000-4000-8000-000000000000/success'), 405],
  ])('answers %s with %i and a JSON problem body', async (_, request, status) => {
    const { handler, service } = setup()
    const res = await handler(request)
    expect(res.status).toBe(status)
    expect(res.headers.get('content-type')).toBe('application/problem+json')
    expect(await res.json()).toMatchObject({ status, title: expect.any(String) })
    if (status === 405) expect(res.headers.get('allow')).toMatch(/GET|POST/)
    await service.close()
  })

  it('denies by default, and whatever authorize denies, with 403', async () => {
    const env = simSetup()
    const service = createIdentificationService({ api: env.api, store: createMemoryFlowStore({ now: () => env.clock.now() }), clock: env.clock })
    const deny = createIdentificationHandler(service)
    expect((await deny(post('', { userId: 22, userType: 0 }))).status).toBe(403)
    const { id } = await service.start({ userId: 22, userType: 0 })
    for (const r of [get(`/${id}`), get(`/${id}/success`), post(`/${id}/cancel`), get(`/${id}/events`)]) {
      expect((await deny(r)).status).toBe(403)
    }
    expect((await service.get(id))?.state).toBe('identifying') // nothing happened
    const onlyStart = createIdentificationHandler(service, { authorize: (_r, flowId) => flowId === null })
    expect((await onlyStart(get(`/${id}`))).status).toBe(403)
    await service.close()
  })

  it('turns a failing service into a 500 without details', async () => {
    const { handler, service, errors } = setup()
    ;(service as { get: unknown }).get = async () => {
      throw new Error('disk on fire: token=abc')
    }
    const res = await handler(get('/00000000-0000-4000-8000-000000000000'))
    expect(res.status).toBe(500)
    expect(await res.text()).not.toContain('disk on fire')
    expect(errors).toHaveLength(1)
  })
})

describe('Server-Sent Events over real HTTP', () => {
  it('a client sees every state change in order, and the stream closes when the flow ends', async () => {
    const sim = await startSimulator({ timing: { captureMs: 200, staleMs: 50, signMs: 200 } })
    const api = createHttpApi({ baseUrl: sim.url, getAccessToken: createPasswordGrantTokenSource({ tokenUrl: `${sim.url}/connect/token`, ...sim.simulator.credentials }) })
    const service = createIdentificationService({ api, store: createMemoryFlowStore(), polling: { intervalMs: 50, maxIntervalMs: 100 } })
    const handler = createIdentificationHandler(service, { authorize: () => true, heartbeatMs: 100 })
    const server = createAdaptorServer({ fetch: handler })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/identifications`
    try {
      const view = await (await fetch(base, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 23, userType: 0 }) })).json()
      const res = await fetch(`${base}/${view.id}/events`)
      expect(res.headers.get('content-type')).toBe('text/event-stream')
      const reader = res.body!.getReader()
      let text = ''
      const read = (async () => {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) return
          text += new TextDecoder().decode(value)
        }
      })()
      // The user: the ID capture, the redirect back, the signing, the redirect back.
      await (await fetch(`${view.url}/complete`, { method: 'POST', redirect: 'manual' })).body?.cancel()
      await (await fetch(`${base}/${view.id}/success`, { redirect: 'manual' })).body?.cancel()
      for (let i = 0; i < 100 && (await service.get(view.id))?.state !== 'signing'; i++) await new Promise((r) => setTimeout(r, 20))
      const signing = (await service.get(view.id))!
      await (await fetch(`${signing.url}/complete`, { method: 'POST', redirect: 'manual' })).body?.cancel()
      await (await fetch(`${base}/${view.id}/success`, { redirect: 'manual' })).body?.cancel()
      await read // closed by the server at finalized
      const states = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!).state)
      expect(states).toEqual(['identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB', 'finalized'])
      expect(text).toContain(': heartbeat')
    } finally {
      await service.close()
      await new Promise((r) => server.close(r))
      await sim.close()
    }
  }, 20_000)
})
