// A whole identification against the embedded simulator: `npx tsx examples/node-flow.ts`.
// Against the real provider, replace the simulator's URLs with the provider's and make
// onAction open the URL for the user and wait for your Success/Fail redirect handler.
import { createHttpApi } from '10npay-identification'
import { createFileSnapshotStore, createNodeTransport, createPasswordGrantTokenSource, runIdentification } from '10npay-identification/node'
import { startSimulator } from '10npay-identification/simulator'

const sim = await startSimulator({ timing: { captureMs: 1000, signMs: 1000 } })
const api = createHttpApi({
  baseUrl: sim.url, // e.g. https://api-test.10npay.com
  getAccessToken: createPasswordGrantTokenSource({
    tokenUrl: `${sim.url}/connect/token`, // e.g. https://auth-test.10npay.com/connect/token
    clientId: 'demo-client', clientSecret: 'demo-secret', username: 'demo', password: 'demo',
  }),
  transport: createNodeTransport(), // node:http with keep-alive: a third of fetch's CPU per request
})
const outcome = await runIdentification({
  api, userId: 42, userType: 0,
  store: createFileSnapshotStore('.identification-state'), // resumes after a crash…
  key: `${sim.url} user 42`, // …of a flow this simulator knows: every run (a new port) starts its own
  onAction: async ({ type, url }) => {
    console.log(`${type}: ${url}`) // a person would open this; here the simulated user clicks Complete
    const res = await fetch(`${url}/complete`, { method: 'POST', redirect: 'manual' })
    return res.status === 303 ? 'success' : 'fail'
  },
})
console.log(outcome) // { type: 'finalized', correlationId: '…', individualId: 1001 }
await sim.close()
