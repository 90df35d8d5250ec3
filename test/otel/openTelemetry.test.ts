/**
 * OpenTelemetry through `@opentelemetry/api`, with the SDK's in-memory exporters registered:
 * the spans and metrics of a whole flow and of each failure reason, and no token, secret or user
 * id in any attribute (issue 12).
 */
import { metrics, trace } from '@opentelemetry/api'
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createOpenTelemetry } from '../../src/adapters/otel/index.js'
import { createIdentificationService } from '../../src/adapters/server/identificationService.js'
import { createMemoryFlowStore } from '../../src/adapters/server/memoryFlowStore.js'
import type { FlowView } from '../../src/adapters/server/types.js'
import type { Behaviour } from '../../src/simulator/scenarios.js'
import { simSetup, until } from '../helpers.js'

const spans = new InMemorySpanExporter()
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 })
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
const meterProvider = new MeterProvider({ readers: [reader] })

beforeAll(() => {
  trace.setGlobalTracerProvider(tracerProvider)
  metrics.setGlobalMeterProvider(meterProvider)
})
afterAll(async () => {
  trace.disable()
  metrics.disable()
  await meterProvider.shutdown()
})

/** Runs one flow through the service with telemetry; the simulated user completes or fails steps as `user` says. */
async function flow(userId: number, behaviour: Behaviour, user: { identification?: 'success' | 'fail' | 'none'; signing?: 'success' | 'fail' | 'none' } = {}) {
  const env = simSetup({ behaviours: { [userId]: behaviour } })
  const store = createMemoryFlowStore({ now: () => env.clock.now() })
  const service = createIdentificationService({
    api: env.api, store, clock: env.clock, telemetry: createOpenTelemetry(),
    polling: { phaseTimeoutMs: 20_000, finalizeTimeoutMs: 20_000, failConfirmMs: 5000 },
  })
  let view: FlowView = await service.start({ userId, userType: 0 })
  const step = async (s: 'identification' | 'signing') => {
    const click = user[s] ?? 'success'
    if (click !== 'none') env.sim.act(userId, s, click)
    await service.redirect(view.id, { outcome: click === 'success' ? 'success' : 'fail' })
  }
  if (view.state === 'identifying') {
    await step('identification')
    await until(env.clock, async () => !['pollingA'].includes((await service.get(view.id))!.state), 200_000)
    view = (await service.get(view.id))!
    if (view.state === 'signing') {
      await step('signing')
      await until(env.clock, async () => ['finalized', 'failed'].includes((await service.get(view.id))!.state), 200_000)
    }
  }
  view = (await service.get(view.id))!
  await service.close()
  return { view, tokens: env.tokens }
}

describe('OpenTelemetry: spans and metrics of the service', () => {
  it('a finalized flow: one trace with the flow, every phase and every provider request', async () => {
    spans.reset()
    const { view, tokens } = await flow(601, {})
    expect(view.state).toBe('finalized')
    const all = spans.getFinishedSpans()
    const traceIds = new Set(all.map((s) => s.spanContext().traceId))
    expect(traceIds.size).toBe(1) // one trace per flow, across every phase and write
    const names = all.map((s) => s.name)
    for (const n of ['identification flow', 'identification initiate', 'identification phase A', 'identification phase B', 'identification finalize', 'identification finalized', 'GET', 'POST']) {
      expect(names).toContain(n)
    }
    const gets = all.filter((s) => s.name === 'GET')
    expect(gets.length).toBeGreaterThan(1)
    expect(gets[0]!.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.template': '/Enrollment/{id}/{userType}/true/get-identification-process-status',
      'http.response.status_code': 200,
    })
    // Requests are children of their phase.
    const phaseA = all.find((s) => s.name === 'identification phase A')!
    expect(gets.some((g) => g.parentSpanContext?.spanId === phaseA.spanContext().spanId)).toBe(true)
    // Nothing secret or personal in any attribute or name.
    const text = JSON.stringify(all.map((s) => [s.name, s.attributes, s.events]))
    for (const secret of [...tokens, 'demo-secret', '"601"', ':601', '/601/']) expect(text).not.toContain(secret)
    expect(text).not.toMatch(/"userId"|user\.id|enduser/)

    const { resourceMetrics } = await collect()
    const m = metricsByName(resourceMetrics)
    expect(sum(m['identification.flows.started'])).toBeGreaterThanOrEqual(1)
    expect(sum(m['identification.flows.finalized'])).toBeGreaterThanOrEqual(1)
    expect(sum(m['identification.polls'])).toBeGreaterThan(1)
    expect(m['identification.provider.request.duration']).toBeDefined()
    expect(m['identification.phase.duration']).toBeDefined()
    // No data point is labelled with the user id (its values are durations and counts, whose
    // digits may spell anything).
    const labels = Object.values(m).flatMap((x) => x.dataPoints.map((p) => p.attributes))
    expect(labels.length).toBeGreaterThan(0)
    expect(JSON.stringify(labels)).not.toMatch(/\b601\b/)
  }, 60_000)

  it.each([
    ['vendor-error', 'A', { phaseA: 'vendor-error' }, {}],
    ['timeout', 'A', { phaseA: 'timeout' }, {}],
    ['unauthorized', 'B', { phaseB: 'unauthorized' }, {}],
    ['rejected', 'initiate', { initiate: 'rejected' }, {}],
    ['redirect-failed', 'A', {}, { identification: 'none' }],
    ['unsafe-url', 'A', { phaseA: 'unsafe-url' }, {}],
  ] as const)('a flow that fails with %s (%s): counted by reason and phase, its trace ends in failed', async (reason, phase, behaviour, user) => {
    spans.reset()
    const userId = 610 + reason.length
    const { view } = await flow(userId, behaviour as Behaviour, user)
    expect(view.state).toBe('failed')
    expect(view.failure).toMatchObject({ reason, phase })
    const end = spans.getFinishedSpans().find((s) => s.name === 'identification failed')!
    expect(end.attributes).toMatchObject({ 'identification.reason': reason, 'identification.phase': phase })
    const { resourceMetrics } = await collect()
    const failed = metricsByName(resourceMetrics)['identification.flows.failed']!
    expect(failed.dataPoints.some((p) => p.attributes['identification.reason'] === reason && p.attributes['identification.phase'] === phase)).toBe(true)
  }, 60_000)

  it('cancelled: counted without a phase', async () => {
    const env = simSetup()
    const service = createIdentificationService({ api: env.api, store: createMemoryFlowStore({ now: () => env.clock.now() }), clock: env.clock, telemetry: createOpenTelemetry() })
    const v = await service.start({ userId: 620, userType: 0 })
    await service.cancel(v.id)
    await service.close()
    const failed = metricsByName((await collect()).resourceMetrics)['identification.flows.failed']!
    expect(failed.dataPoints.some((p) => p.attributes['identification.reason'] === 'cancelled' && p.attributes['identification.phase'] === 'none')).toBe(true)
  })

  it('gauges: flows working and parked, from the store', async () => {
    const env = simSetup()
    const service = createIdentificationService({ api: env.api, store: createMemoryFlowStore({ now: () => env.clock.now() }), clock: env.clock, telemetry: createOpenTelemetry() })
    await service.start({ userId: 621, userType: 0 })
    await service.start({ userId: 622, userType: 0 })
    await collect() // the first collection starts the read
    await new Promise((r) => setTimeout(r, 20))
    const m = metricsByName((await collect()).resourceMetrics)
    expect(m['identification.flows.parked']!.dataPoints.at(-1)!.value).toBeGreaterThanOrEqual(2)
    expect(m['identification.flows.working']).toBeDefined()
    await service.close()
  })
})

async function collect() {
  const r = await reader.collect()
  return r
}
type MetricData = { descriptor: { name: string }; dataPoints: { attributes: Record<string, unknown>; value: unknown }[] }
function metricsByName(resourceMetrics: { scopeMetrics: { metrics: unknown[] }[] }) {
  const out: Record<string, MetricData> = {}
  for (const sm of resourceMetrics.scopeMetrics) for (const m of sm.metrics as MetricData[]) out[m.descriptor.name] = m
  return out
}
const sum = (m: MetricData | undefined) => (m?.dataPoints ?? []).reduce((n, p) => n + (typeof p.value === 'number' ? p.value : 0), 0)
