import { it } from 'vitest'
import { createIdentificationService, createMemoryFlowStore, type FlowView } from '10npay-identification/server'
import { createPathProvider, modelPaths, runPath } from '10npay-identification/testing'
import { createApp } from './app.js'

// Every path that begins with POST /identifications: each answer of the provider, each redirect, each failure.
for (const path of modelPaths({ kind: 'simple', hostEvents: false }).filter((p) => p.steps[0]?.event.type === 'START')) {
  it(path.name, async () => {
    const provider = createPathProvider(path)
    const { api, clock, polling, userId, userType } = provider
    const service = createIdentificationService({ api, store: createMemoryFlowStore({ now: () => clock.now() }), clock, polling })
    const app = createApp(service, () => userId)
    const call = async (url: string, body?: object) =>
      app.request(url, body && { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    // What the frontend shows: the flow's view, kept up to date (as over GET /:id/events).
    let id = ''
    let view: { state: string } = { state: 'idle' }
    const listeners = new Set<(view: unknown) => void>()
    const show = (v: { state: string }) => {
      view = v
      for (const listener of listeners) listener(v)
    }
    await runPath(path, provider, {
      async send(event) {
        if (event.type === 'START') {
          show({ state: 'initiating' }) // the 201 comes once initiate answered: not awaited, time must pass
          void call('/identifications', { userId, userType }).then(async (res) => {
            const started = (await res.json()) as FlowView
            service.subscribe((id = started.id), show)
            show(started)
          })
        } else if (event.type === 'REDIRECT') {
          show({ state: '(page loading)' }) // the provider sends the browser to /success or /fail, then to the app
          await call(`/identifications/${id}/${event.outcome}`)
          show((await (await call(`/identifications/${id}`)).json()) as FlowView)
        } // CONTINUE: the service sends it itself as soon as the signing URL is known
      },
      state: () => view,
      subscribe: (listener) => (listeners.add(listener), () => listeners.delete(listener)),
    })
    await service.close()
  })
}
