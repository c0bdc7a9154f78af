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
      description: 'The names of the JSON Schemas (draft 2020-12) that request bodies are validated against, for GET /v1/schemas/{name}.',
      security: [],
      response: {
        200: {
          type: 'object',
          properties: { items: { type: 'array', maxItems: 1000, items: { type: 'string', maxLength: 64, pattern: '^[a-z0-9-]{1,64}$' } } },
          required: ['items'],
          examples: [{ items: ['envelope', 'gateway-config', 'mla-request', 'repatriation-request', 'request'] }]
        }
      }
    }
  }, async () => ({ items: schemaNames() }))

  fastify.get<{ Params: { name: string } }>('/v1/schemas/:name', {
    schema: {
      tags: ['schemas'],
      summary: 'One JSON Schema (draft 2020-12)',
      description: 'The schema as published, with its $id (https://rogatory.eu/schemas/<name>.json); schemas reference each other by relative $ref.',
      security: [],
      params: { type: 'object', properties: { name: { type: 'string', maxLength: 69, pattern: '^[a-z0-9-]{1,64}(\\.json)?$' } }, required: ['name'], additionalProperties: false },
      response: {
        200: {
          description: 'The JSON Schema',
          content: { 'application/schema+json': { schema: { type: 'object', additionalProperties: true }, example: { $schema: 'https://json-schema.org/draft/2020-12/schema', $id: 'https://rogatory.eu/schemas/request.json', title: 'SubmittedRequest' } } }
        },
        ...problemResponses(400, 404)
      }
    }
  }, async (request, reply) => {
    const schema = getSchema(request.params.name.replace(/\.json$/, ''))
    if (schema === undefined) throw problem(404, `No schema named ${request.params.name}.`)
    return reply.type('application/schema+json').send(schema)
  })
}
