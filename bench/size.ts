/**
 * Benchmark 4: bundle sizes with esbuild, minified, then gzip -9.
 */
import { build } from 'esbuild'
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'

export interface SizeFigure {
  name: string
  minBytes: number
  gzipBytes: number
}

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))

async function measure(name: string, options: { entry?: string; contents?: string; external?: string[] }): Promise<SizeFigure> {
  const r = await build({
    ...(options.entry ? { entryPoints: [options.entry] } : { stdin: { contents: options.contents!, resolveDir: here('..'), loader: 'ts' } }),
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    external: options.external ?? [],
    logLevel: 'silent',
  })
  const code = r.outputFiles[0]!.contents
  return { name, minBytes: code.length, gzipBytes: gzipSync(code, { level: 9 }).length }
}

export interface SizeFigures {
  /** Minified bytes of each of the library's own files in the browser entry. */
  ownCodeByFile: Record<string, number>
  browserEntryWithoutKy: SizeFigure
  browserEntry: SizeFigure
  reactEntry: SizeFigure
  ownCode: SizeFigure
  dependencies: SizeFigure[]
  bareLoop: SizeFigure
}

export async function measureSizes(): Promise<SizeFigures> {
  const browser = here('../src/adapters/browser/index.ts')
  const meta = await build({
    entryPoints: [browser], bundle: true, minify: true, format: 'esm', platform: 'browser', write: false, metafile: true,
    external: ['xstate', 'zod', 'zod/*', 'ky'], logLevel: 'silent',
  })
  const inputs = Object.values(meta.metafile.outputs)[0]!.inputs
  const ownCodeByFile = Object.fromEntries(
    Object.entries(inputs)
      .filter(([, i]) => i.bytesInOutput > 0)
      .sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput)
      .map(([f, i]) => [f, i.bytesInOutput]),
  )
  return {
    ownCodeByFile,
    browserEntryWithoutKy: await measure('browser entry, dependencies included but ky', { entry: browser, external: ['ky'] }),
    browserEntry: await measure('browser entry, dependencies included', { entry: browser }),
    reactEntry: await measure('react entry, dependencies included (react external)', { entry: here('../src/adapters/react/index.ts'), external: ['react', 'react-dom'] }),
    ownCode: await measure("library's own code (xstate, zod, ky external)", { entry: browser, external: ['xstate', 'zod', 'zod/*', 'ky'] }),
    dependencies: [
      await measure('xstate alone (everything it exports)', { contents: "export * from 'xstate'" }),
      await measure('zod/mini alone (everything it exports)', { contents: "export * from 'zod/mini'" }),
      await measure('ky alone', { contents: "export { default } from 'ky'" }),
      await measure('xstate as the library uses it (createActor, setup, assign, fromCallback)', { contents: "export { createActor, setup, assign, fromCallback } from 'xstate'" }),
      await measure('zod/mini as the library uses it (its schemas)', { contents: "export * from './src/adapters/http/schemas.ts'; export * from './src/machine/input.ts'", external: [] }),
    ],
    bareLoop: await measure('a 40-line hand-written loop (bench/bareLoop.ts)', { entry: here('./bareLoop.ts') }),
  }
}
