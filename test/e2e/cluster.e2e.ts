/**
 * Two replicas of the backend example (`10npay-id serve --postgres … --redis …`, separate
 * processes from the build) behind one simulated provider whose Success/Fail URLs point at
 * replica B, driven by a person in headless Chromium: the flow starts on A's page, every
 * redirect comes back to B, and B's page follows the flow to `finalized`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Browser } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { startSimulator, type RunningSimulator } from '../../src/simulator/server.js'
import { createTestDatabase, type TestDatabase } from '../cluster/pgHelpers.js'
import { deleteRedisPrefix, REDIS_URL } from '../cluster/redisHelpers.js'
import { launchChromium } from './browser.js'

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** How long a replica may take to exit by itself after SIGTERM. */
const EXIT_MS = 8_000

interface ReplicaProcess {
  name: string
  child: ChildProcess
  url: string
  stderr(): string
  /** SIGTERM, and how it ended (`killed` when it was still there after `ms` and got SIGKILL). */
  stop(ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number; killed: boolean }>
}

/** `node dist/cli/main.js serve … --json`: resolves with the URL from its JSON line. */
async function startReplica(name: string, args: string[]): Promise<ReplicaProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args, '--port', '0', '--json'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  let out = ''
  child.stderr!.on('data', (d) => (err += d))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica ${name} printed no address within 20 s: ${out}${err}`)), 20_000)
    child.stdout!.on('data', (d) => {
      out += d
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (!line) return
      clearTimeout(timer)
      try {
        resolve((JSON.parse(line) as { url: string }).url)
      } catch (e) {
        reject(e)
      }
    })
    void exited.then(({ code, signal }) => {
      clearTimeout(timer)
      reject(new Error(`replica ${name} exited (${code ?? signal}) before listening: ${err}`))
    })
  }).catch((e: unknown) => {
    child.kill('SIGKILL')
    throw e
  })
  return {
    name,
    child,
    url,
    stderr: () => err,
    async stop(ms = EXIT_MS) {
      const t0 = Date.now()
      if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode, ms: 0, killed: false }
      child.kill('SIGTERM')
      let killed = false
      const timer = setTimeout(() => {
        killed = true
        child.kill('SIGKILL')
      }, ms)
      const { code, signal } = await exited
      clearTimeout(timer)
      return { code, signal, ms: Date.now() - t0, killed }
    },
  }
}

describe('backend example, two replicas', () => {
  it('a person starts on replica A; the provider redirects to replica B, whose page follows the flow to finalized', async () => {
    const t0 = Date.now()
    const userId = 100_000 + Math.floor(Math.random() * 800_000)
    const prefix = `tenpay-e2e-${randomBytes(5).toString('hex')}`
    const secret = randomBytes(24).toString('hex')
    let sim: RunningSimulator | undefined
    let db: TestDatabase | undefined
    let browser: Browser | undefined
    const replicas: ReplicaProcess[] = []
    const stopped: Record<string, Awaited<ReturnType<ReplicaProcess['stop']>>> = {}
    try {
      sim = await startSimulator({ timing: { captureMs: 500, staleMs: 200, signMs: 500 } })
      db = await createTestDatabase('tenpay_e2e')
      const args = ['--postgres', db.url, '--redis', REDIS_URL, '--prefix', prefix, '--simulator-url', sim.url, '--session-secret', secret]
      // One after the other: the first creates the tables.
      replicas.push(await startReplica('A', args))
      replicas.push(await startReplica('B', args))
      const [a, b] = replicas as [ReplicaProcess, ReplicaProcess]
      expect(a.url).not.toBe(b.url)
      // The provider's portal: Success and Fail URLs on replica B.
      sim.simulator.setRedirects({ success: `${b.url}/kyc/success`, fail: `${b.url}/kyc/fail` })

      browser = await launchChromium()
      const page = await browser.newPage()
      /** Every navigation request of the tab, redirect hops included, in order. */
      const navigations: string[] = []
      /** Every request the pages made to a replica (fetch, EventSource, navigations). */
      const toReplicas: string[] = []
      page.on('request', (r) => {
        if (r.isNavigationRequest() && r.frame() === page.mainFrame()) navigations.push(r.url())
        if (r.url().startsWith(a.url) || r.url().startsWith(b.url)) toReplicas.push(`${r.method()} ${r.url()}`)
      })
      const pageErrors: string[] = []
      page.on('pageerror', (e) => pageErrors.push(String(e)))

      // On A: log in as the user and start.
      await page.goto(`${a.url}/`)
      await page.fill('#user', String(userId))
      await page.click('#start')
      // The fake ID capture page of the provider.
      await page.waitForURL((u) => u.href.startsWith(`${sim!.url}/`) && /\/capture\//.test(u.pathname), { timeout: 20_000 })
      const flowId = /\/identifications\/([^/?#]+)\/events/.exec(toReplicas.find((r) => r.includes('/events')) ?? '')?.[1]
      expect(flowId, `the page on A followed a flow: ${toReplicas.join('\n')}`).toBeTruthy()
      await page.click('#complete')
      // Back on B, whose page follows the flow and opens the signing page.
      await page.waitForURL((u) => u.href.startsWith(`${sim!.url}/`) && /\/sign\//.test(u.pathname), { timeout: 30_000 })
      await page.click('#complete')
      await page.waitForURL((u) => u.href.startsWith(`${b.url}/`), { timeout: 20_000 })
      await expect.poll(() => page.textContent('#state'), { timeout: 30_000 }).toBe('finalized')

      // What the person sees: the state and the ids, on B.
      const ids = (await page.textContent('#ids')) ?? ''
      const m = /^correlationId ([0-9a-f-]{36}) · individualId (\d+)$/.exec(ids)
      expect(m, `ids: ${ids}`).not.toBeNull()
      expect(await page.textContent('#failure')).toBe('')
      expect(await page.inputValue('#user')).toBe(String(userId)) // B's page shows the flow's user
      expect(new URL(page.url()).origin).toBe(b.url)
      expect(page.url()).toBe(`${b.url}/?flow=${flowId}`)
      await mkdir(new URL('../../test-results/', import.meta.url), { recursive: true })
      await page.screenshot({ path: fileURLToPath(new URL('../../test-results/cluster-finalized.png', import.meta.url)), fullPage: true })

      // The route the browser took: A's page → capture → B's Success URL → B's page → signing → B again.
      const origin = (u: string) => new URL(u).origin
      const at = (pred: (u: URL) => boolean, from = 0) => navigations.findIndex((u, i) => i >= from && pred(new URL(u)))
      const onA = at((u) => u.origin === a.url && u.pathname === '/')
      const capture = at((u) => u.origin === sim!.url && u.pathname.startsWith('/capture/'), onA)
      const success1 = at((u) => u.origin === b.url && u.pathname === '/kyc/success', capture)
      const sign = at((u) => u.origin === sim!.url && u.pathname.startsWith('/sign/'), success1)
      const success2 = at((u) => u.origin === b.url && u.pathname === '/kyc/success', sign)
      expect([onA, capture, success1, sign, success2].every((i) => i >= 0), `navigations:\n${navigations.join('\n')}`).toBe(true)
      // Each provider page once: B's page never sent the person back to a step already done.
      expect(navigations.filter((u) => /^\/capture\/[^/]+$/.test(new URL(u).pathname)), `navigations:\n${navigations.join('\n')}`).toHaveLength(1)
      expect(navigations.filter((u) => /^\/sign\/[^/]+$/.test(new URL(u).pathname)), `navigations:\n${navigations.join('\n')}`).toHaveLength(1)
      expect(navigations.slice(0, capture).every((u) => origin(u) === a.url), `before capture, only A:\n${navigations.join('\n')}`).toBe(true)
      // Every navigation after the provider's first page went to the provider or to B, never to A.
      expect(navigations.slice(capture).filter((u) => origin(u) === a.url), `navigations:\n${navigations.join('\n')}`).toEqual([])
      // The start was a request to A; the flow was followed over SSE from A, then from B.
      expect(toReplicas.filter((r) => r.startsWith('POST ') && r.endsWith('/identifications'))).toEqual([`POST ${a.url}/identifications`])
      const sse = toReplicas.filter((r) => r.includes(`/identifications/${flowId}/events`)).map((r) => origin(r.slice(4)))
      expect(sse[0]).toBe(a.url)
      expect(sse.slice(1).length).toBeGreaterThanOrEqual(2) // B's page after each redirect
      expect(sse.slice(1).every((o) => o === b.url), `SSE: ${sse.join(', ')}`).toBe(true)
      expect(pageErrors).toEqual([])

      // The provider saw one initiate and one finalize for this user, and answered them.
      const mine = sim.requests.filter((r) => r.userId === userId)
      const initiates = mine.filter((r) => r.endpoint === 'initiate')
      const finalizes = mine.filter((r) => r.endpoint === 'finalize')
      expect(initiates.map((r) => r.status)).toEqual([200])
      expect(finalizes.map((r) => r.status)).toEqual([200])
      expect(initiates[0]!.body).toMatchObject({ userId })
      expect(finalizes[0]!.body).toMatchObject({ userId })

      // Both replicas see the finalized flow with the same ids (PostgreSQL is the one truth).
      for (const r of replicas) {
        const cookie = (await page.context().cookies(r.url)).map((c) => `${c.name}=${c.value}`).join('; ')
        const res = await fetch(`${r.url}/identifications/${flowId}`, { headers: { cookie } })
        expect(res.status).toBe(200)
        const view = (await res.json()) as { state: string; result?: { correlationId: string; individualId: number } }
        expect(view.state).toBe('finalized')
        expect(view.result).toEqual({ correlationId: m![1], individualId: Number(m![2]) })
      }

      // SIGTERM: each replica closes and exits by itself.
      await browser.close()
      browser = undefined
      for (const r of replicas) stopped[r.name] = await r.stop()
      for (const r of replicas) {
        expect(stopped[r.name], `replica ${r.name} after SIGTERM; stderr: ${r.stderr()}`).toMatchObject({ code: 0, killed: false })
      }
      console.info(`cluster e2e: the browser went\n  ${navigations.join('\n  ')}`)
      console.info(
        `cluster e2e: user ${userId}, flow ${flowId}; exits after SIGTERM: ${replicas.map((r) => `${r.name} ${stopped[r.name]!.ms} ms`).join(', ')}; total ${Date.now() - t0} ms`,
      )
    } finally {
      await browser?.close().catch(() => {})
      await Promise.all(replicas.map((r) => r.stop(2_000).catch(() => {})))
      const deleted = await deleteRedisPrefix(prefix).catch((e: unknown) => (console.warn(`Redis cleanup: ${String(e)}`), -1))
      await db?.drop().catch((e: unknown) => console.warn(`PostgreSQL cleanup: ${String(e)}`))
      await sim?.close()
      if (deleted >= 0) console.info(`cluster e2e: deleted ${deleted} Redis keys under ${prefix}:`)
    }
  })
})
