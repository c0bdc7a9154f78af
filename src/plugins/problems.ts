import type { FastifyError, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { problem, problemFor, ProblemError, type FieldError, type Problem } from '../http/problem.js'
import { maxPointerLength } from '../http/schemas.js'
import { isRedisUnavailable } from '../store/redis-errors.js'

interface AjvLikeError {
  instancePath: string
  keyword: string
  message?: string
  params: Record<string, unknown>
}

const escapePointer = (segment: string): string => segment.replace(/~/g, '~0').replace(/\//g, '~1')

/** JSON pointers to the offending fields, the missing or unknown property included. */
export function fieldErrors (errors: AjvLikeError[], context?: string): FieldError[] {
  const seen = new Set<string>()
  const out: FieldError[] = []
  const prefix = context === undefined || context === 'body' ? '' : `/${context}`
  for (const error of errors) {
    let pointer = prefix + error.instancePath
    let detail = error.message ?? error.keyword
    if (error.keyword === 'required') {
      pointer += `/${escapePointer(String(error.params.missingProperty))}`
      detail = 'is required'
    } else if (error.keyword === 'additionalProperties' || error.keyword === 'unevaluatedProperties') {
      const extra = error.params.additionalProperty ?? error.params.unevaluatedProperty
      pointer += `/${escapePointer(String(extra))}`
      detail = 'is not a known field'
    } else if (error.keyword === 'enum') {
      detail = `must be one of ${(error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
    }
    const keyOf = `${pointer} ${detail}`
    if (seen.has(keyOf)) continue
    seen.add(keyOf)
    // An unknown field's name is the client's: echo a bounded part of it.
    out.push({ pointer: pointer === '' ? '/' : pointer.length > maxPointerLength ? `${pointer.slice(0, maxPointerLength)}...` : pointer, detail })
  }
  return out.slice(0, 100)
}

const passThroughCodes: Record<string, number> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 413,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 415,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 400,
  FST_ERR_CTP_EMPTY_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_TYPE: 400,
  FST_ERR_CTP_EMPTY_TYPE: 415
}

function toProblem (error: FastifyError & { validation?: AjvLikeError[], validationContext?: string }): { problem: Problem, unexpected: boolean } {
  if (error instanceof ProblemError) return { problem: error.problem, unexpected: false }
  if (error.validation !== undefined) {
    const errors = fieldErrors(error.validation, error.validationContext)
    const where = error.validationContext === 'body' || error.validationContext === undefined ? 'request body' : error.validationContext
    return { problem: problem(400, `The ${where} is invalid: ${errors.length} problem(s), see errors.`, { errors }).problem, unexpected: false }
  }
  if (error.code?.startsWith('FST_JWT_') === true) {
    return { problem: problemFor(401, 'A valid bearer token is required.'), unexpected: false }
  }
  const mapped = error.code === undefined ? undefined : passThroughCodes[error.code]
  if (mapped !== undefined) return { problem: problemFor(mapped, error.message), unexpected: false }
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return { problem: problemFor(400, 'The request body is not valid JSON.'), unexpected: false }
  }
  if (isRedisUnavailable(error)) {
    return { problem: problemFor(503, 'The store is unavailable; retry shortly.'), unexpected: false }
  }
  const status = error.statusCode
  if (status !== undefined && status >= 400 && status < 500) {
    return { problem: problemFor(status, error.message), unexpected: false }
  }
  return { problem: problemFor(500, 'An unexpected error occurred; it has been logged.'), unexpected: true }
}

/** Every error leaves as application/problem+json; the details of unexpected ones stay in the log. */
async function problemsPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.setErrorHandler(async (error: FastifyError, request, reply) => {
    const { problem: body, unexpected } = toProblem(error)
    if (unexpected) request.log.error({ err: error, req: request }, 'unexpected error')
    else if (body.status === 503) request.log.warn({ err: error }, 'store unavailable')
    if (body.status === 503) reply.header('retry-after', '1')
    return reply.code(body.status).type('application/problem+json').send(body)
  })
  fastify.setNotFoundHandler(async (request, reply) => {
    return reply.code(404).type('application/problem+json').send(problemFor(404, `No route ${request.method} ${request.url.split('?')[0]}.`))
  })
}

export default fp(problemsPlugin, { name: 'problems', fastify: '5.x' })
