import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { getSchema, schemaNames } from '../schemas/registry.js'

/** OpenAPI 3.1 generated from the route schemas, at /openapi.json, with a UI at /docs. */
async function openapiPlugin (fastify: FastifyInstance): Promise<void> {
  for (const name of schemaNames()) {
    if (name !== 'gateway-config') fastify.addSchema(getSchema(name) as { $id: string })
  }
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Rogatory',
        version: '1.0.0',
        description: 'Gateway for mutual legal assistance and repatriation requests between central authorities.'
      },
      tags: [
        { name: 'requests', description: 'Submit, read and list requests' },
        { name: 'lifecycle', description: 'Acknowledge, clarify, extend, answer and withdraw' },
        { name: 'audit', description: 'Hash-chained audit log and disclosure log' },
        { name: 'reports', description: 'Turnaround reports' },
        { name: 'schemas', description: 'Published JSON Schemas' },
        { name: 'operations', description: 'Health and readiness' }
      ],
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } }
      }
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id.replace(/^.*\/([^/]+)\.json$/, '$1') : `def-${i}`)
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
  fastify.get('/openapi.json', { schema: { hide: true } }, async () => fastify.swagger())
}


export default fp(openapiPlugin, { name: 'openapi', fastify: '5.x' })
