// Route schemas shared by several routes: one schema drives validation,
// serialization and the OpenAPI document.
//
// Bounds on response fields (maxLength, maxItems, integer ranges) describe what
// the gateway actually emits: they are derived from the input validation, the
// configuration limits (schemas/gateway-config.json) or the code that builds
// the value. They do not change serialization.

/** Largest integer a JSON number carries exactly (2^53 - 1): counts, sequence numbers. */
export const maxSafeInteger = 9007199254740991

/** A count or a sequence number. */
export const countSchema = { type: 'integer', format: 'int64', minimum: 0, maximum: maxSafeInteger } as const

/** An authority id as registered in the gateway config (TR-MOJ, DE-BFJ). */
export const authorityIdSchema = { type: 'string', minLength: 5, maxLength: 15, pattern: '^[A-Z]{2}-[A-Z0-9]{2,12}$' } as const

/** A request id: a UUID in lower case, as the gateway issues them. */
export const requestIdSchema = { type: 'string', format: 'uuid', minLength: 36, maxLength: 36 } as const

/** A timestamp as the gateway writes it (Date#toISOString). */
export const timestampSchema = { type: 'string', format: 'date-time', maxLength: 30 } as const

/** A calendar date, YYYY-MM-DD. */
export const dateSchema = { type: 'string', format: 'date', minLength: 10, maxLength: 10 } as const

/** An audit stream entry id (Redis stream id, "<ms>-<seq>"). */
export const streamIdSchema = { type: 'string', maxLength: 41, pattern: '^\\d{1,20}-\\d{1,20}$' } as const

export const requestTypes = ['mla', 'repatriation'] as const

export const requestStatuses = [
  'submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed',
  'executed', 'refused', 'withdrawn', 'deemed_accepted'
] as const

export const legalBases = [
  'eio-directive-2014-41', 'coe-1959-convention', 'bilateral-mla-treaty', 'eu-readmission-agreement', 'accelerated-readmission'
] as const

/** Longest JSON pointer a problem's errors list names; longer ones (unknown field names sent by a client) are clipped. */
export const maxPointerLength = 1024

export const problemSchema = {
  $id: 'problem',
  type: 'object',
  description: 'RFC 9457 problem details',
  properties: {
    type: { type: 'string', format: 'uri', maxLength: 200, description: 'https://rogatory.eu/problems/<slug>' },
    title: { type: 'string', maxLength: 100 },
    status: { type: 'integer', format: 'int32', minimum: 400, maximum: 599 },
    detail: { type: 'string', maxLength: 20000, description: 'Human-readable explanation; may quote the request line or a header (at most 16 KiB in Node.js)' },
    instance: { type: 'string', format: 'uri-reference', maxLength: 2000 },
    currentStatus: { type: 'string', enum: requestStatuses, description: 'With 409 illegal-transition: the status the request is in' },
    requestId: { ...requestIdSchema, description: 'With 409 conflicts on a sender reference: the request that holds it' },
    errors: {
      type: 'array',
      maxItems: 100,
      description: 'Validation problems: the JSON pointer of each offending field (at most 100)',
      items: {
        type: 'object',
        properties: {
          pointer: { type: 'string', maxLength: maxPointerLength + 3 },
          detail: { type: 'string', maxLength: 2000 }
        },
        required: ['pointer', 'detail']
      }
    }
  },
  required: ['type', 'title', 'status'],
  additionalProperties: true
} as const

export const problemRef = { $ref: 'problem#' } as const

const problemTitles: Record<number, [string, string]> = {
  400: ['Bad Request', 'The request is malformed or fails validation; `errors` names each offending field.'],
  401: ['Unauthorized', 'A valid bearer token is required.'],
  403: ['Forbidden', 'The token\'s roles do not allow this.'],
  404: ['Not Found', 'No such resource, or it is not visible to the caller.'],
  409: ['Conflict', 'The request conflicts with the current state (illegal transition, sender reference already used).'],
  413: ['Content Too Large', 'The body exceeds the configured limit.'],
  415: ['Unsupported Media Type', 'Bodies are application/json.'],
  422: ['Unprocessable Content', 'Well-formed, but not acceptable (no agreement for the pair, deadline beyond the cap, idempotency key reused with another body).'],
  429: ['Too Many Requests', 'The caller\'s rate limit is exhausted; retry after Retry-After seconds.'],
  500: ['Internal Server Error', 'An unexpected error; details are in the gateway\'s log, never in the answer.'],
  503: ['Service Unavailable', 'The store is unreachable, the gateway is overloaded or shutting down; retry after Retry-After seconds.']
}

const problemSlugs: Record<number, string> = {
  400: 'invalid-request', 401: 'unauthenticated', 403: 'forbidden', 404: 'not-found', 409: 'conflict', 413: 'body-too-large',
  415: 'unsupported-media-type', 422: 'unprocessable', 429: 'rate-limited', 500: 'internal', 503: 'unavailable'
}

/** An example problem document for a status (used in the OpenAPI document). */
export function problemExample (status: number): Record<string, unknown> {
  const [title, detail] = problemTitles[status] ?? ['Error', 'An error.']
  const example: Record<string, unknown> = { type: `https://rogatory.eu/problems/${problemSlugs[status] ?? 'error'}`, title, status, detail }
  if (status === 400) example.errors = [{ pointer: '/recipient', detail: 'is required' }]
  return example
}

/**
 * Problem responses for the listed statuses, keyed as route response schemas
 * expect: served as application/problem+json, with an example each.
 */
export function problemResponses (...statuses: number[]): Record<number, unknown> {
  return Object.fromEntries(statuses.map((status) => [status, problemResponse(status)]))
}

/** One problem response (see problemResponses). */
export function problemResponse (status: number, description?: string): Record<string, unknown> {
  return {
    description: description ?? `${problemTitles[status]?.[0] ?? 'Error'}: ${problemTitles[status]?.[1] ?? 'see the problem document.'}`,
    content: { 'application/problem+json': { schema: problemRef, example: problemExample(status) } }
  }
}

const timestamp = timestampSchema

export const requestViewSchema = {
  type: 'object',
  properties: {
    id: requestIdSchema,
    type: { type: 'string', enum: requestTypes },
    sender: authorityIdSchema,
    recipient: authorityIdSchema,
    senderReference: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[^\\s\\u0000-\\u001F\\u007F-\\u009F]([^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F])?$' },
    priority: { type: 'string', enum: ['normal', 'urgent'] },
    handlingCode: { type: 'string', enum: ['H0', 'H1', 'H2', 'H3'] },
    legalBasis: { type: 'string', enum: legalBases },
    agreementId: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' },
    status: { type: 'string', enum: requestStatuses },
    submittedAt: timestamp,
    deliveredAt: timestamp,
    acknowledgedAt: timestamp,
    respondedAt: timestamp,
    closedAt: timestamp,
    recipientReference: { type: 'string', minLength: 1, maxLength: 100 },
    estimatedAnswerDate: dateSchema,
    deadlines: {
      type: 'object',
      properties: { acknowledgement: timestamp, response: timestamp, responseOriginal: timestamp },
      required: ['response', 'responseOriginal']
    },
    overdue: {
      type: 'object',
      properties: { acknowledgement: { type: 'boolean' }, response: { type: 'boolean' } },
      required: ['acknowledgement', 'response']
    },
    content: { type: 'object', additionalProperties: true, description: 'The request as submitted (personal data); only for the parties\' agencies and liaison officers' }
  },
  required: ['id', 'type', 'sender', 'recipient', 'senderReference', 'status', 'submittedAt', 'deadlines', 'overdue'],
  examples: [{
    id: '0193a1f2-5b7c-7d4e-8f90-1a2b3c4d5e6f',
    type: 'mla',
    sender: 'TR-MOJ',
    recipient: 'DE-BFJ',
    senderReference: '2026/48213 Soruşturma',
    priority: 'normal',
    handlingCode: 'H2',
    legalBasis: 'coe-1959-convention',
    agreementId: 'coe1959-tr-moj-de-bfj',
    status: 'acknowledged',
    submittedAt: '2026-11-02T09:14:03.512Z',
    deliveredAt: '2026-11-02T09:14:04.020Z',
    acknowledgedAt: '2026-11-04T08:30:00.000Z',
    recipientReference: 'BfJ-RH-2026-0815',
    estimatedAnswerDate: '2027-02-01',
    deadlines: { acknowledgement: '2026-11-12T09:14:03.512Z', response: '2027-01-31T09:14:03.512Z', responseOriginal: '2027-01-31T09:14:03.512Z' },
    overdue: { acknowledgement: false, response: false }
  }]
} as const

const eventTypePattern = '^request\\.[a-z_]{3,40}$'

export const eventSchema = {
  type: 'object',
  properties: {
    id: { ...streamIdSchema, description: 'audit stream entry id' },
    seq: countSchema,
    type: { type: 'string', maxLength: 48, pattern: eventTypePattern },
    at: timestamp,
    requestId: requestIdSchema,
    requestType: { type: 'string', enum: requestTypes },
    sender: authorityIdSchema,
    recipient: authorityIdSchema,
    actor: {
      type: 'object',
      properties: {
        authority: { type: 'string', maxLength: 15, pattern: '^([A-Z]{2}-[A-Z0-9]{2,12}|gateway)$', description: 'An authority id, or gateway for events the gateway itself caused' },
        subject: { type: 'string', maxLength: 16384, description: 'The token\'s sub claim (bounded by the size of a request header)' }
      }
    },
    data: { type: 'object', additionalProperties: true, description: 'Event-specific metadata: ids, deadlines, statuses; never personal data' }
  },
  required: ['id', 'seq', 'type', 'at', 'requestId'],
  examples: [{
    id: '1793348043512-0',
    seq: 1042,
    type: 'request.acknowledged',
    at: '2026-11-04T08:30:00.000Z',
    requestId: '0193a1f2-5b7c-7d4e-8f90-1a2b3c4d5e6f',
    requestType: 'mla',
    sender: 'TR-MOJ',
    recipient: 'DE-BFJ',
    actor: { authority: 'DE-BFJ', subject: 'clerk@de-bfj' },
    data: { recipientReference: 'BfJ-RH-2026-0815' }
  }]
} as const

export const idParams = {
  type: 'object',
  properties: { id: { type: 'string', format: 'uuid', maxLength: 45, description: 'The request id (a UUID)' } },
  required: ['id'],
  additionalProperties: false
} as const

export const bearerSecurity = [{ bearerAuth: [] }]

/** Routes for operators only: a bearer token with the admin role (OpenAPI 3.1 lets a bearer requirement list role names). */
export const adminSecurity = [{ bearerAuth: ['admin'] }]

/** A plain status answer (healthz, readyz). */
export const statusSchema = {
  type: 'object',
  properties: { status: { type: 'string', enum: ['ok', 'ready'] } },
  required: ['status']
} as const
