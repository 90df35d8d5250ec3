/** Writes docs/machine.md from the machine definition (`npm run chart`; `--check` fails when it is stale). */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chartToMarkdown } from '../src/machine/chart.js'
import { identificationMachine } from '../src/machine/identificationMachine.js'

const file = fileURLToPath(new URL('../docs/machine.md', import.meta.url))
const text = chartToMarkdown(identificationMachine)
if (process.argv.includes('--check')) {
  let current = ''
  try {
    current = readFileSync(file, 'utf8')
  } catch {
    /* missing */
  }
  if (current !== text) {
    console.error('docs/machine.md is out of date: run `npm run chart`')
    process.exit(1)
  }
  console.log('docs/machine.md is up to date')
} else {
  writeFileSync(file, text)
  console.log(`wrote ${file}`)
}
