import { Hono } from 'hono'
import { createIdentificationHandler, type IdentificationService } from '10npay-identification/server'

/**
 * The app's backend: the identification routes under /identifications, every flow seen and acted
 * on by its own user only. `userOf` says who is signed in (your session middleware).
 */
export function createApp(service: IdentificationService, userOf: (request: Request) => number | undefined) {
  const handler = createIdentificationHandler(service, {
    async authorize(request, flowId, body) {
      const user = userOf(request)
      if (user === undefined) return false
      if (flowId === null) return body?.userId === user // starting a flow: for oneself only
      return (await service.get(flowId))?.userId === user
    },
    successRedirect: '/kyc/done?flow={id}',
  })
  const app = new Hono()
  app.all('/identifications', (c) => handler(c.req.raw))
  app.all('/identifications/*', (c) => handler(c.req.raw))
  return app
}
