/**
 * Writes docs/machine.md and the Mermaid block of README.md from the machine definition
 * (`npm run chart`; `--check` fails when either is stale).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chartToMarkdown, chartToMermaid } from '../src/machine/chart.js'
import { identificationMachine } from '../src/machine/identificationMachine.js'

const read = (file: string) => {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}
const docFile = fileURLToPath(new URL('../docs/machine.md', import.meta.url))
const readmeFile = fileURLToPath(new URL('../README.md', import.meta.url))
const readme = read(readmeFile)
const block = /```mermaid\nstateDiagram-v2\n[\s\S]*?```/
if (!block.test(readme)) throw new Error('README.md has no ```mermaid stateDiagram-v2 block to update')
const wanted = new Map([
  [docFile, chartToMarkdown(identificationMachine)],
  [readmeFile, readme.replace(block, () => '```mermaid\n' + chartToMermaid(identificationMachine) + '```')],
])
const stale = [...wanted].filter(([file, text]) => read(file) !== text).map(([file]) => file)
if (process.argv.includes('--check')) {
  if (stale.length > 0) {
    console.error(`${stale.join(', ')} out of date: run \`npm run chart\``)
    process.exit(1)
  }
  console.log('docs/machine.md and README.md are up to date')
} else {
  for (const file of stale) {
    writeFileSync(file, wanted.get(file)!)
    console.log(`wrote ${file}`)
  }
}
