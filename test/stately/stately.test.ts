/**
 * Stately's editor imports the chart by parsing src/machine/identificationMachine.ts with
 * `@xstate/machine-extractor`. This parses it the same way (in its own folder: the extractor
 * needs xstate@4) and checks that the config it reads has every state, transition, guard,
 * action and invoke the running machine has — so what the editor shows is the chart.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import { identificationMachine } from '../../src/machine/identificationMachine.js'

const DIR = fileURLToPath(new URL('.', import.meta.url))

interface Named {
  type?: string
  kind?: string
  action?: { type: string }
}
interface ConfigNode {
  initial?: string
  states?: Record<string, ConfigNode>
  on?: Record<string, ConfigTransition | ConfigTransition[]>
  entry?: Named | Named[]
  exit?: Named | Named[]
  invoke?: { id?: string; src?: string } | { id?: string; src?: string }[]
  tags?: string | string[]
  type?: string
}
interface ConfigTransition {
  target?: string
  cond?: Named
  actions?: Named | Named[]
}

const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x])
const actionName = (a: Named) => a.action?.type ?? a.type ?? '?'

/** A config target as the machine names it: `#identification.x` → `x`, `.child` → `path.child`, `sibling` → `parent.sibling`. */
function resolve(target: string, path: string): string {
  if (target.startsWith('#identification.')) return target.slice('#identification.'.length)
  if (target.startsWith('.')) return path ? `${path}${target}` : target.slice(1)
  const parent = path.split('.').slice(0, -1).join('.')
  return parent ? `${parent}.${target}` : target
}

/** `node path → sorted lines` describing a config, in one shape for both sides. */
function fromConfig(node: ConfigNode, path = ''): string[] {
  const out: string[] = []
  const at = path || '(root)'
  for (const [event, ts] of Object.entries(node.on ?? {})) {
    for (const t of list(ts)) {
      const target = t.target === undefined ? '-' : resolve(t.target, path)
      out.push(`${at} ${event} [${t.cond?.type ?? ''}] -> ${target} / ${list(t.actions).map(actionName).join(',')}`)
    }
  }
  for (const a of list(node.entry)) out.push(`${at} entry ${actionName(a)}`)
  for (const a of list(node.exit)) out.push(`${at} exit ${actionName(a)}`)
  for (const i of list(node.invoke)) out.push(`${at} invoke ${i.src}#${i.id}`)
  for (const t of list(node.tags)) out.push(`${at} tag ${t}`)
  for (const [key, child] of Object.entries(node.states ?? {})) out.push(`${at} state ${key}`, ...fromConfig(child, path ? `${path}.${key}` : key))
  return out.sort()
}

interface JsonNode {
  key: string
  states: Record<string, JsonNode>
  transitions: { eventType: string; target?: string[]; guard?: unknown; actions?: unknown[] }[]
  entry: unknown[]
  exit: unknown[]
  invoke: { id: string; src: string }[]
  tags?: string[]
}

/** The same lines from the running machine (`machine.toJSON()`). */
function fromMachine(node: JsonNode, path = ''): string[] {
  const out: string[] = []
  const at = path || '(root)'
  const name = (x: unknown) => (typeof x === 'string' ? x : ((x as { type?: string })?.type ?? '?'))
  for (const t of node.transitions) {
    const target = t.target?.length ? t.target.map((x) => x.replace(/^#identification\./, '')).join(',') : '-'
    out.push(`${at} ${t.eventType} [${t.guard === undefined ? '' : name(t.guard)}] -> ${target} / ${(t.actions ?? []).map(name).join(',')}`)
  }
  for (const a of node.entry) out.push(`${at} entry ${name(a)}`)
  for (const a of node.exit) out.push(`${at} exit ${name(a)}`)
  for (const i of node.invoke) out.push(`${at} invoke ${i.src}#${i.id}`)
  for (const t of node.tags ?? []) out.push(`${at} tag ${t}`)
  for (const [key, child] of Object.entries(node.states)) out.push(`${at} state ${key}`, ...fromMachine(child, path ? `${path}.${key}` : key))
  return out.sort()
}

let extracted: ConfigNode

describe("Stately's machine extractor reads the chart as it runs", () => {
  beforeAll(() => {
    // Its own lock file and node_modules (xstate@4 as the extractor's peer); installed on first use.
    if (!existsSync(`${DIR}node_modules/@xstate/machine-extractor`)) {
      execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefix', DIR], { stdio: 'pipe', timeout: 120_000 })
    }
    extracted = JSON.parse(execFileSync(process.execPath, [`${DIR}extract.cjs`], { encoding: 'utf8', timeout: 60_000 })) as ConfigNode
  }, 150_000)

  it('finds the one machine, with its id, initial state and every top-level state', () => {
    expect((extracted as { id?: string }).id).toBe('identification')
    expect(extracted.initial).toBe('idle')
    expect(Object.keys(extracted.states ?? {})).toEqual(Object.keys(identificationMachine.root.states))
  })

  it('has every transition (event, guard, target, actions), entry, exit, invoke and tag the machine has', () => {
    const running = fromMachine(JSON.parse(JSON.stringify(identificationMachine.toJSON())) as JsonNode)
    const parsed = fromConfig(extracted)
    expect(parsed).toEqual(running)
    expect(parsed.length).toBeGreaterThan(80)
  })
})
