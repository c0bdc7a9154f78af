import type { StoredRequest } from '../store/request-store.js'

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString())

export interface RequestView {
  id: string
  type: string
  sender: string
  recipient: string
  senderReference: string
  priority: string
  handlingCode: string
  legalBasis: string
  agreementId: string
  status: string
  submittedAt: string
  deliveredAt?: string
  acknowledgedAt?: string
  respondedAt?: string
  closedAt?: string
  recipientReference?: string
  estimatedAnswerDate?: string
  deadlines: { acknowledgement?: string, response: string, responseOriginal: string }
  overdue: { acknowledgement: boolean, response: boolean }
  content?: unknown
}

/** The API's view of a stored request; `content` only when the caller may see personal data. */
export function toView (request: StoredRequest, content?: unknown): RequestView {
  return {
    id: request.id,
    type: request.type,
    sender: request.sender,
    recipient: request.recipient,
    senderReference: request.senderReference,
    priority: request.priority,
    handlingCode: request.handlingCode,
    legalBasis: request.legalBasis,
    agreementId: request.agreementId,
    status: request.status,
    submittedAt: new Date(request.submittedAt).toISOString(),
    deliveredAt: iso(request.deliveredAt),
    acknowledgedAt: iso(request.acknowledgedAt),
    respondedAt: iso(request.respondedAt),
    closedAt: iso(request.closedAt),
    recipientReference: request.recipientReference,
    estimatedAnswerDate: request.estimatedAnswerDate,
    deadlines: {
      acknowledgement: iso(request.ackDue),
      response: new Date(request.respDue).toISOString(),
      responseOriginal: new Date(request.respDueOriginal).toISOString()
    },
    overdue: { acknowledgement: request.ackOverdue, response: request.respOverdue },
    content
  }
}
