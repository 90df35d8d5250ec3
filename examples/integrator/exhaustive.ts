import type { FlowView } from '10npay-identification/server'
import type { IdentificationView } from '10npay-identification'

/**
 * A switch over a flow's state, checked for completeness by the compiler: `result` is there
 * exactly when the flow is finalized, `failure` when it failed (the type check of CI compiles it).
 */
export function headline(view: FlowView | IdentificationView): string {
  switch (view.state) {
    case 'finalized':
      return `Identified (CRM id ${view.result.individualId})`
    case 'failed':
      return `Not identified: ${view.failure.reason}`
    case 'idle':
    case 'initiating':
    case 'identifying':
    case 'pollingA':
    case 'phaseA':
    case 'signing':
    case 'pollingB':
    case 'phaseB':
      return 'In progress'
    default: {
      const unknown: never = view
      return unknown
    }
  }
}
