/**
 * Real HTTP servers on 127.0.0.1 (port 0) for the client's socket-level tests, and a clock whose
 * timers fire only when the test says so.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from 'vitest'
import { TenNPayError } from '../../../src/adapters/http/errors.js'
import type { Clock } from '../../../src/machine/clock.js'
import type { IdentificationApi } from '../../../src/machine/types.js'

/** A request as the server saw it (body cut at 64 KiB). */
export interface SeenRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

export interface Loopback {
  /** `http://127.0.0.1:<port>` */
  url: string
  server: Server
  /** Every request the server received, complete with its body. */
  requests: SeenRequest[]
  /** How many client sockets closed so far. */
  socketsClosed: () => number
  /** Resolves when `n` client sockets have closed, or rejects after `withinMs` (real time). */
  waitSocketsClosed(n: number, withinMs: number): Promise<void>
  close(): Promise<void>
}

/** Started servers; `closeAll()` in `afterEach`. */
const started = new Set<Loopback>()

/** Starts a server; `handler` answers after the request body was read completely. */
export async function startLoopback(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<Loopback> {
  const requests: SeenRequest[] = []
  let closed = 0
  const waiters = new Set<() => void>()
  const server = createServer((req, res) => {
    const parts: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      if (size < 65_536) parts.push(c)
      size += c.length
    })
    req.on('end', () => {
      const body = Buffer.concat(parts).toString('utf8')
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      handler(req, res, body)
    })
  })
  server.on('connection', (socket) => {
    socket.on('close', () => {
      closed++
      for (const w of waiters) w()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const lb: Loopback = {
    url: `http://127.0.0.1:${port}`,
    server,
    requests,
    socketsClosed: () => closed,
    waitSocketsClosed(n, withinMs) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (closed >= n) {
            clearTimeout(guard)
            waiters.delete(check)
            resolve()
          }
        }
        const guard = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`only ${closed} of ${n} sockets closed within ${withinMs} ms`))
        }, withinMs)
        waiters.add(check)
        check()
      })
    },
    close: async () => {
      started.delete(lb)
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  started.add(lb)
  return lb
}

/** Closes every server started and not yet closed (call it in `afterEach`). */
export async function closeAll(): Promise<void> {
  await Promise.all([...started].map((s) => s.close()))
}

/**
 * Writes `totalBytes` of `fill` after `head`, in 64 KiB chunks with back-pressure, and stops as
 * soon as the client goes away. Bounded: at most `totalBytes / 64 KiB` chunks.
 */
export function streamHuge(res: ServerResponse, head: string, totalBytes: number, fill = 'a'): void {
  const chunk = Buffer.alloc(65_536, fill)
  let sent = 0
  let gone = false
  res.on('close', () => (gone = true))
  res.write(head)
  const pump = () => {
    while (!gone && sent < totalBytes) {
      sent += chunk.length
      if (!res.write(chunk)) {
        res.once('drain', pump)
        return
      }
    }
    if (!gone) res.end()
  }
  pump()
}

/** A clock whose timers fire only on `fire()`; `scheduled` lists the delays asked for. */
export function manualClock(): Clock & { fire(): number; pending(): number; scheduled: number[] } {
  let next = 0
  const timers = new Map<number, () => void>()
  const scheduled: number[] = []
  return {
    now: () => 0,
    setTimeout(fn, ms) {
      timers.set(++next, fn)
      scheduled.push(ms)
      return next
    },
    clearTimeout(id) {
      timers.delete(id as number)
    },
    fire() {
      const due = [...timers]
      timers.clear()
      for (const [, fn] of due) fn()
      return due.length
    },
    pending: () => timers.size,
    scheduled,
  }
}

/** A promise with its resolve function. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => (resolve = r))
  return { promise, resolve }
}

/** The client's three calls, for tests that run each. */
export type Call = 'getStatus' | 'initiate' | 'finalize'
export const CALLS: Call[] = ['getStatus', 'initiate', 'finalize']

/** Makes one of the client's calls for user 7. */
export function invoke(api: IdentificationApi, call: Call): Promise<unknown> {
  if (call === 'getStatus') return api.getStatus({ userId: 7, userType: 0 })
  if (call === 'initiate') return api.initiate({ userId: 7, isRestartIdentification: false, correlationType: 0 })
  return api.finalize({ userId: 7, bTrustAppCallBackId: null, correlationType: 0 })
}

/** The `TenNPayError` a call rejects with (fails the test when it resolves, or rejects with something else). */
export async function rejection(p: Promise<unknown>): Promise<TenNPayError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection')
    },
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(TenNPayError)
  return err as TenNPayError
}
