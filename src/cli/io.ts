/** Where the CLI writes and what it reads from its environment; replaced in tests. */
export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean }
  stderr: { write(s: string): unknown; isTTY?: boolean }
  env: Record<string, string | undefined>
}

/** Exit codes: success, the flow (or the call) failed, usage error. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

/** A usage error: exit code 2, the message names the argument. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** Whether live, rewritten progress lines are wanted (a TTY, no NO_COLOR, not CI). */
export function wantsLiveProgress(io: CliIo): boolean {
  return Boolean(io.stderr.isTTY) && !io.env['NO_COLOR'] && !io.env['CI']
}

/** Seconds with one decimal. */
export const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`
