/**
 * The code blocks and links of the Markdown docs, for scripts/integrator.ts and test/docs.test.ts.
 *
 * A ```ts / ```tsx block is a whole module that must compile, unless the line before its fence
 * (blank lines aside) is one of these comments:
 *
 * - `<!-- fragment: why -->` — it uses names defined elsewhere; not compiled (keep these few);
 * - `<!-- runnable -->` — it also runs, needing nothing but the package (the simulator);
 * - `<!-- file: examples/integrator/app.ts -->` — it is that file of the repository, verbatim.
 */

/** One ```ts or ```tsx block of a Markdown file. */
export interface DocBlock {
  /** The Markdown file, as given to {@link docBlocks}. */
  doc: string
  /** The line of the first line of code (1-based). */
  line: number
  lang: 'ts' | 'tsx'
  code: string
  kind: 'module' | 'fragment' | 'runnable' | 'file'
  /** For `kind: 'file'`: the repository path the block is a copy of. */
  file?: string
  /** For `kind: 'fragment'`: why. */
  reason?: string
}

const FENCE = /^```(\w*)\s*$/
const MARKER = /^<!--\s*(fragment|runnable|file)\s*:?\s*(.*?)\s*-->$/

/** The TypeScript blocks of a Markdown text, with their markers. */
export function docBlocks(doc: string, text: string): DocBlock[] {
  const lines = text.split('\n')
  const blocks: DocBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!)
    if (!open) continue
    let end = i + 1
    while (end < lines.length && lines[end]!.trimEnd() !== '```') end++
    const lang = open[1]!
    if (lang === 'ts' || lang === 'tsx' || lang === 'typescript') {
      let before = i - 1
      while (before >= 0 && lines[before]!.trim() === '') before--
      const marker = before >= 0 ? MARKER.exec(lines[before]!.trim()) : null
      const code = lines.slice(i + 1, end).join('\n') + '\n'
      const block: DocBlock = { doc, line: i + 2, lang: lang === 'tsx' ? 'tsx' : 'ts', code, kind: 'module' }
      if (marker?.[1] === 'fragment') Object.assign(block, { kind: 'fragment', reason: marker[2] || '(no reason given)' })
      else if (marker?.[1] === 'runnable') block.kind = 'runnable'
      else if (marker?.[1] === 'file') Object.assign(block, { kind: 'file', file: marker[2] })
      blocks.push(block)
    }
    i = end
  }
  return blocks
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]+>/g, '')
    .replace(/[^\p{L}\p{N}\p{M} _-]/gu, '')
    .replace(/ /g, '-')
}

/** The anchors of a Markdown text's headings (a repeated heading gets `-1`, `-2`, … as on GitHub). */
export function anchors(text: string): Set<string> {
  const out = new Set<string>()
  const seen = new Map<string, number>()
  for (const line of withoutCode(text).split('\n')) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (!h) continue
    const base = slug(h[1]!)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

/** The text with fenced blocks and inline code blanked (links in code are not links). */
function withoutCode(text: string): string {
  return text.replace(/^```[^\n]*\n[\s\S]*?^```\s*$/gm, (m) => m.replace(/[^\n]/g, ' ')).replace(/`[^`\n]*`/g, (m) => ' '.repeat(m.length))
}

/** The links of a Markdown text that are not absolute URLs: `{ target, line }`. */
export function relativeLinks(text: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = []
  const lines = withoutCode(text).split('\n')
  for (const [i, line] of lines.entries()) {
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|\bhref="([^"]+)"/g)) {
      const target = m[1] ?? m[2]!
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue
      out.push({ target, line: i + 1 })
    }
  }
  return out
}
