/** The CLI as a process: closed pipes and start-up errors end it quietly and completely (issue 11, items 1 and 3). */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))
const cli = (args: string[]) => spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } })
const exit = (child: ReturnType<typeof cli>) => new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))

describe('10npay-id as a process', () => {
  it('`demo | head -1`: the reader goes away after one line; the command ends quietly, no EPIPE stack', async () => {
    const child = cli(['demo', '--speed', '20', '--click-ms', '0'])
    let err = ''
    child.stderr!.on('data', (d) => (err += d))
    let first = ''
    await new Promise<void>((resolve) => {
      child.stdout!.on('data', (d) => {
        first += d
        if (first.includes('\n')) {
          child.stdout!.destroy() // as `head -1` does
          resolve()
        }
      })
    })
    const code = await exit(child)
    expect(first).toMatch(/^Simulator at http:\/\/127\.0\.0\.1:\d+/)
    expect(err).not.toMatch(/EPIPE|Error:|at /)
    expect(code).toBe(0)
  }, 30_000)

  it('`serve --db /nonexistent/dir/x.db`: prints why and exits 1, with everything it started closed', async () => {
    const child = cli(['serve', '--db', '/nonexistent/dir/x.db'])
    let err = ''
    let out = ''
    child.stderr!.on('data', (d) => (err += d))
    child.stdout!.on('data', (d) => (out += d))
    const t0 = Date.now()
    const code = await exit(child)
    expect(code).toBe(1)
    expect(Date.now() - t0).toBeLessThan(15_000)
    expect(err).toMatch(/^error: .*(nonexistent|directory|open)/im)
    expect(out).toBe('')
  }, 30_000)
})
