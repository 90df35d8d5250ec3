import { Readable } from 'node:stream'
import type { ReadableStream } from 'node:stream/web'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import type { createIdentificationHandler } from '10npay-identification/server'

/** A Fastify app with the identification routes (Fastify parses JSON bodies itself). */
export function createFastifyApp(handler: ReturnType<typeof createIdentificationHandler>) {
  const fastify = Fastify()
  async function route(req: FastifyRequest, reply: FastifyReply) {
    const headers = new Headers()
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers.set(name, value)
    const request = new Request(`http://${req.headers.host}${req.url}`, { method: req.method, headers })
    const response = await handler(request, { body: req.body }) // Fastify parsed the JSON body already
    reply.status(response.status).headers(Object.fromEntries(response.headers))
    return reply.send(response.body ? Readable.fromWeb(response.body as ReadableStream) : null)
  }
  fastify.all('/identifications', route)
  fastify.all('/identifications/*', route)
  return fastify
}
