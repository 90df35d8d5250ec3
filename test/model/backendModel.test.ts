/**
 * Model-based tests of the backend through its HTTP routes, with the testing entry's route
 * driver: every simple path from START (host events included) through the handler and the
 * service on the in-process simulator.
 */
import { describe, it } from 'vitest'
import { createIdentificationHandler } from '../../src/adapters/server/identificationHandler.js'
import { createIdentificationService } from '../../src/adapters/server/identificationService.js'
import { createMemoryFlowStore } from '../../src/adapters/server/memoryFlowStore.js'
import { createPathProvider, createRouteDriver, modelPaths, runPath } from '../../src/testing/index.js'

describe('model: the backend routes take every path from START', () => {
  for (const path of modelPaths({ kind: 'simple', from: 'start' })) {
    it(path.name, async () => {
      const provider = createPathProvider(path)
      const service = createIdentificationService({
        api: provider.api, clock: provider.clock, polling: provider.polling,
        store: createMemoryFlowStore({ now: () => provider.clock.now() }),
      })
      const handler = createIdentificationHandler(service, { authorize: () => true })
      try {
        await runPath(path, provider, createRouteDriver({ handler, service, provider }))
      } finally {
        await service.close()
      }
    })
  }
})
