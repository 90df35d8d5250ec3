import * as z from 'zod/mini'

const int32 = z.int().check(z.minimum(1), z.maximum(2147483647))
const nullableString = z.optional(z.nullable(z.string()))

/** The status and initiate answer. A missing field reads as `null`. */
export const statusResponseSchema = z.object({
  videoIdentificationUrl: nullableString,
  videoIdentificationStatus: nullableString,
  message: nullableString,
})

/** The finalize answer. */
export const finalizeResponseSchema = z.object({
  correlationId: z.string().check(z.minLength(1), z.maxLength(256)),
  individualId: z.int(),
})

/**
 * The initiate body. The audit fields are `string | null` in the provider's documentation; a
 * `null` (or missing) field is left out of the body sent.
 */
export const initiateRequestSchema = z.object({
  userId: int32,
  isRestartIdentification: z.boolean(),
  correlationType: z.int().check(z.minimum(0)),
  localTimezone: nullableString,
  userAgent: nullableString,
  browserLanguage: nullableString,
  userLanguage: nullableString,
  deviceName: nullableString,
})

/** The finalize body. */
export const finalizeRequestSchema = z.object({
  userId: int32,
  bTrustAppCallBackId: z.nullable(z.string()),
  correlationType: z.int().check(z.minimum(0)),
})

/** The status request's path parameters. */
export const statusRequestSchema = z.object({
  userId: int32,
  userType: z.union([z.literal(0), z.literal(1)]),
})

/** The token endpoint's answer. */
export const tokenResponseSchema = z.object({
  access_token: z.string().check(z.minLength(1)),
  expires_in: z.optional(z.number()),
  token_type: z.optional(z.string()),
  scope: z.optional(z.string()),
})
