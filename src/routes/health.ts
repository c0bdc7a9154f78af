import type { FastifyInstance } from 'fastify'
import { problem } from '../http/problem.js'
import { problemResponses } from '../http/schemas.js'

export default async function healthRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.get('/healthz', {
    schema: {
      tags: ['operations'],
      summary: 'Liveness: the process is up',
      security: [],
      response: { 200: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] } }
    }
  }, async () => ({ status: 'ok' }))

  fastify.get('/readyz', {
    schema: {
      tags: ['operations'],
      summary: 'Readiness: Redis answers',
      security: [],
      response: { 200: { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] }, ...problemResponses(503) }
    }
  }, async () => {
    try {
      await fastify.redis.ping()
    } catch {
      throw problem(503, 'Redis is not reachable.')
    }
    return { status: 'ready' }
  })
}
