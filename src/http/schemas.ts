// Route schemas shared by several routes: one schema drives validation,
// serialization and the OpenAPI document.

export const problemSchema = {
  $id: 'problem',
  type: 'object',
  description: 'RFC 9457 problem details',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    currentStatus: { type: 'string' },
    requestId: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { pointer: { type: 'string' }, detail: { type: 'string' } },
        required: ['pointer', 'detail']
      }
    }
  },
  required: ['type', 'title', 'status'],
  additionalProperties: true
} as const

export const problemRef = { $ref: 'problem#' } as const

/** Problem responses for the listed statuses, keyed as route response schemas expect. */
export function problemResponses (...statuses: number[]): Record<number, unknown> {
  return Object.fromEntries(statuses.map((status) => [status, { ...problemRef, description: `problem (${status})` }]))
}

const timestamp = { type: 'string', format: 'date-time' } as const

export const requestViewSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', format: 'uuid' },
    type: { type: 'string', enum: ['mla', 'repatriation'] },
    sender: { type: 'string' },
    recipient: { type: 'string' },
    senderReference: { type: 'string' },
    priority: { type: 'string', enum: ['normal', 'urgent'] },
    handlingCode: { type: 'string', enum: ['H0', 'H1', 'H2', 'H3'] },
    legalBasis: { type: 'string' },
    agreementId: { type: 'string' },
    status: { type: 'string' },
    submittedAt: timestamp,
    deliveredAt: timestamp,
    acknowledgedAt: timestamp,
    respondedAt: timestamp,
    closedAt: timestamp,
    recipientReference: { type: 'string' },
    estimatedAnswerDate: { type: 'string' },
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
  required: ['id', 'type', 'sender', 'recipient', 'senderReference', 'status', 'submittedAt', 'deadlines', 'overdue']
} as const

export const eventSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'audit stream entry id' },
    seq: { type: 'integer' },
    type: { type: 'string' },
    at: timestamp,
    requestId: { type: 'string' },
    requestType: { type: 'string' },
    sender: { type: 'string' },
    recipient: { type: 'string' },
    actor: { type: 'object', properties: { authority: { type: 'string' }, subject: { type: 'string' } } },
    data: { type: 'object', additionalProperties: true }
  },
  required: ['id', 'seq', 'type', 'at', 'requestId']
} as const

export const idParams = {
  type: 'object',
  properties: { id: { type: 'string', format: 'uuid' } },
  required: ['id'],
  additionalProperties: false
} as const

export const bearerSecurity = [{ bearerAuth: [] }]
