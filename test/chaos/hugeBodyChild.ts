/**
 * Runs the item-7 measurement (test/chaos/hostile.ts) in a fresh process, so that its RSS
 * baseline is not the high-water mark left behind by the runs before it. Sends the figures to
 * the parent over IPC and exits.
 */
import { measureHugeBody } from './hostile.js'

const figures = await measureHugeBody()
process.send!(figures, () => process.exit(0))
