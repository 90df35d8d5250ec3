/**
 * What a new user does, as a CI step (`npm run test:integrator`, in `.ci/run` after the build):
 *
 * 1. `npm run build`, `npm pack`; the README and docs/*.md are read from the tarball, as an
 *    installed package has them. Every relative link in them must resolve inside the tarball
 *    (anchors included); every `<!-- file: … -->` block must equal its file in the repository.
 * 2. A fresh app in the system's temporary directory (removed at the end): `npm install` of the
 *    tarball alone must build no native addon and pull in no optional peer.
 * 3. With `tsx` added, the `<!-- runnable -->` blocks run (the README's Node example against the
 *    simulator), each twice in a row, within a time bound: the second run must do what the first
 *    did (a re-run resuming a stale stored flow prints less).
 * 4. The peers the examples need (pinned to versions that run on Node 20) are installed; every
 *    ```ts / ```tsx block that is not marked `<!-- fragment: why -->` compiles under `--strict`
 *    as a module of its own, with examples/integrator/ (the files docs/testing.md and
 *    docs/backend.md show).
 * 5. The integrator tests of examples/integrator/ run there with vitest: the React component's
 *    and the backend route's model-based tests, and the Hono, Express and Fastify wirings.
 *
 * Options: `--no-build` (dist/ is fresh), `--keep` (leave the temporary app and print its path).
 */
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { anchors, docBlocks, relativeLinks, type DocBlock } from './docBlocks.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const args = new Set(process.argv.slice(2))
const started = performance.now()

/**
 * What the app installs besides the tarball, and for which example. Versions that run on Node 20
 * (vitest 5 and jsdom 27+ need Node 22: happy-dom instead of jsdom).
 */
const RUN_PEERS = ['tsx@4']
const PEERS: Record<string, string[]> = {
  'type-checking the blocks': ['typescript@5.9', '@types/node@20'],
  'model-based tests (docs/testing.md, README)': ['@xstate/graph@3', 'vitest@4'],
  'the React component and its test': ['react@19', 'react-dom@19', '@types/react@19', '@types/react-dom@19', 'happy-dom@21', '@testing-library/react@16', '@testing-library/dom@10'],
  'the backend route, Hono (docs/backend.md)': ['hono@4', '@hono/node-server@2'],
  'Express (docs/backend.md)': ['express@5', '@types/express@5'],
  'Fastify (docs/backend.md)': ['fastify@5'],
  'the inspector (docs/stately.md)': ['@statelyai/inspect@0.7'],
  'OpenTelemetry to the console and OTLP (docs/operations.md)': [
    '@opentelemetry/api@1',
    '@opentelemetry/sdk-trace-base@2',
    '@opentelemetry/sdk-metrics@2',
    '@opentelemetry/exporter-trace-otlp-http@0.222',
    '@opentelemetry/exporter-metrics-otlp-http@0.222',
  ],
}
const RUN_TIMEOUT_MS = 60_000

const problems: string[] = []
const timings: [string, number][] = []

interface Ran {
  code: number | null
  stdout: string
  stderr: string
  timedOut: boolean
}

/** Runs a command (in its own process group, killed whole at the time bound). */
function run(cmd: string, argv: string[], options: { cwd: string; timeoutMs?: number; echo?: boolean }): Promise<Ran> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, argv, { cwd: options.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => {
      stdout += d
      if (options.echo) process.stdout.write(d)
    })
    child.stderr.on('data', (d: Buffer) => {
      stderr += d
      if (options.echo) process.stderr.write(d)
    })
    let timedOut = false
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true
          try {
            process.kill(-child.pid!, 'SIGKILL')
          } catch {
            /* already gone */
          }
        }, options.timeoutMs)
      : undefined
    child.on('error', fail)
    child.on('close', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr, timedOut })
    })
  })
}

async function must(what: string, cmd: string, argv: string[], cwd: string, options: { timeoutMs?: number; echo?: boolean } = {}): Promise<Ran> {
  const r = await run(cmd, argv, { cwd, ...options })
  if (r.code !== 0) {
    if (!options.echo) process.stderr.write(r.stdout + r.stderr)
    throw new Error(`${what}: \`${cmd} ${argv.join(' ')}\` ${r.timedOut ? `did not end within ${options.timeoutMs} ms` : `exited ${r.code}`}`)
  }
  return r
}

async function phase<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t = performance.now()
  console.log(`\n== integrator: ${name}`)
  try {
    return await fn()
  } finally {
    timings.push([name, performance.now() - t])
  }
}

const blockFile = (b: DocBlock) => `${b.doc.replace(/[/.]/g, '_')}_L${b.line}.${b.lang}`

/** Every file under `dir`, relative to it. */
function walk(dir: string, out: string[] = [], base = dir): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) walk(p, out, base)
    else out.push(relative(base, p))
  }
  return out
}

/** How many packages an app has installed (`npm ls --all --parseable`: the paths of installed ones only). */
async function installedCount(app: string): Promise<number> {
  const r = await run('npm', ['ls', '--all', '--parseable'], { cwd: app })
  return new Set(r.stdout.split('\n').filter((l) => l.includes('node_modules'))).size
}

/** What a run printed, with URLs, ids and numbers made alike. */
const normalise = (out: string) =>
  out
    .replace(/https?:\/\/\S+/g, '<url>')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>')
    .replace(/\d+/g, '#')
    .trim()

async function main() {
  const work = await mkdtemp(join(tmpdir(), '10npay-integrator-'))
  const cleanup = () => (args.has('--keep') ? console.log(`(kept ${work})`) : rm(work, { recursive: true, force: true }))
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void Promise.resolve(cleanup()).finally(() => process.exit(130))
    })
  }
  try {
    await steps(work)
  } finally {
    await cleanup()
  }
}

async function steps(work: string) {
  if (!args.has('--no-build')) await phase('npm run build', () => must('build', 'npm', ['run', 'build', '--silent'], ROOT))

  // 1. Pack, and read the docs as the tarball has them.
  const tarball = await phase('npm pack', async () => {
    const r = await must('pack', 'npm', ['pack', '--json', '--pack-destination', work], ROOT)
    const file = join(work, (JSON.parse(r.stdout) as { filename: string }[])[0]!.filename)
    await mkdir(join(work, 'packed'))
    await must('unpack', 'tar', ['xzf', file, '-C', join(work, 'packed')], work)
    console.log(file)
    return file
  })
  const pkg = join(work, 'packed', 'package')
  const docs = ['README.md', ...(await readdir(join(pkg, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
  const blocks: DocBlock[] = []
  await phase('links and blocks of the packed README and docs', async () => {
    for (const doc of docs) {
      const text = await readFile(join(pkg, doc), 'utf8')
      for (const { target, line } of relativeLinks(text)) {
        const [path, anchor] = target.split('#') as [string, string | undefined]
        const file = path === '' ? join(pkg, doc) : resolve(dirname(join(pkg, doc)), decodeURIComponent(path))
        if (!file.startsWith(pkg + sep) || !existsSync(file)) {
          problems.push(`${doc}:${line}: the link ${target} points at ${relative(pkg, file)}, which is not in the package`)
        } else if (anchor && file.endsWith('.md') && !anchors(await readFile(file, 'utf8')).has(anchor)) {
          problems.push(`${doc}:${line}: the link ${target}: ${relative(pkg, file)} has no heading #${anchor}`)
        }
      }
      blocks.push(...docBlocks(doc, text))
    }
    for (const b of blocks.filter((b) => b.kind === 'file')) {
      const file = join(ROOT, b.file!)
      if (!existsSync(file)) problems.push(`${b.doc}:${b.line}: the block names ${b.file}, which does not exist`)
      else if ((await readFile(file, 'utf8')) !== b.code) problems.push(`${b.doc}:${b.line}: the block differs from ${b.file} (copy the file into the doc)`)
    }
    const count = (k: DocBlock['kind']) => blocks.filter((b) => b.kind === k).length
    console.log(`${docs.length} files; ${blocks.length} TypeScript blocks: ${count('module')} modules, ${count('runnable')} runnable, ${count('file')} copies of examples/integrator, ${count('fragment')} fragments:`)
    for (const b of blocks.filter((b) => b.kind === 'fragment')) console.log(`  ${b.doc}:${b.line} — ${b.reason}`)
  })

  // 2. A fresh app with the tarball alone.
  const app = join(work, 'app')
  await mkdir(app)
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'integrator-app', private: true, type: 'module' }, null, 2))
  const npmInstall = ['install', '--no-audit', '--no-fund', '--foreground-scripts']
  await phase('npm install <tarball> into an empty app', async () => {
    const r = await must('install the tarball', 'npm', [...npmInstall, tarball], app, { timeoutMs: 300_000 })
    const log = r.stdout + r.stderr
    const nm = join(app, 'node_modules')
    const native = walk(nm).filter((f) => f.endsWith('.node') || f.endsWith('binding.gyp'))
    if (native.length > 0) problems.push(`npm install of the tarball brought native addons: ${native.join(', ')}`)
    if (/node-gyp|prebuild-install|node-pre-gyp|gyp info/i.test(log)) problems.push(`npm install of the tarball ran a native build:\n${log}`)
    const count = await installedCount(app)
    // The optional peers (package.json's peerDependenciesMeta): none may come with the tarball.
    const meta = (JSON.parse(await readFile(join(pkg, 'package.json'), 'utf8')) as { peerDependenciesMeta?: Record<string, { optional?: boolean }> }).peerDependenciesMeta ?? {}
    const optional = Object.keys(meta).filter((p) => meta[p]!.optional)
    const peers = optional.filter((p) => existsSync(join(nm, p, 'package.json')))
    if (peers.length > 0) problems.push(`npm install of the tarball installed optional peers: ${peers.join(', ')}`)
    console.log(`${count} packages; native addons: ${native.length || 'none'}; optional peers (${optional.join(', ')}): ${peers.length ? peers.join(', ') : 'none'}`)
    const version = (await must('the bin', 'npx', ['--no-install', '10npay-id', '--version'], app)).stdout.trim()
    const expected = (JSON.parse(await readFile(join(pkg, 'package.json'), 'utf8')) as { version: string }).version
    if (!version.includes(expected)) problems.push(`npx 10npay-id --version printed "${version}", not ${expected}`)
    // An installed package has no browser demo app: demo's --web is not offered.
    const demoHelp = (await must('demo --help', 'npx', ['--no-install', '10npay-id', 'demo', '--help'], app)).stdout
    if (/--web/.test(demoHelp)) problems.push('10npay-id demo --help offers --web in an installed package (it needs a checkout)')
    // Each entry that needs an optional peer that is not installed says which and how to install it.
    const probe = [
      `const tries = [`,
      `  ['10npay-identification/otel', (m) => m.createOpenTelemetry(), '@opentelemetry/api'],`,
      `  ['10npay-identification/testing', (m) => m.modelPaths(), '@xstate/graph'],`,
      `  ['10npay-identification/node', (m) => m.createSqliteFlowStore(':memory:'), 'better-sqlite3'],`,
      `  ['10npay-identification/postgres', (m) => m.createPostgresFlowStore({ connectionString: 'postgres://127.0.0.1:1/x' }).get('x'), 'pg'],`,
      `  ['10npay-identification/bullmq', (m) => m.createBullMQCoordinator({ connection: 'redis://127.0.0.1:1' }).ping(), 'bullmq'],`,
      `]`,
      `for (const [entry, call, peer] of tries) {`,
      `  let message = '(no error)'`,
      `  try { await call(await import(entry)) } catch (err) { message = String(err?.message ?? err) }`,
      `  console.log(JSON.stringify({ entry, peer, ok: message.includes(peer) && /npm install/.test(message), message }))`,
      `}`,
    ].join('\n')
    await writeFile(join(app, 'missing-peers.mjs'), probe)
    const peersOut = (await must('entries without their peers', 'node', ['missing-peers.mjs'], app, { timeoutMs: 60_000 })).stdout
    for (const line of peersOut.trim().split('\n')) {
      const r = JSON.parse(line) as { entry: string; peer: string; ok: boolean; message: string }
      console.log(`${r.entry} without ${r.peer}: ${r.ok ? 'names it and the install command' : `NOT: ${r.message}`}`)
      if (!r.ok) problems.push(`${r.entry} without ${r.peer} fails with "${r.message}", not an error that names the package and the install command`)
    }
  })

  // Every block the type check sees, as a module of its own; examples/integrator beside them.
  await mkdir(join(app, 'blocks'))
  for (const b of blocks.filter((b) => b.kind === 'module' || b.kind === 'runnable')) await writeFile(join(app, 'blocks', blockFile(b)), b.code)
  await cp(join(ROOT, 'examples', 'integrator'), join(app, 'integrator'), { recursive: true })

  // 3. The runnable blocks, with nothing but the package (and tsx to run TypeScript).
  await phase('run the runnable blocks (twice each)', async () => {
    await must('install tsx', 'npm', [...npmInstall, '--save-dev', ...RUN_PEERS], app, { timeoutMs: 300_000 })
    for (const b of blocks.filter((b) => b.kind === 'runnable')) {
      const outputs: string[] = []
      for (const attempt of [1, 2]) {
        const t = performance.now()
        const r = await run('npx', ['--no-install', 'tsx', join('blocks', blockFile(b))], { cwd: app, timeoutMs: RUN_TIMEOUT_MS })
        const ms = Math.round(performance.now() - t)
        console.log(`${b.doc}:${b.line} run ${attempt}: exit ${r.code} in ${ms} ms${r.timedOut ? ' (time bound)' : ''}`)
        if (r.code !== 0) problems.push(`${b.doc}:${b.line}: run ${attempt} ${r.timedOut ? `did not end within ${RUN_TIMEOUT_MS} ms` : `exited ${r.code}`}:\n${r.stdout}${r.stderr}`)
        outputs.push(r.stdout)
      }
      console.log(outputs[1]!.trim().replace(/^/gm, '  | '))
      if (normalise(outputs[0]!) === '' || normalise(outputs[0]!) !== normalise(outputs[1]!)) {
        problems.push(`${b.doc}:${b.line}: the second run did not do what the first did:\n--- first\n${outputs[0]}--- second\n${outputs[1]}`)
      }
    }
  })

  // 4. The peers the examples need; every block compiles under --strict.
  await phase('install the peers the examples need', async () => {
    for (const [why, list] of Object.entries(PEERS)) console.log(`  ${why}: ${list.join(' ')}`)
    await must('install the peers', 'npm', [...npmInstall, '--save-dev', ...Object.values(PEERS).flat()], app, { timeoutMs: 300_000 })
  })
  await phase('type-check the blocks and examples/integrator (tsc --strict)', async () => {
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2022', 'DOM', 'DOM.Iterable'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        moduleDetection: 'force',
        jsx: 'react-jsx',
        strict: true,
        skipLibCheck: true,
        noEmit: true,
        types: ['node'],
      },
      include: ['blocks', 'integrator'],
    }
    await writeFile(join(app, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2))
    const r = await run('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: app, timeoutMs: 300_000 })
    // Errors in a block are told at their line of the doc.
    const where = new Map(blocks.map((b) => [`blocks/${blockFile(b)}`, b]))
    const out = (r.stdout + r.stderr).replace(/^(blocks\/[^(]+)\((\d+),(\d+)\)/gm, (m, file: string, line: string, col: string) => {
      const b = where.get(file)
      return b ? `${b.doc}:${b.line + Number(line) - 1}:${col}` : m
    })
    if (r.code !== 0) problems.push(`type errors:\n${out}`)
    const files = readdirSync(join(app, 'blocks')).length + readdirSync(join(app, 'integrator')).length
    console.log(r.code === 0 ? `${files} files compile` : out)
  })

  // 5. The integrator tests, as an app runs them.
  await phase('vitest: examples/integrator in the app', async () => {
    const r = await run('npx', ['--no-install', 'vitest', 'run', 'integrator'], { cwd: app, timeoutMs: 300_000, echo: true })
    if (r.code !== 0) problems.push(`the integrator tests failed (exit ${r.code}${r.timedOut ? ', time bound' : ''})`)
  })
}

main()
  .catch((err: unknown) => {
    problems.push(err instanceof Error ? err.message : String(err))
  })
  .finally(() => {
    console.log('\n== integrator: durations')
    for (const [name, ms] of timings) console.log(`  ${(ms / 1000).toFixed(1).padStart(6)} s  ${name}`)
    console.log(`  ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s  in all`)
    if (problems.length > 0) {
      console.error(`\n== integrator: ${problems.length} problem(s)`)
      for (const p of problems) console.error(`- ${p}`)
      process.exitCode = 1
    } else console.log('\n== integrator: a new user succeeds: every check passed')
  })
