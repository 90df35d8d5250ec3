// Parses src/machine/identificationMachine.ts with Stately's machine extractor (what Stately's
// editor and the VS Code extension use to import a machine) and prints the config it reads.
const { readFileSync } = require('node:fs')
const { join } = require('node:path')
const { extractMachinesFromFile } = require('@xstate/machine-extractor')

const file = join(__dirname, '../../src/machine/identificationMachine.ts')
const result = extractMachinesFromFile(readFileSync(file, 'utf8'))
if (!result || result.machines.length !== 1) {
  console.error(`expected one machine in ${file}, found ${result ? result.machines.length : 'none'}`)
  process.exit(1)
}
process.stdout.write(JSON.stringify(result.machines[0].toConfig()))
