import * as z from 'zod/mini'
import { DEFAULT_POLLING } from './schedule.js'
import type { ResolvedInput, ResolvedPolling, UserType } from './types.js'

const userId = z.int().check(z.minimum(1), z.maximum(2147483647))
const userType = z.union([z.literal(0), z.literal(1)])
const ms = z.int().check(z.minimum(0), z.maximum(24 * 3600_000))
/** A duration that must be at least 1 ms: one check per bound, so a bad value gets one message. */
const positiveMs = z.int().check(z.minimum(1), z.maximum(24 * 3600_000))
const text = z.string().check(z.maxLength(512))
/** An audit field: the provider documents them as `string | null`; `null` means "not sent". */
const auditText = z.optional(z.nullable(text))

/** The zod schema of the chart's input ({@link IdentificationInput}). */
export const identificationInputSchema = z.strictObject({
  userId,
  userType,
  pendingStatuses: z.optional(z.array(text).check(z.maxLength(64))),
  allowedHosts: z.optional(z.array(text).check(z.maxLength(64))),
  polling: z.optional(
    z.strictObject({
      intervalMs: z.optional(positiveMs),
      maxIntervalMs: z.optional(positiveMs),
      jitter: z.optional(z.number().check(z.minimum(0), z.maximum(1))),
      phaseTimeoutMs: z.optional(positiveMs),
      finalizeTimeoutMs: z.optional(positiveMs),
      failConfirmMs: z.optional(ms),
    }),
  ),
  initiate: z.optional(
    z.strictObject({
      localTimezone: auditText,
      userAgent: auditText,
      browserLanguage: auditText,
      userLanguage: auditText,
      deviceName: auditText,
      correlationType: z.optional(z.int().check(z.minimum(0), z.maximum(255))),
    }),
  ),
  finalize: z.optional(
    z.strictObject({
      bTrustAppCallBackId: z.optional(z.nullable(text)),
      correlationType: z.optional(z.int().check(z.minimum(0), z.maximum(255))),
    }),
  ),
})

interface Issue {
  code?: string
  path?: PropertyKey[]
  minimum?: unknown
  maximum?: unknown
  expected?: unknown
  keys?: string[]
  values?: unknown[]
}

/** One line per zod issue, naming the field: `polling.intervalMs: must be >= 1`. */
export function describeIssues(issues: readonly Issue[], prefix = ''): string {
  return issues
    .map((i) => {
      const field = prefix + (i.path ?? []).map(String).join('.')
      let what: string
      switch (i.code) {
        case 'too_small':
          what = `must be >= ${String(i.minimum)}`
          break
        case 'too_big':
          what = `must be <= ${String(i.maximum)}`
          break
        case 'invalid_type':
          what = `must be ${String(i.expected)}`
          break
        case 'unrecognized_keys':
          return `${field ? field + '.' : ''}${(i.keys ?? []).join(', ')}: unknown option`
        case 'invalid_union':
        case 'invalid_value':
          what = 'is not one of the allowed values'
          break
        default:
          what = 'is invalid'
      }
      return `${field || '(input)'}: ${what}`
    })
    .join('; ')
}

/**
 * Validates the chart's input and fills in the defaults.
 * @throws TypeError naming every bad field, e.g. `userId: must be >= 1`
 */
export function resolveInput(input: unknown): ResolvedInput {
  const r = identificationInputSchema.safeParse(input)
  if (!r.success) throw new TypeError(`Invalid identification input: ${describeIssues(r.error.issues as Issue[])}`)
  const v = r.data
  const polling: ResolvedPolling = { ...DEFAULT_POLLING }
  for (const [k, val] of Object.entries(v.polling ?? {})) if (val !== undefined) polling[k as keyof ResolvedPolling] = val
  if (polling.maxIntervalMs < polling.intervalMs) {
    throw new TypeError(
      `Invalid identification input: polling.maxIntervalMs: must be >= polling.intervalMs (${polling.intervalMs})`,
    )
  }
  return {
    userId: v.userId,
    userType: v.userType as UserType,
    pendingStatuses: v.pendingStatuses ?? [],
    allowedHosts: v.allowedHosts ?? [],
    polling,
    initiate: withoutNulls(v.initiate ?? {}),
    finalize: {
      bTrustAppCallBackId: v.finalize?.bTrustAppCallBackId ?? null,
      correlationType: v.finalize?.correlationType ?? 0,
    },
  }
}

/** The audit fields that have a value: `null` and `undefined` ones are left out of the body. */
function withoutNulls<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], null | undefined> } {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) out[k] = v
  return out as { [K in keyof T]?: Exclude<T[K], null | undefined> }
}
