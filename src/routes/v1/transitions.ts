import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { mayActOnRequests } from '../../domain/permissions.js'
import { allRefusalGrounds } from '../../domain/refusal-grounds.js'
import { problem } from '../../http/problem.js'
import { rejectIllFormedStrings } from '../../http/well-formed.js'
import { bearerSecurity, idParams, problemResponses, requestViewSchema } from '../../http/schemas.js'
import { toView } from '../../services/request-view.js'
import type { StoredRequest } from '../../store/request-store.js'

const freeText = (description: string, maxLength = 20000) => ({ type: 'string', minLength: 1, maxLength, description }) as const

interface TransitionRoute<Body> {
  path: string
  summary: string
  description: string
  body: Record<string, unknown>
  run: (request: FastifyRequest<{ Params: { id: string }, Body: Body }>) => Promise<StoredRequest | undefined>
}

/** Each lifecycle step of DESIGN.md §2 as POST /v1/requests/{id}/<step>, answered with the request as it now stands. */
export default async function transitionRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.addHook('onRequest', fastify.authenticate)

  function route<Body> (spec: TransitionRoute<Body>): void {
    const bodyOptional = !('required' in spec.body)
    fastify.post<{ Params: { id: string }, Body: Body }>(`/v1/requests/:id/${spec.path}`, {
      // A step whose fields are all optional may be posted without a body.
      preValidation: async (request) => {
        if (bodyOptional && (request.body === undefined || request.body === null)) request.body = {} as Body
        await rejectIllFormedStrings(request)
      },
      schema: {
        tags: ['lifecycle'],
        summary: spec.summary,
        description: spec.description,
        security: bearerSecurity,
        params: idParams,
        body: { type: 'object', additionalProperties: false, ...spec.body },
        response: { 200: requestViewSchema, ...problemResponses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503) }
      }
    }, async (request, reply: FastifyReply) => {
      if (!mayActOnRequests(request.principal)) throw problem(403, 'Only agencies act on requests.')
      // Ids are stored lower-case; UUIDs are case-insensitive on input (RFC 9562).
      request.params.id = request.params.id.toLowerCase()
      const changed = await spec.run(request)
      const current = changed ?? await fastify.requestStore.get(request.params.id)
      if (current === undefined) throw problem(404, `No request ${request.params.id}.`)
      return reply.code(200).send(toView(current))
    })
  }

  route<{ recipientReference?: string, estimatedAnswerDate?: string }>({
    path: 'acknowledgement',
    summary: 'Acknowledge receipt (recipient)',
    description: 'Confirms receipt, optionally with the recipient\'s own case reference and an estimated answer date (EIO Annex B).',
    body: {
      properties: {
        recipientReference: { type: 'string', minLength: 1, maxLength: 100 },
        estimatedAnswerDate: { type: 'string', format: 'date', maxLength: 10 }
      },
      examples: [{ recipientReference: 'BfJ-RH-2026-0815', estimatedAnswerDate: '2027-02-01' }]
    },
    run: async (request) => fastify.requests.acknowledge(request.principal, request.params.id, request.body)
  })

  route<{ questions: string }>({
    path: 'clarification-request',
    summary: 'Ask the sender for more information (recipient)',
    description: 'Pauses the request in clarification_requested until the sender answers.',
    body: {
      properties: { questions: freeText('What is missing or unclear') },
      required: ['questions'],
      examples: [{ questions: 'Please state the period of the transactions concerned and the account holder\'s role in the proceedings.' }]
    },
    run: async (request) => fastify.requests.requestClarification(request.principal, request.params.id, request.body.questions)
  })

  route<{ answers: string }>({
    path: 'clarification',
    summary: 'Answer a clarification request (sender)',
    description: 'Returns the request to acknowledged.',
    body: {
      properties: { answers: freeText('The information asked for') },
      required: ['answers'],
      examples: [{ answers: 'January to June 2026; the account holder is a suspect.' }]
    },
    run: async (request) => fastify.requests.clarify(request.principal, request.params.id, request.body.answers)
  })

  route<{ responseDeadline: string, reason: string }>({
    path: 'extension',
    summary: 'Move the response deadline (recipient)',
    description: 'Within the agreement\'s cap, measured from the original deadline; beyond it the answer is 422.',
    body: {
      properties: { responseDeadline: { type: 'string', format: 'date-time', maxLength: 64 }, reason: freeText('Why more time is needed', 5000) },
      required: ['responseDeadline', 'reason'],
      examples: [{ responseDeadline: '2027-03-02T09:14:03.512Z', reason: 'The bank needs four more weeks to produce the records.' }]
    },
    run: async (request) => fastify.requests.extend(request.principal, request.params.id, request.body)
  })

  route<{ outcome: 'partially_executed' | 'executed' | 'refused', grounds?: string[], text?: string }>({
    path: 'responses',
    summary: 'Answer the request (recipient)',
    description: 'partially_executed keeps the request open; executed and refused close it. A refusal names grounds from the catalogue of the request\'s instrument.',
    body: {
      properties: {
        outcome: { type: 'string', enum: ['partially_executed', 'executed', 'refused'] },
        grounds: { type: 'array', items: { type: 'string', enum: allRefusalGrounds }, minItems: 1, maxItems: 10, uniqueItems: true },
        text: freeText('Free text accompanying the answer')
      },
      required: ['outcome'],
      examples: [{ outcome: 'partially_executed', text: 'Bank records attached; the witness hearing is scheduled.' }]
    },
    run: async (request) => fastify.requests.respond(request.principal, request.params.id, request.body)
  })

  route<{ reason?: string }>({
    path: 'withdrawal',
    summary: 'Withdraw a request (sender)',
    description: 'Allowed while the request is open.',
    body: { properties: { reason: freeText('Why the request is withdrawn', 5000) }, examples: [{ reason: 'The proceedings were discontinued.' }] },
    run: async (request) => fastify.requests.withdraw(request.principal, request.params.id, request.body?.reason)
  })
}
