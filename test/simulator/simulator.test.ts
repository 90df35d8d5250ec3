import { describe, expect, it } from 'vitest'
import { createSimulator } from '../../src/simulator/simulator.js'
import { startSimulator } from '../../src/simulator/server.js'

describe('simulator', () => {
  const sim = () => {
    let t = 0
    const s = createSimulator({ now: () => t, timing: { captureMs: 1000, staleMs: 500, signMs: 2000 } })
    return { s, advance: (ms: number) => (t += ms), token: s.issueToken() }
  }
  const call = (s: ReturnType<typeof createSimulator>, token: string, method: string, path: string, body?: unknown) =>
    s.fetch(`http://127.0.0.1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    })

  it('walks a session through the documented statuses', async () => {
    const { s, advance, token } = sim()
    const status = async () => (await (await call(s, token, 'GET', '/Enrollment/5/0/true/get-identification-process-status')).json()).videoIdentificationStatus
    expect((await call(s, token, 'GET', '/Enrollment/5/0/true/get-identification-process-status')).status).toBe(404)
    const init = await (await call(s, token, 'POST', '/Enrollment/initiate-external-identification', { userId: 5, isRestartIdentification: false })).json()
    expect(init).toMatchObject({ videoIdentificationStatus: 'STARTED', videoIdentificationUrl: expect.stringMatching(/\/capture\//) })
    expect(await status()).toBe('STARTED')
    s.act(5, 'identification', 'success')
    expect(await status()).toBe('PROCESSING')
    expect((await call(s, token, 'POST', '/Enrollment/finalize-external-identification', { userId: 5 })).status).toBe(400)
    advance(1000)
    expect(await status()).toBe('SIGN_SESSION_ID_SUCCESSFULLY_CREATED')
    s.act(5, 'signing', 'success')
    expect(await status()).toBe('SIGN_SESSION_ID_SUCCESSFULLY_CREATED')
    advance(600)
    expect(await status()).toBe('PROCESSING')
    advance(1500)
    expect(await status()).toBe('DOCUMENT_SIGN_SUCCESS')
    const f1 = await (await call(s, token, 'POST', '/Enrollment/finalize-external-identification', { userId: 5, bTrustAppCallBackId: null })).json()
    const f2 = await (await call(s, token, 'POST', '/Enrollment/finalize-external-identification', { userId: 5, bTrustAppCallBackId: null })).json()
    expect(f1).toEqual(f2) // idempotent
  })

  it('answers 401 without a valid token and 400 for a bad path', async () => {
    const { s, token } = sim()
    expect((await call(s, 'forged', 'GET', '/Enrollment/5/0/true/get-identification-process-status')).status).toBe(401)
    expect((await call(s, token, 'GET', '/Enrollment/5/2/true/get-identification-process-status')).status).toBe(400)
    expect((await call(s, token, 'GET', '/Enrollment/5/0/false/get-identification-process-status')).status).toBe(400)
    expect((await call(s, token, 'GET', '/Enrollment/0/0/true/get-identification-process-status')).status).toBe(400)
  })

  it('serves the fake pages over HTTP and redirects to the configured URLs', async () => {
    const running = await startSimulator({ redirects: { success: 'http://127.0.0.1:9/ok?step={step}', fail: 'http://127.0.0.1:9/ko?step={step}' } })
    try {
      const token = running.simulator.issueToken()
      const init = await (
        await fetch(`${running.url}/Enrollment/initiate-external-identification`, {
          method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ userId: 9 }),
        })
      ).json()
      expect(init.videoIdentificationUrl.startsWith(running.url)).toBe(true)
      const page = await (await fetch(init.videoIdentificationUrl)).text()
      expect(page).toContain('id="complete"')
      expect(page).toContain('id="fail"')
      const res = await fetch(`${init.videoIdentificationUrl}/complete`, { method: 'POST', redirect: 'manual' })
      expect(res.status).toBe(303)
      expect(res.headers.get('location')).toBe('http://127.0.0.1:9/ok?step=identification')
    } finally {
      await running.close()
    }
  })

  it('resets the connection in the flaky scenario, over real HTTP too', async () => {
    const running = await startSimulator({ scenario: 'flaky' })
    try {
      const token = running.simulator.issueToken()
      const results: string[] = []
      for (let i = 0; i < 4; i++) {
        const r = await fetch(`${running.url}/Enrollment/3/0/true/get-identification-process-status`, { headers: { authorization: `Bearer ${token}` } }).then(
          (res) => String(res.status),
          () => 'reset',
        )
        results.push(r)
      }
      expect(results).toEqual(['404', '503', '404', 'reset'])
    } finally {
      await running.close()
    }
  })

  it('a finalize that comes too early does not use up the stale answers owed after signing', async () => {
    const s = createSimulator({ now: () => 0, timing: { captureMs: 0, staleMs: 0, signMs: 0 }, faults: { staleAnswersAfterSign: 2 } })
    const token = s.issueToken()
    await call(s, token, 'POST', '/Enrollment/initiate-external-identification', { userId: 6 })
    s.act(6, 'identification', 'success')
    s.act(6, 'signing', 'success')
    expect((await call(s, token, 'POST', '/Enrollment/finalize-external-identification', { userId: 6 })).status).toBe(400)
    const status = async () => (await (await call(s, token, 'GET', '/Enrollment/6/0/true/get-identification-process-status')).json()).videoIdentificationStatus
    expect([await status(), await status(), await status()]).toEqual([
      'SIGN_SESSION_ID_SUCCESSFULLY_CREATED',
      'SIGN_SESSION_ID_SUCCESSFULLY_CREATED',
      'DOCUMENT_SIGN_SUCCESS',
    ])
  })
})
