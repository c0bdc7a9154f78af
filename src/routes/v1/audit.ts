import type { FastifyInstance } from 'fastify'
import type { EventType } from '../../domain/events.js'
import { mayReadAudit, oversightScope } from '../../domain/permissions.js'
import { problem } from '../../http/problem.js'
import { bearerSecurity, countSchema, eventSchema, problemResponses, streamIdSchema } from '../../http/schemas.js'

const authorityPattern = '^[A-Z]{2}-[A-Z0-9]{2,12}$'

const pageSchema = {
  type: 'object',
  properties: {
    items: { type: 'array', maxItems: 500, items: { ...eventSchema, properties: { ...eventSchema.properties, hash: { type: 'string', maxLength: 64, pattern: '^[0-9a-f]{64}$' } } } },
    nextCursor: streamIdSchema
  },
  required: ['items']
} as const

const listQuery = {
  type: 'object',
  properties: {
    from: { type: 'string', format: 'date-time', maxLength: 64 },
    to: { type: 'string', format: 'date-time', maxLength: 64 },
    authority: { type: 'string', maxLength: 15, pattern: authorityPattern },
    requestId: { type: 'string', format: 'uuid', maxLength: 45 },
    type: { type: 'string', maxLength: 48, pattern: '^request\\.[a-z_]{3,40}$' },
    limit: { type: 'integer', format: 'int32', minimum: 1, maximum: 500, default: 100 },
    cursor: { type: 'string', maxLength: 41, pattern: '^\\d{1,20}-\\d{1,20}$' }
  },
  additionalProperties: false
} as const

interface ListQuery { from?: string, to?: string, authority?: string, requestId?: string, type?: string, limit: number, cursor?: string }

/** The hash-chained audit log, for auditors: metadata only, never personal data. */
export default async function auditRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.addHook('onRequest', fastify.authenticate)
  fastify.addHook('preHandler', async (request) => {
    if (!mayReadAudit(request.principal)) throw problem(403, 'The audit log is for auditors.')
  })

  async function page (query: ListQuery, visibleTo: string | undefined, types?: EventType[]) {
    const result = await fastify.auditLog.list({
      fromMs: query.from === undefined ? undefined : Date.parse(query.from),
      toMs: query.to === undefined ? undefined : Date.parse(query.to),
      visibleTo,
      authority: query.authority,
      requestId: query.requestId,
      types: types ?? (query.type === undefined ? undefined : [query.type as EventType]),
      limit: query.limit,
      after: query.cursor
    })
    return { items: result.items, nextCursor: result.next }
  }

  fastify.get<{ Querystring: ListQuery }>('/v1/audit', {
    schema: {
      tags: ['audit'],
      summary: 'The audit log, filtered and paged',
      description: 'Events of requests involving the auditor\'s authority (every pair for an oversight authority), oldest first. Time range, authority, request and event type filters; cursor paging.',
      security: bearerSecurity,
      querystring: listQuery,
      response: { 200: pageSchema, ...problemResponses(400, 401, 403, 503) }
    }
  }, async (request) => page(request.query, oversightScope(request.principal)))

  fastify.get<{ Querystring: ListQuery }>('/v1/audit/disclosures', {
    schema: {
      tags: ['audit'],
      summary: 'Disclosure log (LED Art. 25)',
      description: 'Every fetch of a request\'s full record: who, which authority, which request, when.',
      security: bearerSecurity,
      querystring: listQuery,
      response: { 200: pageSchema, ...problemResponses(400, 401, 403, 503) }
    }
  }, async (request) => page(request.query, oversightScope(request.principal), ['request.disclosed']))

  fastify.get('/v1/audit/verification', {
    schema: {
      tags: ['audit'],
      summary: 'Walk the hash chain',
      description: 'ok with the number of entries checked and the chain head, or the first entry that was altered, removed or reordered.',
      security: bearerSecurity,
      response: {
        200: {
          type: 'object',
          properties: {
            ok: { type: 'boolean' },
            checked: countSchema,
            tipSeq: countSchema,
            tipHash: { type: 'string', maxLength: 64, pattern: '^([0-9a-f]{64})?$' },
            fault: { type: 'string', enum: ['altered', 'removed', 'reordered', 'truncated'] },
            entryId: { type: ['string', 'null'], maxLength: 41, pattern: '^\\d{1,20}-\\d{1,20}$' },
            seq: countSchema,
            detail: { type: 'string', maxLength: 500 }
          },
          required: ['ok', 'checked']
        },
        ...problemResponses(401, 403, 503)
      }
    }
  }, async () => fastify.auditLog.verify())
}
