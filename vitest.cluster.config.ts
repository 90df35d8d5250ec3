import { defineConfig } from 'vitest/config'

// The suites that need PostgreSQL and Redis on loopback (`npm run test:cluster`, run by
// .ci/run): the PostgreSQL store, the BullMQ coordinator, replicas as separate processes.
// `npm test` needs no server.
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.cluster.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    pool: 'forks',
  },
})
