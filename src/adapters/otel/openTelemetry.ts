import { createRequire } from 'node:module'
import type { Attributes, Counter, Histogram, Meter, Span, Tracer } from '@opentelemetry/api'
import type { FailurePhase } from '../../machine/types.js'
import type { RequestOperation, RequestResult } from '../../machine/workers.js'
import type { PhaseTelemetry, ServiceTelemetry } from '../server/telemetry.js'
import type { FlowCounts } from '../server/types.js'

type OtelApi = typeof import('@opentelemetry/api')

/** Options of {@link createOpenTelemetry}. */
export interface OpenTelemetryOptions {
  /** The tracer. @default `trace.getTracer('10npay-identification')` from the global provider */
  tracer?: Tracer
  /** The meter. @default `metrics.getMeter('10npay-identification')` from the global provider */
  meter?: Meter
}

/** The provider's endpoints as URL templates (the user's id is never in an attribute). */
export const URL_TEMPLATES: Record<RequestOperation, { method: 'GET' | 'POST'; template: string }> = {
  initiate: { method: 'POST', template: '/Enrollment/initiate-external-identification' },
  status: { method: 'GET', template: '/Enrollment/{id}/{userType}/true/get-identification-process-status' },
  finalize: { method: 'POST', template: '/Enrollment/finalize-external-identification' },
}

/** The request spans' options, built once: a poll allocates none. */
const REQUEST_SPAN = Object.fromEntries(
  (Object.keys(URL_TEMPLATES) as RequestOperation[]).map((op) => [
    op,
    { kind: 2 /* SpanKind.CLIENT */, attributes: { 'http.request.method': URL_TEMPLATES[op].method, 'url.template': URL_TEMPLATES[op].template, 'identification.operation': op } },
  ]),
) as unknown as Record<RequestOperation, { kind: number; attributes: Attributes }>
const OK_ATTRS = Object.fromEntries(
  (Object.keys(URL_TEMPLATES) as RequestOperation[]).map((op) => [op, { 'identification.operation': op, 'identification.outcome': 'ok' }]),
) as unknown as Record<RequestOperation, Attributes>

const PHASE_SPAN: Record<FailurePhase, string> = {
  initiate: 'identification initiate',
  A: 'identification phase A',
  B: 'identification phase B',
  finalize: 'identification finalize',
}

function loadApi(): OtelApi {
  try {
    return createRequire(import.meta.url)('@opentelemetry/api') as OtelApi
  } catch (err) {
    throw new Error('createOpenTelemetry needs the @opentelemetry/api package (an optional peer dependency): npm install @opentelemetry/api', { cause: err })
  }
}

/**
 * Traces and metrics of the identification service through `@opentelemetry/api` only: pass the
 * result as the service's `telemetry`. With no OpenTelemetry SDK registered every call is a
 * no-op (the benchmark measures it). See docs/operations.md for every span and metric.
 *
 * - a trace per flow: a root span `identification flow` when the flow is created, whose context
 *   is stored with the flow, and under it a span per phase on each replica that runs it
 *   (`identification initiate`, `… phase A`, `… phase B`, `… finalize`);
 * - a client span per provider request, after the HTTP semantic conventions (`GET` / `POST`,
 *   `http.request.method`, `url.template`, `http.response.status_code`, `error.type`);
 * - metrics: flows started, finalized, failed (by `reason` and `phase`), phase durations, polls
 *   per phase, provider request durations (by `operation` and `outcome`), flows working and
 *   parked (gauges, from the store).
 *
 * No attribute holds a token, a secret or a user id.
 *
 * @example
 * const service = createIdentificationService({ api, store, telemetry: createOpenTelemetry() })
 */
export function createOpenTelemetry(options: OpenTelemetryOptions = {}): ServiceTelemetry {
  const otel = loadApi()
  const { trace, context, SpanKind, SpanStatusCode, TraceFlags, ValueType } = otel
  const tracer = options.tracer ?? trace.getTracer('10npay-identification')
  const meter = options.meter ?? otel.metrics.getMeter('10npay-identification')

  const started: Counter = meter.createCounter('identification.flows.started', { description: 'Identification flows created', unit: '{flow}' })
  const finalized: Counter = meter.createCounter('identification.flows.finalized', { description: 'Flows that reached finalized', unit: '{flow}' })
  const failed: Counter = meter.createCounter('identification.flows.failed', { description: 'Flows that reached failed, by reason and phase', unit: '{flow}' })
  const phaseDuration: Histogram = meter.createHistogram('identification.phase.duration', { description: 'How long a phase ran on one replica', unit: 's', valueType: ValueType.DOUBLE })
  const polls: Counter = meter.createCounter('identification.polls', { description: 'Status requests, by phase', unit: '{request}' })
  const requestDuration: Histogram = meter.createHistogram('identification.provider.request.duration', {
    description: 'Provider requests, by operation and outcome',
    unit: 's',
    valueType: ValueType.DOUBLE,
  })

  /** The stored trace context as a remote parent. */
  const parentOf = (traceparent: string | undefined) => {
    const m = traceparent ? /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent) : null
    if (!m) return context.active()
    return trace.setSpanContext(context.active(), { traceId: m[1]!, spanId: m[2]!, traceFlags: Number.parseInt(m[3]!, 16), isRemote: true })
  }

  return {
    flowCreated(flow) {
      started.add(1, { 'identification.user_type': flow.userType })
      const span = tracer.startSpan('identification flow', { kind: SpanKind.INTERNAL, attributes: { 'identification.flow.id': flow.id, 'identification.user_type': flow.userType } })
      const sc = span.spanContext()
      span.end()
      if (!trace.isSpanContextValid(sc)) return undefined
      return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & TraceFlags.SAMPLED ? 1 : 0).toString(16).padStart(2, '0')}`
    },
    phase(flow, phase): PhaseTelemetry {
      const t0 = performance.now()
      const attrs: Attributes = { 'identification.flow.id': flow.id, 'identification.phase': phase }
      const phaseAttrs: Attributes = { 'identification.phase': phase }
      const span: Span = tracer.startSpan(PHASE_SPAN[phase], { kind: SpanKind.INTERNAL, attributes: attrs }, parentOf(flow.trace))
      const tracing = span.isRecording()
      const ctx = trace.setSpan(context.active(), span)
      let ended = false
      return {
        request(operation) {
          if (operation === 'status') polls.add(1, phaseAttrs)
          const r0 = performance.now()
          // A phase span that does not record (no SDK, or not sampled): no request spans under it.
          if (!tracing) {
            return (result: RequestResult) =>
              requestDuration.record((performance.now() - r0) / 1000, result.error ? { 'identification.operation': operation, 'identification.outcome': result.error.kind } : OK_ATTRS[operation])
          }
          const req = tracer.startSpan(URL_TEMPLATES[operation].method, REQUEST_SPAN[operation], ctx)
          return (result: RequestResult) => {
            const outcome = result.error ? result.error.kind : 'ok'
            // Attributes only on a span that records (with no SDK nothing is built per poll).
            if (req.isRecording()) {
              const status = result.error?.httpStatus ?? (result.error ? undefined : 200)
              if (status !== undefined) req.setAttribute('http.response.status_code', status)
              if (result.error) {
                req.setAttribute('error.type', status !== undefined && status >= 400 ? String(status) : result.error.kind)
                req.setStatus({ code: SpanStatusCode.ERROR })
              }
              if (result.providerStatus) req.setAttribute('identification.provider.status', result.providerStatus.slice(0, 64))
            }
            req.end()
            requestDuration.record((performance.now() - r0) / 1000, outcome === 'ok' ? OK_ATTRS[operation] : { 'identification.operation': operation, 'identification.outcome': outcome })
          }
        },
        end(how) {
          if (ended) return
          ended = true
          span.setAttribute('identification.phase.outcome', how)
          span.end()
          phaseDuration.record((performance.now() - t0) / 1000, { 'identification.phase': phase, 'identification.phase.outcome': how })
        },
      }
    },
    flowEnded(view, traceparent) {
      if (view.state === 'finalized') finalized.add(1)
      else if (view.state === 'failed') failed.add(1, { 'identification.reason': view.failure.reason, 'identification.phase': view.failure.phase ?? 'none' })
      const span = tracer.startSpan(
        `identification ${view.state}`,
        { kind: SpanKind.INTERNAL, attributes: { 'identification.flow.id': view.id, 'identification.state': view.state, ...(view.state === 'failed' && { 'identification.reason': view.failure.reason, 'identification.phase': view.failure.phase ?? 'none' }) } },
        parentOf(traceparent),
      )
      span.end()
    },
    observeCounts(read) {
      let last: FlowCounts | undefined
      let reading = false
      const refresh = () => {
        if (reading) return
        reading = true
        read().then(
          (c) => {
            last = c
            reading = false
          },
          () => {
            reading = false
          },
        )
      }
      const working = meter.createObservableGauge('identification.flows.working', { description: 'Flows with work for a replica (store)', unit: '{flow}' })
      const parked = meter.createObservableGauge('identification.flows.parked', { description: 'Flows waiting for a person (store)', unit: '{flow}' })
      meter.addBatchObservableCallback(
        (result) => {
          refresh()
          if (!last) return
          result.observe(working, last.working)
          result.observe(parked, last.parked)
        },
        [working, parked],
      )
      refresh()
    },
  }
}
