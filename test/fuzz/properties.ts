/**
 * Property tests shared by `npm test` (500 runs each) and the chaos suite (10 000 runs each).
 */
import fc from 'fast-check'
import { initialTransition, transition } from 'xstate'
import { createHttpApi } from '../../src/adapters/http/httpApi.js'
import { TenNPayError } from '../../src/adapters/http/errors.js'
import type { IdentificationEvent } from '../../src/machine/events.js'
import { identificationMachine } from '../../src/machine/identificationMachine.js'
import { modelEvents } from '../../src/machine/model.js'
import { topState } from '../../src/machine/persistence.js'

const NULL_BODY = new Set([204, 205, 304])

/** Anything a broken gateway could answer: any status, headers, and body. */
export const arbitraryResponse = fc.record({
  status: fc.integer({ min: 200, max: 599 }),
  contentType: fc.constantFrom('application/json', 'text/html', 'text/plain', '', 'application/json; charset=utf-8'),
  retryAfter: fc.option(fc.oneof(fc.string(), fc.nat().map(String), fc.date({ noInvalidDate: true }).map((d) => d.toUTCString())), { nil: undefined }),
  body: fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    fc.string({ unit: 'binary', maxLength: 256 }),
    fc.string({ minLength: 100_000, maxLength: 200_000 }).map((s) => s),
    fc.constantFrom(
      '{"__proto__":{"polluted":true},"videoIdentificationStatus":"PROCESSING"}',
      '{"constructor":{"prototype":{"polluted":true}}}',
      '{"videoIdentificationStatus":"\u0000\uffff\ud83d\ude00","videoIdentificationUrl":"javascript:alert(1)","message":null}',
      '{"correlationId":"x","individualId":1e400}',
      '[]',
      'null',
      '',
    ),
    fc.record({
      videoIdentificationUrl: fc.option(fc.string(), { nil: null }),
      videoIdentificationStatus: fc.option(fc.string(), { nil: null }),
      message: fc.option(fc.string(), { nil: null }),
      correlationId: fc.string(),
      individualId: fc.oneof(fc.integer(), fc.double()),
    }).map((v) => JSON.stringify(v)),
  ),
  call: fc.constantFrom('getStatus', 'initiate', 'finalize'),
})

/** Feeds one arbitrary answer to the client: it resolves with a well-formed value or throws a TenNPayError, within a bound. */
export async function clientOnlyThrowsTenNPayError(r: fc.Infer<typeof arbitraryResponse>): Promise<void> {
  const headers: Record<string, string> = {}
  if (r.contentType) headers['content-type'] = r.contentType
  if (r.retryAfter !== undefined) headers['retry-after'] = r.retryAfter
  const fetchFn = (async () => new Response(NULL_BODY.has(r.status) ? null : r.body, { status: r.status, headers })) as typeof fetch
  const api = createHttpApi({ baseUrl: 'https://api.example', getAccessToken: () => 't', fetch: fetchFn, requestTimeoutMs: 2000 })
  const call =
    r.call === 'getStatus'
      ? api.getStatus({ userId: 1, userType: 0 })
      : r.call === 'initiate'
        ? api.initiate({ userId: 1, isRestartIdentification: false, correlationType: 0 })
        : api.finalize({ userId: 1, bTrustAppCallBackId: null, correlationType: 0 })
  let guard: ReturnType<typeof setTimeout> | undefined
  const hang = new Promise<'hang'>((resolve) => (guard = setTimeout(() => resolve('hang'), 5000)))
  const outcome = await Promise.race([call.then((v) => ({ ok: v }), (e: unknown) => ({ err: e })), hang])
  clearTimeout(guard)
  if (outcome === 'hang') throw new Error('the client hung')
  if ('err' in outcome) {
    if (!(outcome.err instanceof TenNPayError)) throw new Error(`threw ${String(outcome.err)}, not a TenNPayError`)
  } else {
    const v = outcome.ok as Record<string, unknown>
    if (r.call === 'finalize') {
      if (typeof v['correlationId'] !== 'string' || !Number.isInteger(v['individualId'])) throw new Error('resolved with a bad finalize answer')
    } else {
      for (const k of ['videoIdentificationUrl', 'videoIdentificationStatus', 'message']) {
        if (v[k] !== null && typeof v[k] !== 'string') throw new Error(`resolved with ${k} = ${String(v[k])}`)
      }
    }
    if (r.status < 200 || r.status > 299) throw new Error(`resolved on HTTP ${r.status}`)
  }
  if (({} as Record<string, unknown>)['polluted'] !== undefined || (Object.prototype as Record<string, unknown>)['polluted'] !== undefined) {
    throw new Error('Object.prototype was polluted')
  }
}

const STATES = new Set(['idle', 'initiating', 'identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB', 'finalized', 'failed'])

/** Any event: the model's own, and well-formed worker events with arbitrary strings, and host events with odd payloads. */
export const arbitraryEvent: fc.Arbitrary<IdentificationEvent> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...modelEvents()) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        status: fc.oneof(fc.constantFrom('PROCESSING', 'DOCUMENT_SIGN_SUCCESS', 'SIGN_SESSION_ID_SUCCESSFULLY_CREATED', ' error ', ''), fc.string()),
        url: fc.option(fc.oneof(fc.webUrl(), fc.string()), { nil: null }),
        message: fc.option(fc.string(), { nil: null }),
        at: fc.nat(),
      })
      .map(({ status, url, message, at }) => ({
        type: 'poll.status' as const,
        response: { videoIdentificationStatus: status, videoIdentificationUrl: url, message },
        at,
        nextAttemptAt: at + 1000,
      })),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ outcome: fc.oneof(fc.constantFrom('success', 'fail'), fc.string()), step: fc.option(fc.string(), { nil: undefined }), cb: fc.option(fc.string(), { nil: undefined }) })
      .map(({ outcome, step, cb }) => ({ type: 'REDIRECT', outcome, step, bTrustAppCallBackId: cb }) as unknown as IdentificationEvent),
  },
  // Unknown event types. XState itself refuses the wildcard type '*' at send (a programming error it reports), so it is left out.
  { weight: 1, arbitrary: fc.string().filter((t) => t !== '*').map((type) => ({ type }) as unknown as IdentificationEvent) },
)

/**
 * Sends a sequence of events to the chart (pure transitions): it never throws, never errors,
 * never leaves its states, and reaches `finalized` only after a `DOCUMENT_SIGN_SUCCESS` was observed.
 */
export function machineHoldsItsInvariants(events: IdentificationEvent[]): void {
  let [snapshot] = initialTransition(identificationMachine, { userId: 1, userType: 0 })
  let signSeen = false
  for (const e of events) {
    const before = topState(snapshot.value)
    ;[snapshot] = transition(identificationMachine, snapshot, e)
    if (snapshot.status === 'error') throw new Error(`the chart errored on ${JSON.stringify(e)}: ${String(snapshot.error)}`)
    const top = topState(snapshot.value)
    if (!STATES.has(top)) throw new Error(`left the chart's states: ${top}`)
    if (
      e.type === 'poll.status' &&
      (before === 'pollingA' || before === 'pollingB') &&
      String(e.response.videoIdentificationStatus).trim().toUpperCase() === 'DOCUMENT_SIGN_SUCCESS'
    ) {
      signSeen = true
    }
    if (top === 'finalized' && (!signSeen || !snapshot.context.signed)) throw new Error('finalized without DOCUMENT_SIGN_SUCCESS')
    if (top === 'failed' && !snapshot.context.failure) throw new Error('failed without a failure')
    JSON.stringify(snapshot.context) // context stays plain JSON
  }
}
