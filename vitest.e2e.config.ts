import { defineConfig } from 'vitest/config'

// End-to-end tests: headless Chromium (Debian's /usr/bin/chromium) through playwright-core.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
})
