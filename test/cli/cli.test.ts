import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { runCli } from '../../src/cli/cli.js'
import { startSimulator, type RunningSimulator } from '../../src/simulator/server.js'

function io(env: Record<string, string | undefined> = {}) {
  let stdout = ''
  let stderr = ''
  return {
    io: { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { CI: '1', ...env } },
    out: () => stdout,
    err: () => stderr,
  }
}

describe('10npay-id', () => {
  let sim: RunningSimulator
  let token: string
  beforeAll(async () => {
    sim = await startSimulator({ timing: { captureMs: 300, staleMs: 100, signMs: 300 } })
    token = sim.simulator.issueToken()
  })
  afterAll(() => sim.close())

  it('demo --json finishes finalized with the ids and a timeline', async () => {
    const t = io()
    const code = await runCli(['demo', '--json', '--speed', '10', '--click-ms', '0'], t.io)
    expect(code).toBe(0)
    const summary = JSON.parse(t.out())
    expect(summary).toMatchObject({ outcome: 'finalized', correlationId: expect.any(String), individualId: expect.any(Number) })
    expect(summary.timeline.map((x: { state: string }) => x.state)).toEqual([
      'idle', 'initiating', 'identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB', 'finalized',
    ])
  })

  it('demo prints plain progress lines when not on a TTY, and exits 1 when the flow fails', async () => {
    const t = io()
    const code = await runCli(['demo', '--speed', '10', '--click-ms', '0', '--scenario', 'vendor-error'], t.io)
    expect(code).toBe(1)
    expect(t.out()).toMatch(/\] pollingA/)
    expect(t.out()).toContain('failed (vendor-error)')
    expect(t.out()).toContain('Timeline:')
  })

  it('status prints the status, with the token from TENNPAY_TOKEN never shown', async () => {
    await fetch(`${sim.url}/Enrollment/initiate-external-identification`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ userId: 31 }),
    })
    for (const json of [false, true]) {
      const t = io({ TENNPAY_TOKEN: token })
      const code = await runCli(['status', '--base-url', sim.url, '--user-id', '31', ...(json ? ['--json'] : [])], t.io)
      expect(code).toBe(0)
      expect(json ? JSON.parse(t.out()).videoIdentificationStatus : t.out()).toContain('STARTED')
      expect(t.out() + t.err()).not.toContain(token)
    }
  })

  it('gets the token from --token-command and refreshes it on 401', async () => {
    const t = io()
    const code = await runCli(['status', '--base-url', sim.url, '--user-id', '31', '--token-command', `echo ${token}`], t.io)
    expect(code).toBe(0)
    expect(t.out() + t.err()).not.toContain(token)
  })

  it('reports a refused token with exit 1 and without echoing it', async () => {
    for (const json of [false, true]) {
      const t = io({ TENNPAY_TOKEN: 'forged-token-123' })
      const code = await runCli(['status', '--base-url', sim.url, '--user-id', '31', ...(json ? ['--json'] : [])], t.io)
      expect(code).toBe(1)
      expect(json ? t.out() : t.err()).toMatch(/401/)
      expect(t.out() + t.err()).not.toContain('forged-token-123')
    }
  })

  it('wait --phase A polls until the signing URL, finalize prints the ids', async () => {
    const user = 32
    await fetch(`${sim.url}/Enrollment/initiate-external-identification`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ userId: user }),
    })
    sim.simulator.act(user, 'identification', 'success')
    const t = io({ TENNPAY_TOKEN: token })
    expect(await runCli(['wait', '--phase', 'A', '--interval-ms', '100', '--base-url', sim.url, '--user-id', String(user), '--json'], t.io)).toBe(0)
    expect(JSON.parse(t.out())).toMatchObject({ outcome: 'signing-ready', signingUrl: expect.stringContaining('/sign/') })
    sim.simulator.act(user, 'signing', 'success')
    const f = io({ TENNPAY_TOKEN: token })
    expect(await runCli(['finalize', '--base-url', sim.url, '--user-id', String(user)], f.io)).toBe(1) // not signed yet: 400
    expect(f.err()).toMatch(/answered 400/)
    const w = io({ TENNPAY_TOKEN: token })
    expect(await runCli(['wait', '--phase', 'B', '--interval-ms', '100', '--base-url', sim.url, '--user-id', String(user)], w.io)).toBe(0)
    const g = io({ TENNPAY_TOKEN: token })
    expect(await runCli(['finalize', '--base-url', sim.url, '--user-id', String(user), '--json'], g.io)).toBe(0)
    expect(JSON.parse(g.out())).toMatchObject({ correlationId: expect.any(String), individualId: expect.any(Number) })
  }, 30_000)

  it.each([
    [['status', '--base-url', 'http://x', '--user-id', 'abc'], '--user-id'],
    [['status', '--base-url', 'not-a-url', '--user-id', '1'], '--base-url'],
    [['status', '--user-id', '1'], '--base-url'],
    [['wait', '--base-url', 'http://x', '--user-id', '1', '--phase', 'C'], '--phase'],
    [['demo', '--scenario', 'nope'], '--scenario'],
    [['status', '--base-url', 'http://127.0.0.1:9', '--user-id', '1'], 'TENNPAY_TOKEN'],
    [['frobnicate'], 'frobnicate'],
    [['status', '--base-url', 'http://api.example', '--user-id', '1'], '--base-url must be https:'],
  ])('%j exits 2 naming %s', async (argv, name) => {
    const t = io()
    expect(await runCli(argv, t.io)).toBe(2)
    expect(t.err()).toContain(name)
  })

  it('--help works everywhere and chart prints Mermaid', async () => {
    for (const cmd of [[], ['demo'], ['status'], ['wait'], ['finalize'], ['simulate'], ['chart']]) {
      const t = io()
      expect(await runCli([...cmd, '--help'], t.io)).toBe(0)
      expect(t.out()).toContain('Usage:')
    }
    const t = io()
    expect(await runCli(['chart'], t.io)).toBe(0)
    expect(t.out()).toMatch(/^stateDiagram-v2/)
  })

  it('wait against a port that refuses at once (Node fetch to port 9) ends with exit 1 at the phase deadline, 20 runs of 20 (issue 9, item 1)', async () => {
    const runs = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const t = io({ TENNPAY_TOKEN: 'tok-not-used' })
        const t0 = Date.now()
        const code = await runCli(['wait', '--phase', 'A', '--base-url', 'http://127.0.0.1:9', '--user-id', '42', '--phase-timeout-ms', '400', '--json'], t.io)
        return { code, ms: Date.now() - t0, out: t.out() }
      }),
    )
    for (const r of runs) {
      expect(r.code).toBe(1)
      expect(JSON.parse(r.out)).toMatchObject({ outcome: 'failed', failure: { reason: 'timeout' } })
      expect(r.ms).toBeLessThan(5000)
    }
  })
})

describe('10npay-id as a new user meets it (issue 11)', () => {
  const run = (argv: string[], env: Record<string, string> = {}) => {
    const t = io(env)
    return runCli(argv, t.io).then((code) => ({ code, out: t.out(), err: t.err() }))
  }

  it('with no command prints the usage to stderr and exits 2; --version prints the version', async () => {
    const none = await run([])
    expect(none.code).toBe(2)
    expect(none.out).toBe('')
    expect(none.err).toContain('Usage: 10npay-id')
    const v = await run(['--version'])
    expect(v.code).toBe(0)
    expect(v.out.trim()).toMatch(/^\d+\.\d+\.\d+/)
  })

  it('every command has --help that says what goes to stdout and stderr and what the exit codes mean', async () => {
    for (const cmd of ['demo', 'initiate', 'status', 'wait', 'finalize', 'simulate', 'serve', 'chart']) {
      const h = await run([cmd, '--help'])
      expect(h.code).toBe(0)
      expect(h.out).toMatch(/stdout /)
      expect(h.out).toMatch(/stderr /)
      expect(h.out).toMatch(/Exit codes: 0 /)
    }
  })

  it('demo: every scenario that should finalize does (slow included: the phase deadline follows the scenario)', async () => {
    for (const scenario of ['happy', 'slow', 'flaky', 'expired-token']) {
      const r = await run(['demo', '--json', '--speed', '30', '--click-ms', '0', '--scenario', scenario])
      expect(r.code, `${scenario}: ${r.out}`).toBe(0)
      expect(JSON.parse(r.out).outcome).toBe('finalized')
    }
  }, 60_000)

  it('initiate starts a flow at a fresh simulator; status, wait and finalize then work', async () => {
    const sim2 = await startSimulator({ timing: { captureMs: 100, staleMs: 50, signMs: 100 } })
    try {
      const token = sim2.simulator.issueToken()
      const env = { TENNPAY_TOKEN: token }
      const i = await run(['initiate', '--base-url', sim2.url, '--user-id', '77', '--json'], env)
      expect(i.code).toBe(0)
      expect(JSON.parse(i.out)).toMatchObject({ videoIdentificationStatus: 'STARTED', videoIdentificationUrl: expect.stringContaining('/capture/') })
      const s = await run(['status', '--base-url', sim2.url, '--user-id', '77'], env)
      expect(s.code).toBe(0)
      expect(s.out).toContain('STARTED')
      const r = await run(['initiate', '--base-url', sim2.url, '--user-id', '77', '--restart', '--json'], env)
      expect(r.code).toBe(0)
      const bodies = sim2.requests.filter((x) => x.endpoint === 'initiate').map((x) => (x.body as { isRestartIdentification: boolean }).isRestartIdentification)
      expect(bodies).toEqual([false, true])
      for (const out of [i.out, s.out, r.out]) expect(out).not.toContain(token)
    } finally {
      await sim2.close()
    }
  })

  it('results go to stdout, diagnostics to stderr; with --json even an error is JSON on stdout', async () => {
    const sim = await startSimulator()
    const token = sim.simulator.issueToken()
    onTestFinished(() => sim.close())
    const failed = await run(['status', '--base-url', sim.url, '--user-id', '999'], { TENNPAY_TOKEN: token })
    expect(failed.code).toBe(1)
    expect(failed.out).toBe('')
    expect(failed.err).toMatch(/^error: .*404/)
    const failedJson = await run(['status', '--base-url', sim.url, '--user-id', '999', '--json'], { TENNPAY_TOKEN: token })
    expect(failedJson.code).toBe(1)
    expect(JSON.parse(failedJson.out)).toMatchObject({ error: expect.stringContaining('404'), kind: 'rejected' })
    expect(failedJson.err).toBe('')
  })
})
