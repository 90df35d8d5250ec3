import { createMemoryFlowStore } from '../../src/adapters/server/memoryFlowStore.js'
import { describeFlowStore } from './flowStoreConformance.js'

describeFlowStore('memory', async () => {
  let t = 1_700_000_000_000
  return {
    store: createMemoryFlowStore({ now: () => t }),
    advance: async (ms) => {
      t += ms
    },
    close: async () => {},
  }
})
