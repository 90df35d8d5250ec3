/**
 * The browser demo (examples/browser) in headless Chromium, through real navigations to the
 * simulator's fake provider pages and back through the Success/Fail redirects.
 */
import { mkdirSync } from 'node:fs'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWebDemo } from '../../src/cli/webDemo.js'
import type { RunningSimulator } from '../../src/simulator/server.js'
import { launchChromium } from './browser.js'

let web: RunningSimulator & { appUrl: string }
let browser: Browser
let nextUser = 7000

beforeAll(async () => {
  web = await startWebDemo({ timing: { captureMs: 2500, staleMs: 500, signMs: 2500 } })
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
  await web?.close()
})

async function openDemo(userId: number, locale = 'en-US'): Promise<{ page: Page; navigations: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, locale })
  const page = await context.newPage()
  const navigations: string[] = []
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) navigations.push(f.url())
  })
  await page.goto(`${web.appUrl}?userId=${userId}`)
  await expect.poll(() => page.getByTestId('state').textContent()).toContain('idle')
  return { page, navigations }
}

const stateOf = (page: Page) => page.getByTestId('state').locator('b').textContent()
const waitState = (page: Page, state: string, timeout = 20_000) => expect.poll(() => stateOf(page), { timeout }).toBe(state)
const count = (userId: number, endpoint: string) => web.requests.filter((r) => r.userId === userId && r.endpoint === endpoint).length

async function clickOnProviderPage(page: Page, button: 'complete' | 'fail', path: 'capture' | 'sign') {
  await page.waitForURL(new RegExp(`/${path}/`))
  await page.locator(`#${button}`).click()
  await page.waitForURL(/\/app\//)
}

describe('browser demo', () => {
  it('happy path: ID capture page, signing page, finalized with the ids', async () => {
    const userId = nextUser++
    const { page } = await openDemo(userId)
    await page.getByTestId('start').click()
    await clickOnProviderPage(page, 'complete', 'capture')
    await waitState(page, 'phaseA')
    await page.getByTestId('continue').click()
    await clickOnProviderPage(page, 'complete', 'sign')
    await waitState(page, 'finalized')
    expect(await page.getByTestId('correlationId').textContent()).toMatch(/^[0-9a-f-]{36}$/)
    expect(Number(await page.getByTestId('individualId').textContent())).toBeGreaterThan(0)
    expect(await page.getByTestId('timeline').textContent()).toContain('DOCUMENT_SIGN_SUCCESS')
    expect(count(userId, 'initiate')).toBe(1)
    expect(count(userId, 'finalize')).toBe(1)
    mkdirSync('test-results', { recursive: true })
    await page.screenshot({ path: 'test-results/finalized.png', fullPage: true })
    await page.context().close()
  })

  it.each([
    ['identification', 'capture'],
    ['signing', 'sign'],
  ] as const)('a Fail redirect at %s is confirmed with the provider: its ERROR ends the flow (vendor-error, with its message)', async (step, path) => {
    const userId = nextUser++
    const { page } = await openDemo(userId)
    await page.getByTestId('start').click()
    if (step === 'signing') {
      await clickOnProviderPage(page, 'complete', 'capture')
      await waitState(page, 'phaseA')
      await page.getByTestId('continue').click()
    }
    await clickOnProviderPage(page, 'fail', path)
    await waitState(page, 'failed')
    // The simulator records the Fail press as ERROR; the chart asked the status endpoint first.
    const failure = await page.getByTestId('failure').textContent()
    expect(failure).toContain('vendor-error')
    expect(failure).toContain('cancelled the step')
    await page.context().close()
  })

  it('with navigator.language bg the person reads the state and the failure in Bulgarian (issue 12)', async () => {
    const userId = nextUser++
    const { page } = await openDemo(userId, 'bg-BG')
    expect(await page.evaluate(() => navigator.language)).toBe('bg-BG')
    expect(await page.getByTestId('state-text').textContent()).toBe('Не е започната')
    await page.getByTestId('start').click()
    await clickOnProviderPage(page, 'fail', 'capture')
    await waitState(page, 'failed')
    const text = await page.getByTestId('failure-text').textContent()
    // The provider recorded the Fail press as ERROR: vendor-error in phase A, in Bulgarian.
    expect(text).toContain('Документът ви не беше потвърден')
    expect(text).toContain('Започнете отначало')
    expect(await page.getByTestId('state-text').textContent()).toBe('Идентификацията ви не е завършена')
    mkdirSync('test-results', { recursive: true })
    await page.screenshot({ path: 'test-results/demo-bg-failed.png', fullPage: true })
    await page.context().close()
  })

  it.each(['pollingA', 'pollingB'])('a reload during %s goes on polling, with one initiate in all', async (phase) => {
    const userId = nextUser++
    const { page } = await openDemo(userId)
    await page.getByTestId('start').click()
    await clickOnProviderPage(page, 'complete', 'capture')
    if (phase === 'pollingB') {
      await waitState(page, 'phaseA')
      await page.getByTestId('continue').click()
      await clickOnProviderPage(page, 'complete', 'sign')
    }
    await waitState(page, phase)
    const polls = count(userId, 'status')
    await page.reload()
    await waitState(page, phase)
    if (phase === 'pollingA') {
      await waitState(page, 'phaseA')
      expect(count(userId, 'status')).toBeGreaterThan(polls) // the reloaded page polled
      await page.getByTestId('continue').click()
      await clickOnProviderPage(page, 'complete', 'sign')
    }
    await waitState(page, 'finalized')
    expect(count(userId, 'status')).toBeGreaterThan(polls)
    expect(count(userId, 'initiate')).toBe(1)
    await page.context().close()
  })

  it('a vendor error, then Restart, finalizes with isRestartIdentification', async () => {
    const userId = nextUser++
    web.setScenario(userId, 'vendor-error')
    const { page } = await openDemo(userId)
    await page.getByTestId('start').click()
    await clickOnProviderPage(page, 'complete', 'capture')
    await waitState(page, 'failed')
    expect(await page.getByTestId('failure').textContent()).toContain('vendor-error')
    web.setScenario(userId, 'happy')
    await page.getByTestId('restart').click()
    await clickOnProviderPage(page, 'complete', 'capture')
    await waitState(page, 'phaseA')
    await page.getByTestId('continue').click()
    await clickOnProviderPage(page, 'complete', 'sign')
    await waitState(page, 'finalized')
    const initiates = web.requests.filter((r) => r.userId === userId && r.endpoint === 'initiate')
    expect(initiates.map((r) => (r.body as { isRestartIdentification: boolean }).isRestartIdentification)).toEqual([false, true])
    await page.context().close()
  })

  it('a second tab of the same flow does not poll while the first does', async () => {
    const userId = nextUser++
    web.setScenario(userId, 'timeout') // phase A stays PROCESSING: polling goes on
    const { page } = await openDemo(userId)
    await page.getByTestId('start').click()
    await clickOnProviderPage(page, 'complete', 'capture')
    await waitState(page, 'pollingA')
    // window.open copies sessionStorage: the second tab holds the same flow.
    const [second] = await Promise.all([page.context().waitForEvent('page'), page.evaluate(() => void window.open(location.href))])
    await waitState(second!, 'pollingA')
    const before = count(userId, 'status')
    await new Promise((r) => setTimeout(r, 8000))
    const during = count(userId, 'status') - before
    // One poller at a 2 s interval makes 4–5 requests in 8 s; two would make 8–10.
    expect(during).toBeGreaterThanOrEqual(3)
    expect(during).toBeLessThanOrEqual(6)
    await page.close() // the lock goes with the tab: the second one takes over
    const after = count(userId, 'status')
    await expect.poll(() => count(userId, 'status'), { timeout: 10_000 }).toBeGreaterThan(after + 1)
    await second!.context().close()
  })

  it('never navigates to an unsafe signing URL', async () => {
    const userId = nextUser++
    web.simulator.setBehaviour(userId, { phaseA: 'unsafe-url' })
    const { page, navigations } = await openDemo(userId)
    await page.getByTestId('start').click()
    await clickOnProviderPage(page, 'complete', 'capture')
    await waitState(page, 'failed')
    expect(await page.getByTestId('failure').textContent()).toContain('unsafe-url')
    expect(navigations.some((u) => !u.startsWith(web.url))).toBe(false)
    expect(await page.getByTestId('continue').isDisabled()).toBe(true)
    expect(page.url().startsWith(web.appUrl)).toBe(true)
    await page.context().close()
  })
})
