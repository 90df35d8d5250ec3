import { defineConfig } from 'vitest/config'

// The chaos suite: hundreds of flows over real loopback HTTP with injected faults, a backend
// killed mid-run, and 10 000-run property tests. Writes its figures to docs/reliability.md.
export default defineConfig({
  test: {
    include: ['test/chaos/**/*.chaos.ts'],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    pool: 'forks',
  },
})
