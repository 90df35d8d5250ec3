export { useIdentification } from './useIdentification.js'
export type { UseIdentification } from './useIdentification.js'
