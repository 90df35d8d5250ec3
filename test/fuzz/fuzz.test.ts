import fc from 'fast-check'
import { describe, it } from 'vitest'
import { arbitraryEvent, arbitraryResponse, clientOnlyThrowsTenNPayError, machineHoldsItsInvariants } from './properties.js'

const RUNS = 500

describe('fuzzing (500 runs each; the chaos suite runs 10 000)', () => {
  it('the client only ever throws TenNPayError, never hangs, never pollutes prototypes', async () => {
    await fc.assert(fc.asyncProperty(arbitraryResponse, clientOnlyThrowsTenNPayError), { numRuns: RUNS, seed: 42 })
  })

  it('the chart never throws, never leaves its states, finalizes only after DOCUMENT_SIGN_SUCCESS', () => {
    fc.assert(fc.property(fc.array(arbitraryEvent, { maxLength: 40 }), machineHoldsItsInvariants), { numRuns: RUNS, seed: 42 })
  })
})
