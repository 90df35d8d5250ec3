/**
 * Hostile response bodies for the fault profile: one that trickles, one that is huge. Both are
 * pull-driven streams — nothing is produced before the client reads, at most one timer is
 * pending, and everything stops when the client cancels the body (over HTTP: when the socket
 * closes).
 */

const encoder = new TextEncoder()
const CHUNK = 65_536
let filler: Uint8Array | undefined
/**
 * 64 KiB of `a`, made once and shared by every huge body: consumers only read chunks (a socket
 * write, a body reader), so hundreds of huge answers cost no allocation per chunk.
 */
const fillerChunk = () => (filler ??= new Uint8Array(CHUNK).fill(0x61))

/**
 * `text`, one byte at once and then one byte every `byteMs`. Bounded: it ends after
 * `text.length` bytes; a cancel clears the pending timer.
 */
export function trickleBody(text: string, byteMs: number): ReadableStream<Uint8Array> {
  const bytes = encoder.encode(text)
  let at = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let wake: (() => void) | undefined
  let cancelled = false
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (at > 0) {
          await new Promise<void>((resolve) => {
            wake = resolve
            timer = setTimeout(resolve, byteMs)
          })
          timer = undefined
          wake = undefined
          if (cancelled) return
        }
        if (at >= bytes.length) return controller.close()
        controller.enqueue(bytes.subarray(at, at + 1))
        at++
        if (at >= bytes.length) controller.close()
      },
      cancel() {
        cancelled = true
        if (timer !== undefined) clearTimeout(timer)
        wake?.()
      },
    },
    { highWaterMark: 0 },
  )
}

/**
 * `head`, then `a` filler, then `tail`: `totalBytes` in all (at least `head` + `tail`), in 64 KiB
 * chunks handed out as they are read (one shared, never-written filler chunk). Bounded: at most `totalBytes / 64 KiB + 2` chunks.
 */
export function hugeBody(head: string, tail: string, totalBytes: number): ReadableStream<Uint8Array> {
  const h = encoder.encode(head)
  const t = encoder.encode(tail)
  let fill = Math.max(0, totalBytes - h.length - t.length)
  let stage: 'head' | 'fill' | 'tail' | 'done' = 'head'
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        switch (stage) {
          case 'head':
            controller.enqueue(h)
            stage = 'fill'
            return
          case 'fill': {
            const n = Math.min(CHUNK, fill)
            if (n > 0) controller.enqueue(n === CHUNK ? fillerChunk() : fillerChunk().subarray(0, n))
            fill -= n
            if (fill <= 0) stage = 'tail'
            return
          }
          case 'tail':
            controller.enqueue(t)
            stage = 'done'
            return
          default:
            controller.close()
        }
      },
      cancel() {
        stage = 'done'
      },
    },
    { highWaterMark: 0 },
  )
}
