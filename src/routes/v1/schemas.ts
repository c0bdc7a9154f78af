import type { FastifyInstance } from 'fastify'
import { problem } from '../../http/problem.js'
import { problemResponses } from '../../http/schemas.js'
import { getSchema, schemaNames } from '../../schemas/registry.js'

/** The published JSON Schemas, so that partners validate before they send. */
export default async function schemaRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.get('/v1/schemas', {
    schema: {
      tags: ['schemas'],
      summary: 'List the published JSON Schemas',
      security: [],
      response: { 200: { type: 'object', properties: { items: { type: 'array', items: { type: 'string' } } }, required: ['items'] } }
    }
  }, async () => ({ items: schemaNames() }))

  fastify.get<{ Params: { name: string } }>('/v1/schemas/:name', {
    schema: {
      tags: ['schemas'],
      summary: 'One JSON Schema (draft 2020-12)',
      security: [],
      params: { type: 'object', properties: { name: { type: 'string', pattern: '^[a-z0-9-]{1,64}(\\.json)?$' } }, required: ['name'], additionalProperties: false },
      response: { 200: { type: 'object', additionalProperties: true }, ...problemResponses(400, 404) }
    }
  }, async (request, reply) => {
    const schema = getSchema(request.params.name.replace(/\.json$/, ''))
    if (schema === undefined) throw problem(404, `No schema named ${request.params.name}.`)
    return reply.type('application/schema+json').send(schema)
  })
}
