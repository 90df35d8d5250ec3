import yoctoSpinner from 'yocto-spinner'
import type { CliIo } from './io.js'
import { secs, wantsLiveProgress } from './io.js'

/** Live progress of a flow: a spinner line on a TTY, plain lines otherwise, nothing with --json. */
export interface Progress {
  update(state: string, polls: number): void
  done(text: string, ok: boolean): void
}

/** Builds the progress reporter for the CLI's mode. */
export function createProgress(io: CliIo, json: boolean, startedAt: number, now: () => number): Progress {
  if (json) return { update() {}, done() {} }
  if (wantsLiveProgress(io)) {
    const spinner = yoctoSpinner({ text: 'starting', stream: io.stderr as never, handleSignals: false }).start()
    let state = 'starting'
    let polls = 0
    const render = () => {
      spinner.text = `${state} · ${secs(now() - startedAt)} · ${polls} poll${polls === 1 ? '' : 's'}`
    }
    const tick = setInterval(render, 100)
    tick.unref()
    return {
      update(s, p) {
        state = s
        polls = p
        render()
      },
      done(text, ok) {
        clearInterval(tick)
        if (ok) spinner.success(text)
        else spinner.error(text)
      },
    }
  }
  let last = ''
  return {
    update(state, polls) {
      if (state === last) return
      last = state
      io.stdout.write(`[${secs(now() - startedAt).padStart(7)}] ${state} (${polls} poll${polls === 1 ? '' : 's'} so far)\n`)
    },
    done(text) {
      io.stdout.write(`${text}\n`)
    },
  }
}
