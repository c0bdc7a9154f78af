import type { FastifyInstance } from 'fastify'
import { mayActOnRequests, mayListBoxes, mayReadEvents, oversightScope, readAccess, type Principal } from '../../domain/permissions.js'
import { openStatuses, type RequestStatus, type RequestType } from '../../domain/types.js'
import { problem } from '../../http/problem.js'
import { rejectIllFormedStrings } from '../../http/well-formed.js'
import { bearerSecurity, eventSchema, idParams, problemResponses, requestViewSchema } from '../../http/schemas.js'
import { schemaId } from '../../schemas/registry.js'
import type { SubmittedBody } from '../../services/request-service.js'
import { toView } from '../../services/request-view.js'
import type { StoredRequest } from '../../store/request-store.js'

const maxPageSize = 100
/** A request's history as answered by GET /v1/requests/{id}/events is bounded (clarification rounds could repeat without end). */
const maxHistoryEvents = 1000
const statuses: RequestStatus[] = ['submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed', 'executed', 'refused', 'withdrawn', 'deemed_accepted']

function encodeCursor (cursor: { score: string, id: string }): string {
  return Buffer.from(JSON.stringify([cursor.score, cursor.id])).toString('base64url')
}

function decodeCursor (raw: string): { score: string, id: string } {
  try {
    const [score, id] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown[]
    if (typeof score === 'string' && /^-?(\d+(\.\d+)?|inf)$/.test(score) && typeof id === 'string' && id.length <= 64) return { score, id }
  } catch {}
  throw problem(400, 'The cursor is not one this API issued.', { errors: [{ pointer: '/query/cursor', detail: 'malformed cursor' }] })
}

/** Loads a request for a principal, answering 403/404 as the visibility rules say. */
async function loadVisible (fastify: FastifyInstance, principal: Principal, rawId: string): Promise<{ request: StoredRequest, full: boolean }> {
  // UUIDs are case-insensitive on input (RFC 9562 §4); ids are stored in lower case.
  const id = rawId.toLowerCase()
  const request = await fastify.requestStore.get(id)
  const access = request === undefined ? readAccess(principal, { sender: '', recipient: '' }) : readAccess(principal, request)
  if (access === 'forbidden') throw problem(403, 'Your roles do not allow reading requests.')
  if (request === undefined || access === 'hidden') throw problem(404, `No request ${id}.`)
  return { request, full: access === 'full' }
}

export default async function requestRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.addHook('onRequest', fastify.authenticate)
  // Bodies are JSON only: Fastify's built-in text/plain parser would hand a
  // string to schema validation (400); any other media type is 415.
  fastify.removeContentTypeParser('text/plain')

  fastify.post<{ Body: SubmittedBody, Headers: { 'idempotency-key'?: string } }>('/v1/requests', {
    preValidation: rejectIllFormedStrings,
    schema: {
      tags: ['requests'],
      summary: 'Submit a request',
      description: 'Validates the body against the schema of its type, computes the deadlines from the agreement between the two authorities, and stores it durably before answering 201.',
      security: bearerSecurity,
      headers: {
        type: 'object',
        properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$' } }
      },
      body: { $ref: schemaId('request') },
      response: {
        201: requestViewSchema,
        ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 503)
      }
    }
  }, async (request, reply) => {
    if (!mayActOnRequests(request.principal)) throw problem(403, 'Only agencies may submit requests.')
    const result = await fastify.requests.submit(request.principal, request.body, request.headers['idempotency-key'])
    reply.header('location', `/v1/requests/${result.request.id}`)
    if (result.kind === 'replayed') {
      reply.header('idempotent-replayed', 'true')
      return reply.code(201).send(toView(result.request, fastify.requests.openContent(result.request)))
    }
    // The content is spliced in as the canonical JSON the service made for the
    // body's hash, rather than serialized a second time.
    const serialize = reply.getSerializationFunction('201')
    if (serialize === undefined) return reply.code(201).send(toView(result.request, result.content))
    const view = serialize(toView(result.request) as unknown as Record<string, unknown>)
    return reply.code(201).type('application/json; charset=utf-8').send(`${view.slice(0, -1)},"content":${result.contentJson}}`)
  })

  fastify.get<{ Params: { id: string } }>('/v1/requests/:id', {
    schema: {
      tags: ['requests'],
      summary: 'Read one request',
      description: 'Parties\' agencies and liaison officers get the content (each fetch is logged as a disclosure); auditors get metadata only. The recipient\'s first fetch delivers the request.',
      security: bearerSecurity,
      params: idParams,
      response: { 200: requestViewSchema, ...problemResponses(400, 401, 403, 404, 503) }
    }
  }, async (request) => {
    const { request: stored, full } = await loadVisible(fastify, request.principal, request.params.id)
    if (!full) return toView(stored)
    const current = await fastify.requests.disclose(request.principal, stored)
    return toView(current, fastify.requests.openContent(current))
  })

  fastify.get<{
    Querystring: { box: 'inbox' | 'outbox', status?: RequestStatus, overdue?: boolean, type?: RequestType, counterpart?: string, dueBefore?: string, limit: number, cursor?: string }
  }>('/v1/requests', {
    schema: {
      tags: ['requests'],
      summary: 'List the inbox or outbox',
      description: 'Pending requests, nearest deadline first (overdue ones first of all); closed ones with status=<closed status>, in the order they closed.',
      security: bearerSecurity,
      querystring: {
        type: 'object',
        properties: {
          box: { type: 'string', enum: ['inbox', 'outbox'], default: 'inbox' },
          status: { type: 'string', enum: statuses },
          overdue: { type: 'boolean' },
          type: { type: 'string', enum: ['mla', 'repatriation'] },
          counterpart: { type: 'string', maxLength: 15, pattern: '^[A-Z]{2}-[A-Z0-9]{2,12}$' },
          dueBefore: { type: 'string', format: 'date-time', maxLength: 64 },
          limit: { type: 'integer', format: 'int32', minimum: 1, maximum: maxPageSize, default: 20 },
          cursor: { type: 'string', maxLength: 200 }
        },
        additionalProperties: false
      },
      response: {
        200: {
          type: 'object',
          properties: {
            items: { type: 'array', maxItems: maxPageSize, items: requestViewSchema },
            nextCursor: { type: 'string', maxLength: 200, pattern: '^[A-Za-z0-9_-]+$', description: 'Opaque; pass it as cursor for the next page' }
          },
          required: ['items']
        },
        ...problemResponses(400, 401, 403, 503)
      }
    }
  }, async (request) => {
    if (!mayListBoxes(request.principal)) throw problem(403, 'Your roles do not allow listing requests.')
    const q = request.query
    const closed = q.status !== undefined && !openStatuses.includes(q.status)
    const page = await fastify.requestStore.list({
      box: q.box,
      authority: request.principal.authority,
      status: q.status,
      type: q.type,
      counterpart: q.counterpart,
      overdueOnly: q.overdue === true,
      dueBefore: q.dueBefore === undefined ? undefined : Date.parse(q.dueBefore),
      limit: q.limit,
      cursor: q.cursor === undefined ? undefined : decodeCursor(q.cursor),
      closed,
      now: Date.now()
    })
    return { items: page.items.map((item) => toView(item)), nextCursor: page.next === undefined ? undefined : encodeCursor(page.next) }
  })

  fastify.get<{ Params: { id: string } }>('/v1/requests/:id/events', {
    schema: {
      tags: ['requests'],
      summary: 'A request\'s history',
      description: `Its lifecycle events, oldest first (at most the first ${maxHistoryEvents}; the audit log, GET /v1/audit?requestId=, pages through any number). Metadata only.`,
      security: bearerSecurity,
      params: idParams,
      response: {
        200: { type: 'object', properties: { items: { type: 'array', maxItems: maxHistoryEvents, items: eventSchema } }, required: ['items'] },
        ...problemResponses(400, 401, 403, 404, 503)
      }
    }
  }, async (request) => {
    if (!mayReadEvents(request.principal)) throw problem(403, 'Your roles do not allow reading request histories.')
    // Auditors of an oversight authority read every request's history (metadata only).
    const stored = oversightScope(request.principal) === undefined
      ? await fastify.requestStore.get(request.params.id.toLowerCase())
      : (await loadVisible(fastify, request.principal, request.params.id)).request
    if (stored === undefined) throw problem(404, `No request ${request.params.id}.`)
    return { items: (await fastify.requestStore.events(stored)).slice(0, maxHistoryEvents) }
  })
}
