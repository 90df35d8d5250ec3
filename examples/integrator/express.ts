import express from 'express'
import { getRequestListener } from '@hono/node-server'
import type { createIdentificationHandler } from '10npay-identification/server'

/** An Express app with the identification routes, after `express.json()` (which reads every JSON body first). */
export function createExpressApp(handler: ReturnType<typeof createIdentificationHandler>) {
  const app = express()
  app.use(express.json()) // fine: the handler takes the parsed body from context.body
  app.use('/identifications', (req, res) => {
    req.url = req.originalUrl // the handler matches on the full path
    getRequestListener((request) => handler(request, { body: req.body }))(req, res)
  })
  return app
}
