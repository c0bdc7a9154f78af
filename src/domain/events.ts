import type { Principal } from './permissions.js'
import type { RequestType } from './types.js'

export type EventType =
  | 'request.submitted'
  | 'request.retrieved'
  | 'request.delivered'
  | 'request.delivery_failed'
  | 'request.acknowledged'
  | 'request.clarification_requested'
  | 'request.clarified'
  | 'request.extended'
  | 'request.partially_executed'
  | 'request.executed'
  | 'request.refused'
  | 'request.withdrawn'
  | 'request.acknowledgement_reminder'
  | 'request.response_reminder'
  | 'request.acknowledgement_overdue'
  | 'request.response_overdue'
  | 'request.deemed_accepted'
  | 'request.disclosed'

/**
 * One entry of the audit log. Metadata only: ids, parties, types, statuses,
 * deadlines and timings; never a name, a document number or free text.
 */
export interface AuditEvent {
  type: EventType
  at: string
  requestId: string
  requestType: RequestType
  sender: string
  recipient: string
  actor: { authority: string, subject: string }
  data: Record<string, string | number | boolean | null | string[]>
}

/** The gateway itself, for events nobody in particular caused (deadlines, deliveries). */
export const gatewayActor = { authority: 'gateway', subject: 'rogatory' }

export const actorOf = (principal: Principal): AuditEvent['actor'] => ({ authority: principal.authority, subject: principal.subject })
