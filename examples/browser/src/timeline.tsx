import { useMemo, useState } from 'react'

/** One line of the timeline. */
export interface Entry {
  at: number
  kind: 'state' | 'poll' | 'request' | 'error'
  text: string
}

/** Adds to the timeline; kept in sessionStorage so it survives the provider's redirects. */
export interface TimelineApi {
  entries: Entry[]
  add(kind: Entry['kind'], text: string): void
  clear(): void
}

const KEY = 'demo:timeline'
const load = (): Entry[] => {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) ?? '[]') as Entry[]
  } catch {
    return []
  }
}

export function useTimeline(): TimelineApi {
  const [entries, setEntries] = useState<Entry[]>(load)
  return useMemo(
    () => ({
      entries,
      add(kind, text) {
        setEntries((prev) => {
          const next = [...prev, { at: Date.now(), kind, text }].slice(-300)
          sessionStorage.setItem(KEY, JSON.stringify(next))
          return next
        })
      },
      clear() {
        sessionStorage.removeItem(KEY)
        setEntries([])
      },
    }),
    [entries],
  )
}

/** Every string is rendered as text (React escapes it), never as HTML. */
export function Timeline({ entries }: { entries: Entry[] }) {
  const start = entries[0]?.at ?? 0
  return (
    <ol className="timeline" data-testid="timeline">
      {entries.map((e, i) => (
        <li key={i} className={`k-${e.kind}`}>
          <span className="t">+{((e.at - start) / 1000).toFixed(1)} s</span>
          <span className={`k-${e.kind}`}>{e.kind}</span>
          <span>{e.text}</span>
        </li>
      ))}
    </ol>
  )
}
