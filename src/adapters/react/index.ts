export { useIdentification } from './useIdentification.js'
export type { UseIdentification, UseIdentificationTextOptions } from './useIdentification.js'
export { describeFailure, describeState } from '../../messages/index.js'
