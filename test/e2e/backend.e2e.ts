/** The backend example (`10npay-id serve`) driven by a person in headless Chromium. */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { launchChromium } from './browser.js'

describe('backend example', () => {
  it('a person completes a flow from the page: start, ID capture, signing, finalized', async () => {
    // The example imports the package by name: it runs from the build (npm run build).
    const { startBackendExample } = (await import('../../examples/backend/server.mjs')) as {
      startBackendExample(o: { port: number; db: string }): Promise<{ url: string; close(): Promise<void> }>
    }
    const ex = await startBackendExample({ port: 0, db: join(await mkdtemp(join(tmpdir(), 'serve-')), 'flows.db') })
    const browser = await launchChromium()
    try {
      const page = await browser.newPage()
      await page.goto(`${ex.url}/`)
      await page.click('#start')
      await page.waitForURL(/\/capture\//)
      await page.click('#complete')
      await page.waitForURL(/\/sign\//, { timeout: 20_000 })
      await page.click('#complete')
      await expect.poll(() => page.textContent('#state'), { timeout: 20_000 }).toBe('finalized')
      expect(await page.textContent('#ids')).toMatch(/correlationId [0-9a-f-]{36} · individualId \d+/)
    } finally {
      await browser.close()
      await ex.close()
    }
  })
})
