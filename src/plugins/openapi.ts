import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../config/env.js'
import { problemResponse } from '../http/schemas.js'
import { getSchema, schemaNames } from '../schemas/registry.js'

type Json = Record<string, any>

/** Statuses any documented route can answer, whatever it does: the rate limiter, an unexpected error, load shedding or a store outage. */
const gatewayWideStatuses = [429, 500, 503]

/** Readable operation ids for SDK generators; other routes get one derived from method and path. */
const operationIds: Record<string, string> = {
  'POST /v1/requests': 'submitRequest',
  'GET /v1/requests': 'listRequests',
  'GET /v1/requests/:id': 'getRequest',
  'GET /v1/requests/:id/events': 'getRequestEvents',
  'POST /v1/requests/:id/acknowledgement': 'acknowledgeRequest',
  'POST /v1/requests/:id/clarification-request': 'requestClarification',
  'POST /v1/requests/:id/clarification': 'answerClarification',
  'POST /v1/requests/:id/extension': 'extendResponseDeadline',
  'POST /v1/requests/:id/responses': 'respondToRequest',
  'POST /v1/requests/:id/withdrawal': 'withdrawRequest',
  'GET /v1/audit': 'listAuditEvents',
  'GET /v1/audit/disclosures': 'listDisclosures',
  'GET /v1/audit/verification': 'verifyAuditChain',
  'GET /v1/reports/turnaround': 'getTurnaroundReport',
  'GET /v1/schemas': 'listSchemas',
  'GET /v1/schemas/:name': 'getSchema',
  'GET /openapi.json': 'getOpenApiDocument',
  'GET /healthz': 'getLiveness',
  'GET /readyz': 'getReadiness',
  'GET /metrics': 'getMetrics',
  'GET /admin/queues': 'getQueueDashboard'
}

function derivedOperationId (method: string, url: string): string {
  const words = url.split('/').filter((part) => part !== '').map((part) => part.startsWith(':') ? `by-${part.slice(1)}` : part)
  return [method.toLowerCase(), ...words].join('-').replace(/[^a-zA-Z0-9]+(.)?/g, (_match, next: string | undefined) => (next ?? '').toUpperCase())
}

const isBearer = (security: unknown): boolean => Array.isArray(security) && security.some((entry) => typeof entry === 'object' && entry !== null && 'bearerAuth' in entry)

/**
 * Every documented route's response map gains the statuses the gateway's
 * cross-cutting machinery can answer (429, 500, 503; and 401 where a token is
 * required), as problem+json. The route schema itself is extended, so these
 * answers are serialized with the problem schema too.
 */
function addGatewayWideResponses (route: RouteOptions): void {
  const schema = route.schema as (FastifySchema & { hide?: boolean, security?: unknown, response?: Record<string, unknown> }) | undefined
  if (schema === undefined || schema.hide === true || schema.response === undefined) return
  const response: Record<string, unknown> = { ...schema.response }
  const statuses = isBearer(schema.security) ? [401, ...gatewayWideStatuses] : gatewayWideStatuses
  for (const status of statuses) {
    if (!(String(status) in response)) response[status] = problemResponse(status)
  }
  route.schema = { ...schema, response }
}

const dashboardDoc = {
  tags: ['operations'],
  summary: 'Queue dashboard (bull-board) for operators',
  description: 'The web UI over the delivery and deadline queues (and, under the same path, its own JSON API and static assets, not described here). Every request under /admin/queues needs a bearer token with the admin role, the page and its assets included.',
  security: [{ adminBearer: [] }],
  response: {
    200: {
      description: 'The dashboard page',
      content: { 'text/html': { schema: { type: 'string', maxLength: 65536, description: 'An HTML page of a few kilobytes' } } }
    },
    ...Object.fromEntries([401, 403, ...gatewayWideStatuses].map((status) => [status, problemResponse(status)]))
  }
}

const jwtDescription = 'A JWS (RFC 7515) following RFC8725 (JWT best current practices): each authority\'s tokens are verified with the public keys registered for it, chosen by kid, each key pinned to its one algorithm (ES256 or RS256); alg none and algorithm substitution are refused; exp, authority, roles and sub are required.'

/** Reference to a shared response header. */
const header = (name: string): Json => ({ $ref: `#/components/headers/${name}` })

const responseHeaders: Json = {
  'X-RateLimit-Limit': {
    description: 'Requests allowed per window to the caller: its authority (from a valid token), or its client address when it has none',
    schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 1000000 }
  },
  'X-RateLimit-Remaining': {
    description: 'Requests left in the current window',
    schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 1000000 }
  },
  'X-RateLimit-Reset': {
    description: 'Seconds until the current window ends',
    schema: { type: 'integer', format: 'int32', minimum: 0, maximum: 86400 }
  },
  'Retry-After': {
    description: 'Seconds to wait before retrying',
    schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 86400 }
  },
  'Access-Control-Allow-Origin': {
    description: 'Any origin may read answers: authentication is a bearer token, never a cookie, so a browser sends no ambient credentials',
    schema: { type: 'string', enum: ['*'] }
  }
}

function readExample (name: string): unknown {
  return JSON.parse(readFileSync(join(packageRoot(), 'schemas', 'examples', `${name}.json`), 'utf8'))
}

/** Post-processing of the generated document: cross-file schema references, response headers, body examples. */
function finishDocument (document: Json): Json {
  // The request schemas reference each other by file name ("envelope.json"):
  // in the document they are components.
  const rewriteRefs = (node: unknown): void => {
    if (Array.isArray(node)) { node.forEach(rewriteRefs); return }
    if (node === null || typeof node !== 'object') return
    const object = node as Json
    if (typeof object.$ref === 'string') {
      const match = /^(?:https:\/\/rogatory\.eu\/schemas\/)?([a-z0-9-]+)\.json$/.exec(object.$ref)
      if (match !== null && document.components?.schemas?.[match[1]] !== undefined) object.$ref = `#/components/schemas/${match[1]}`
    }
    for (const value of Object.values(object)) rewriteRefs(value)
  }
  rewriteRefs(document.components)
  rewriteRefs(document.paths)

  document.components.headers = responseHeaders
  for (const pathItem of Object.values(document.paths ?? {}) as Json[]) {
    for (const operation of Object.values(pathItem) as Json[]) {
      for (const [status, response] of Object.entries(operation.responses ?? {}) as Array<[string, Json]>) {
        const headers: Json = {}
        if (/^[24]/.test(status)) {
          // Every answer passes the rate limiter before anything else but load shedding.
          for (const name of ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']) headers[name] = header(name)
        }
        if (status === '429' || status === '503') headers['Retry-After'] = header('Retry-After')
        if (Object.keys(headers).length > 0) {
          headers['Access-Control-Allow-Origin'] = header('Access-Control-Allow-Origin')
          response.headers = { ...headers, ...(response.headers ?? {}) }
        }
      }
    }
  }

  const submit = document.paths?.['/v1/requests']?.post?.requestBody?.content?.['application/json']
  if (submit !== undefined) {
    submit.examples = {
      mla: { summary: 'An MLA request (1959 Convention), TR-MOJ to DE-BFJ', value: readExample('mla-request') },
      repatriation: { summary: 'A readmission request, TR-PMM to DE-BFJ', value: readExample('repatriation-request') }
    }
  }
  return document
}

/** OpenAPI 3.1 generated from the route schemas, at /openapi.json, with a UI at /docs. */
async function openapiPlugin (fastify: FastifyInstance): Promise<void> {
  for (const name of schemaNames()) {
    if (name !== 'gateway-config') fastify.addSchema(getSchema(name) as { $id: string })
  }
  fastify.addHook('onRoute', addGatewayWideResponses)
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Rogatory',
        version: '1.0.0',
        description: 'Gateway for mutual legal assistance and repatriation requests between central authorities. Errors are application/problem+json (RFC 9457). Every caller is rate limited (per authority, or per client address without a valid token): see the X-RateLimit-* headers.',
        contact: { name: 'The gateway operator' }
      },
      servers: [{
        url: '/',
        description: 'The gateway serving this document: the same API in every environment (local, staging, production); outside a local setup it is reached over TLS only.',
        'x-internal': false
      } as Json as { url: string }],
      tags: [
        { name: 'requests', description: 'Submit, read and list requests' },
        { name: 'lifecycle', description: 'Acknowledge, clarify, extend, answer and withdraw' },
        { name: 'audit', description: 'Hash-chained audit log and disclosure log' },
        { name: 'reports', description: 'Turnaround reports' },
        { name: 'schemas', description: 'Published JSON Schemas and this document' },
        { name: 'operations', description: 'Liveness, readiness, metrics and the queue dashboard (operators)' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: jwtDescription + ' Roles: agency, liaison, auditor, admin; where an operation lists role names in its requirement, the token must hold one of them.'
          },
          adminBearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: jwtDescription + ' The same tokens as bearerAuth, holding the admin role: the operators\' access to the pages under /admin.'
          }
        }
      }
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id.replace(/^.*\/([^/]+)\.json$/, '$1') : `def-${i}`)
    },
    transform: ({ schema, url, route }) => {
      const method = String(route.method)
      if (method === 'GET' && (url === '/admin/queues' || url === '/admin/queues/')) {
        // bull-board hides its routes; its page is documented once, here.
        return { schema: url === '/admin/queues' ? { ...dashboardDoc, operationId: operationIds['GET /admin/queues'] } : { hide: true } as FastifySchema, url }
      }
      if (schema === undefined || (schema as { hide?: boolean }).hide === true) return { schema, url }
      const operationId = (schema as { operationId?: string }).operationId ?? operationIds[`${method} ${url}`] ?? derivedOperationId(method, url)
      return { schema: { ...schema, operationId } as FastifySchema, url }
    },
    transformObject: (documentObject) => finishDocument((documentObject as { openapiObject: Json }).openapiObject) as never
  })
  await fastify.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { validatorUrl: null } as Json,
    // swagger-ui's own policy (hashes of its inline scripts), less what a
    // same-origin page served over plain HTTP in development would trip on, and
    // without the third-party validator (disabled above).
    staticCSP: true,
    transformStaticCSP: (policy: string) => policy.replace(/\s*upgrade-insecure-requests;?/, '').replace(/\s*validator\.swagger\.io/, '')
  })

  fastify.get('/openapi.json', {
    schema: {
      tags: ['schemas'],
      summary: 'This OpenAPI 3.1 document',
      description: 'Generated from the route schemas at start; the same document the UI at /docs shows.',
      security: [],
      response: {
        200: { type: 'object', additionalProperties: true, description: 'The OpenAPI document', examples: [{ openapi: '3.1.0', info: { title: 'Rogatory', version: '1.0.0' }, paths: {} }] }
      }
    }
  }, async () => fastify.swagger())
}

export default fp(openapiPlugin, { name: 'openapi', fastify: '5.x' })
