import { it } from 'vitest'
import { createIdentificationService, createMemoryFlowStore } from '10npay-identification/server'
import { createPathProvider, createRouteDriver, modelPaths, runPath } from '10npay-identification/testing'
import { createApp } from './app.js'

// Every path that begins with POST /identifications: each answer of the provider, each redirect,
// each failure, Retry, Restart and Cancel — through the app's own routes.
for (const path of modelPaths({ kind: 'simple', from: 'start' })) {
  it(path.name, async () => {
    const provider = createPathProvider(path)
    const { api, clock, polling, userId } = provider
    const service = createIdentificationService({ api, store: createMemoryFlowStore({ now: () => clock.now() }), clock, polling })
    const app = createApp(service, () => userId) // the signed-in user is the path's
    await runPath(path, provider, createRouteDriver({ handler: (request) => app.fetch(request), service, provider }))
    await service.close()
  })
}
