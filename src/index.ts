export * from './machine/index.js'
export {
  createHttpApi,
  TenNPayError,
  kindForStatus,
  parseRetryAfter,
  statusResponseSchema,
  finalizeResponseSchema,
  initiateRequestSchema,
  finalizeRequestSchema,
  statusRequestSchema,
  tokenResponseSchema,
} from './adapters/http/index.js'
export type { HttpApiOptions, GetAccessToken, TenNPayErrorOptions } from './adapters/http/index.js'
