import { execFile } from 'node:child_process'
import { createActor } from 'xstate'
import { createHttpApi } from '../adapters/http/httpApi.js'
import { createNodeTransport } from '../adapters/node/nodeTransport.js'
import { identificationMachine } from '../machine/identificationMachine.js'
import { topState } from '../machine/persistence.js'
import { createIdentificationWorkers } from '../machine/workers.js'
import type { IdentificationApi, UserType } from '../machine/types.js'
import { EXIT, UsageError, type CliIo } from './io.js'

/** Options every command that talks to the provider takes. */
export interface RemoteOptions {
  baseUrl: string
  /** `http:` off loopback (the token travels in clear text). */
  allowInsecureHttp?: boolean
  userId: number
  userType: UserType
  tokenCommand?: string
  timeoutMs: number
  json: boolean
}

/** Runs `--token-command` with the shell and returns its trimmed stdout; the token is never printed. */
function runTokenCommand(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', command], { timeout: 30_000, maxBuffer: 64 * 1024 }, (err, stdout) => {
      if (err) reject(new Error(`--token-command failed (${err.code ?? err.signal ?? 'error'}); its output is not shown`))
      else if (!stdout.trim()) reject(new Error('--token-command printed no token'))
      else resolve(stdout.trim())
    })
  })
}

/** Builds the API client for a command; the token comes from TENNPAY_TOKEN or --token-command. */
export function remoteApi(opts: RemoteOptions, io: CliIo): IdentificationApi {
  const envToken = io.env['TENNPAY_TOKEN']
  if (!opts.tokenCommand && !envToken) {
    throw new UsageError('no token: set TENNPAY_TOKEN or pass --token-command <command>')
  }
  let cached: string | undefined
  return createHttpApi({
    baseUrl: opts.baseUrl,
    requestTimeoutMs: opts.timeoutMs,
    transport: createNodeTransport(),
    ...(opts.allowInsecureHttp && { allowInsecureHttp: true }),
    getAccessToken: async ({ forceRefresh }) => {
      if (!opts.tokenCommand) return envToken!
      if (forceRefresh || !cached) cached = await runTokenCommand(opts.tokenCommand)
      return cached
    },
  })
}

const print = (io: CliIo, json: boolean, value: object, text: string) =>
  io.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text}\n`)

/** `status`: one status request, printed. */
export async function status(opts: RemoteOptions, io: CliIo): Promise<number> {
  const api = remoteApi(opts, io)
  const r = await api.getStatus({ userId: opts.userId, userType: opts.userType })
  print(
    io,
    opts.json,
    r,
    [`status:  ${r.videoIdentificationStatus ?? '(none)'}`, `url:     ${r.videoIdentificationUrl ?? '(none)'}`, `message: ${r.message || '(none)'}`].join('\n'),
  )
  return EXIT.ok
}

/** `initiate`: one initiate request (with `--restart`: a brand-new session), printed. */
export async function initiate(opts: RemoteOptions & { restart: boolean }, io: CliIo): Promise<number> {
  const api = remoteApi(opts, io)
  const r = await api.initiate({ userId: opts.userId, isRestartIdentification: opts.restart, correlationType: 0 })
  print(
    io,
    opts.json,
    r,
    [`open:    ${r.videoIdentificationUrl ?? '(no URL)'}`, `status:  ${r.videoIdentificationStatus ?? '(none)'}`, `message: ${r.message || '(none)'}`].join('\n'),
  )
  return EXIT.ok
}

/** `finalize`: one finalize request, printed. */
export async function finalize(opts: RemoteOptions & { callbackId?: string }, io: CliIo): Promise<number> {
  const api = remoteApi(opts, io)
  const r = await api.finalize({ userId: opts.userId, bTrustAppCallBackId: opts.callbackId ?? null, correlationType: 0 })
  print(io, opts.json, r, `correlationId: ${r.correlationId}\nindividualId:  ${r.individualId}`)
  return EXIT.ok
}

/**
 * `wait --phase A|B`: polls with the chart's own schedule and deadline (as after a Success
 * redirect) until the phase completes or fails. Nothing is finalized.
 */
export async function wait(opts: RemoteOptions & { phase: 'A' | 'B'; phaseTimeoutMs: number; intervalMs: number }, io: CliIo): Promise<number> {
  const api = remoteApi(opts, io)
  const machine = identificationMachine.provide({ actors: createIdentificationWorkers({ api }) })
  const actor = createActor(machine, {
    input: {
      userId: opts.userId,
      userType: opts.userType,
      polling: { phaseTimeoutMs: opts.phaseTimeoutMs, intervalMs: opts.intervalMs, maxIntervalMs: Math.round(opts.intervalMs * 2.5) },
    },
  })
  const result = await new Promise<{ code: number; value: object; text: string }>((resolve) => {
    actor.subscribe((s) => {
      const top = topState(s.value)
      if (top === 'failed') {
        const f = s.context.failure!
        resolve({ code: EXIT.failed, value: { phase: opts.phase, outcome: 'failed', failure: f }, text: `failed (${f.reason}): ${f.message}` })
      } else if (top === 'phaseA' || top === 'phaseB') {
        const value = {
          phase: opts.phase,
          outcome: top === 'phaseA' ? 'signing-ready' : 'signed',
          status: s.context.status,
          signingUrl: top === 'phaseA' ? s.context.signingUrl : null,
        }
        resolve({
          code: EXIT.ok,
          value,
          text: top === 'phaseA' ? `phase A complete: open ${s.context.signingUrl}` : 'document signed: ready to finalize',
        })
      }
    })
    actor.start()
    actor.send({ type: 'REDIRECT', outcome: 'success', step: opts.phase === 'A' ? 'identification' : 'signing' })
  })
  actor.stop()
  print(io, opts.json, result.value, result.text)
  return result.code
}
