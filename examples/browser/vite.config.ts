import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

const src = (p: string) => fileURLToPath(new URL(`../../src/${p}`, import.meta.url))

// The demo imports the library by its package names; here they resolve to the sources.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/app/',
  resolve: {
    alias: [
      { find: /^10npay-identification\/browser$/, replacement: src('adapters/browser/index.ts') },
      { find: /^10npay-identification\/react$/, replacement: src('adapters/react/index.ts') },
      { find: /^10npay-identification$/, replacement: src('index.ts') },
    ],
  },
  esbuild: { jsx: 'automatic' },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
  logLevel: 'warn',
})
