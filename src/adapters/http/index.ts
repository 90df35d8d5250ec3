export { createHttpApi } from './httpApi.js'
export type { HttpApiOptions, GetAccessToken } from './httpApi.js'
export type { HttpTransport, HttpAnswer, TransportRequest } from './transport.js'
export { TenNPayError, kindForStatus, parseRetryAfter } from './errors.js'
export type { TenNPayErrorOptions, ErrorCause } from './errors.js'
export {
  statusResponseSchema,
  finalizeResponseSchema,
  initiateRequestSchema,
  finalizeRequestSchema,
  statusRequestSchema,
  tokenResponseSchema,
} from './schemas.js'
