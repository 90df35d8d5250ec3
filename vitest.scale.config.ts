import { defineConfig } from 'vitest/config'

// Scale tests: large numbers of flows, heap measured after a forced GC (hence a fork with --expose-gc).
export default defineConfig({
  test: {
    include: ['test/scale/**/*.scale.ts'],
    testTimeout: 600_000,
    pool: 'forks',
    execArgv: ['--expose-gc', '--max-old-space-size=4096'],
  },
})
