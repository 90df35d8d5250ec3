import { readFileSync, readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { docBlocks } from '../scripts/docBlocks.js'
import { chartToMarkdown, chartToMermaid } from '../src/machine/chart.js'
import { identificationMachine } from '../src/machine/identificationMachine.js'

describe('generated docs', () => {
  it('docs/machine.md matches the machine definition (run `npm run chart`)', () => {
    expect(readFileSync(new URL('../docs/machine.md', import.meta.url), 'utf8')).toBe(chartToMarkdown(identificationMachine))
  })

  it('the README shows the current chart', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    expect(readme).toContain(chartToMermaid(identificationMachine).trimEnd())
  })

  it('every doc block marked <!-- file: … --> is that file (docs/testing.md, docs/backend.md, README)', () => {
    const docs = ['README.md', ...readdirSync(new URL('../docs', import.meta.url)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
    const copies = docs.flatMap((doc) => docBlocks(doc, readFileSync(new URL(`../${doc}`, import.meta.url), 'utf8'))).filter((b) => b.kind === 'file')
    expect(copies.map((b) => b.file)).toEqual(expect.arrayContaining(['examples/integrator/Identification.test.tsx', 'examples/integrator/app.test.ts', 'examples/integrator/flow.test.ts']))
    for (const b of copies) expect(b.code, `${b.doc}:${b.line} is ${b.file}`).toBe(readFileSync(new URL(`../${b.file}`, import.meta.url), 'utf8'))
  })

  it('docs/machine.md lists every state, invoke and guard', () => {
    const md = chartToMarkdown(identificationMachine)
    for (const s of ['idle', 'initiating', 'identifying', 'pollingA', 'phaseA', 'signing', 'pollingB', 'phaseB', 'finalized', 'failed']) {
      expect(md).toContain(`\`${s}\``)
    }
    for (const x of ['statusPoller', 'initiator', 'finalizer', 'signingReadyWithSafeUrl', 'canRetry(finalize)', 'attempt.timeout']) expect(md).toContain(x)
  })

  it('every action, guard and actor the chart names is implemented in setup()', () => {
    const impl = identificationMachine.implementations
    const names = { actions: new Set<string>(), guards: new Set<string>(), actors: new Set<string>() }
    const nameOf = (x: unknown) => (typeof x === 'string' ? x : (x as { type: string }).type)
    const walk = (node: Record<string, unknown>) => {
      for (const t of node['transitions'] as { actions?: unknown[]; guard?: unknown }[]) {
        for (const a of t.actions ?? []) names.actions.add(nameOf(a))
        if (t.guard !== undefined) names.guards.add(nameOf(t.guard))
      }
      for (const a of node['entry'] as unknown[]) names.actions.add(nameOf(a))
      for (const i of node['invoke'] as { src: string }[]) names.actors.add(i.src)
      for (const child of Object.values(node['states'] as Record<string, Record<string, unknown>>)) walk(child)
    }
    walk(JSON.parse(JSON.stringify(identificationMachine.toJSON())))
    expect(names.actions.size).toBeGreaterThan(10)
    for (const a of names.actions) expect(impl.actions, a).toHaveProperty(a)
    for (const g of names.guards) expect(impl.guards, g).toHaveProperty(g)
    expect([...names.actors].sort()).toEqual(['finalizer', 'initiator', 'statusPoller'])
    for (const a of names.actors) expect(impl.actors).toHaveProperty(a)
  })
})
