export { createOpenTelemetry, URL_TEMPLATES } from './openTelemetry.js'
export type { OpenTelemetryOptions } from './openTelemetry.js'
export type { ServiceTelemetry, PhaseTelemetry } from '../server/telemetry.js'
