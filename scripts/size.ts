/**
 * `npm run size`: the browser bundle, minified then gzip -9, with esbuild. Prints a table and,
 * with `--json`, the figures as JSON.
 */
import { build } from 'esbuild'
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'

const src = (p: string) => fileURLToPath(new URL(`../src/${p}`, import.meta.url))

export interface SizeFigure {
  name: string
  minBytes: number
  gzipBytes: number
}

async function measure(name: string, entry: string, external: string[] = []): Promise<SizeFigure> {
  const r = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    external,
    logLevel: 'silent',
  })
  const code = r.outputFiles[0]!.contents
  return { name, minBytes: code.length, gzipBytes: gzipSync(code, { level: 9 }).length }
}

export async function measureSizes(): Promise<SizeFigure[]> {
  return [
    await measure('browser entry, dependencies included', src('adapters/browser/index.ts')),
    await measure('react entry, dependencies included (react external)', src('adapters/react/index.ts'), ['react', 'react-dom']),
    await measure("library's own code (xstate, zod, ky external)", src('adapters/browser/index.ts'), ['xstate', 'zod', 'zod/*', 'ky']),
  ]
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const figures = await measureSizes()
  if (process.argv.includes('--json')) console.log(JSON.stringify(figures, null, 2))
  else {
    const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`
    console.log('bundle'.padEnd(58), 'minified'.padStart(10), 'gzip -9'.padStart(10))
    for (const f of figures) console.log(f.name.padEnd(58), kb(f.minBytes).padStart(10), kb(f.gzipBytes).padStart(10))
  }
}
