/** `npm run size`: the browser bundle, minified then gzip -9 (the measurement lives in bench/size.ts). */
import { measureSizes } from '../bench/size.js'

const s = await measureSizes()
const rows = [s.browserEntry, s.reactEntry, s.ownCode, ...s.dependencies, s.bareLoop]
if (process.argv.includes('--json')) console.log(JSON.stringify(s, null, 2))
else {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`
  console.log('bundle'.padEnd(76), 'minified'.padStart(10), 'gzip -9'.padStart(10))
  for (const f of rows) console.log(f.name.padEnd(76), kb(f.minBytes).padStart(10), kb(f.gzipBytes).padStart(10))
}
