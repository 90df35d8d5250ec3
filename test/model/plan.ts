/** How a model path maps onto the simulator and the user: shared by the model and persistence tests. */
import type { StatePath } from '@xstate/graph'
import type { IdentificationEvent } from '../../src/machine/events.js'
import { topState } from '../../src/machine/persistence.js'
import type { Behaviour } from '../../src/simulator/scenarios.js'

type Path = StatePath<any, IdentificationEvent>

/** What the simulator and the user must do for a path to happen. */
export function plan(path: Path) {
  const behaviour: Behaviour = {}
  const answers: { identification?: 'success' | 'fail'; signing?: 'success' | 'fail' } = {}
  let entry: 'start' | 'restart' | { resumeAfter: 'identification' | 'signing' } | { redirectFail: true } = 'start'
  let runnerCan = true
  let prev = 'idle'
  for (const [i, step] of path.steps.entries()) {
    if (i === 0) continue
    const e = step.event as IdentificationEvent
    const stepKey = prev === 'initiating' ? 'initiate' : prev === 'pollingA' ? 'phaseA' : prev === 'pollingB' ? 'phaseB' : prev === 'phaseB' ? 'finalize' : undefined
    switch (e.type) {
      case 'START':
        break
      case 'RESTART':
        if (prev === 'idle') entry = 'restart'
        runnerCan &&= prev === 'idle'
        break
      case 'CANCEL':
      case 'RETRY':
      case 'LOST':
        runnerCan = false
        break
      case 'REDIRECT':
        if (prev === 'idle') {
          if (e.outcome === 'fail') {
            entry = { redirectFail: true }
            runnerCan = false
          } else entry = { resumeAfter: e.step ?? 'identification' }
        } else answers[prev === 'identifying' ? 'identification' : 'signing'] = e.outcome
        break
      case 'attempt.failed':
        ;(behaviour as Record<string, string>)[stepKey!] = e.error.kind === 'unauthorized' ? 'unauthorized' : 'rejected'
        break
      case 'attempt.timeout':
        ;(behaviour as Record<string, string>)[stepKey!] = stepKey === 'phaseA' || stepKey === 'phaseB' ? 'timeout' : 'unavailable'
        break
      case 'initiate.ok': {
        const r = e.response
        behaviour.initiate = r.videoIdentificationStatus === 'ERROR' ? 'vendor-error' : r.videoIdentificationUrl?.startsWith('javascript') ? 'unsafe-url' : 'ok'
        break
      }
      case 'poll.status': {
        const r = e.response
        const s = r.videoIdentificationStatus
        if (prev === 'pollingA') {
          behaviour.phaseA = s === 'ERROR' ? 'vendor-error' : s === 'DOCUMENT_SIGN_SUCCESS' ? 'signed' : r.videoIdentificationUrl?.startsWith('javascript') ? 'unsafe-url' : 'ok'
        } else behaviour.phaseB = s === 'ERROR' ? 'vendor-error' : 'ok'
        break
      }
    }
    prev = topState(step.state.value)
  }
  return { behaviour, answers, entry, runnerCan }
}

