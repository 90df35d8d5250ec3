import { it } from 'vitest'
import { createBrowserIdentification } from '10npay-identification/browser'
import { createPathProvider, MemoryStorage, modelPaths, runPath } from '10npay-identification/testing'

for (const path of modelPaths({ kind: 'simple', hostEvents: false }).filter((p) => p.steps[0]?.event.type === 'START')) {
  it(path.name, async () => {
    const provider = createPathProvider(path) // an in-process simulator that answers as the path needs, on a simulated clock
    const { api, userId, userType, clock, polling } = provider
    const flow = createBrowserIdentification({ api, userId, userType, clock, polling, storage: new MemoryStorage(), lock: false, navigate: () => {} })
    await runPath(path, provider, {
      send: (event) => (event.type === 'START' ? flow.start() : event.type === 'REDIRECT' ? flow.resume(event) : flow.continue()),
      state: () => flow.getSnapshot(),
      subscribe: (listener) => flow.subscribe(listener),
    })
    flow.stop()
  })
}
