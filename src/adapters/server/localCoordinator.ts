import type { CoordinatorHandlers, FlowChange, FlowCoordinator } from './types.js'

/**
 * The coordinator of a service that runs alone: every working stretch runs in this process, at
 * once, and notifications go straight to the service. The default of
 * `createIdentificationService` without a `coordinator`.
 */
export function createLocalCoordinator(): FlowCoordinator {
  let handlers: CoordinatorHandlers | undefined
  const running = new Map<string, { controller: AbortController; done: Promise<void> }>()
  let closed = false
  return {
    distributed: false,
    kind: 'in-process',
    async start(h) {
      handlers = h
    },
    async dispatch(flowId, stretch) {
      const key = `${flowId}:${stretch}`
      if (closed || !handlers || running.has(key)) return
      const controller = new AbortController()
      const h = handlers
      const done = Promise.resolve()
        .then(() => h.run({ flowId, stretch }, controller.signal))
        .catch(() => {})
        .finally(() => running.delete(key))
      running.set(key, { controller, done })
    },
    async notifyInbox(flowId) {
      handlers?.inbox(flowId)
    },
    async notifyChange(change: FlowChange) {
      handlers?.change(change)
    },
    async ping() {},
    async close() {
      closed = true
      const all = [...running.values()]
      for (const r of all) r.controller.abort()
      await Promise.all(all.map((r) => r.done))
    },
  }
}
