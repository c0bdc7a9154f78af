import type { EventType } from './events.js'

export type Audience = 'sender' | 'recipient'

/**
 * Who must hear of each event: the party that did not cause it, or both when the
 * gateway records silence. Retrieval and disclosure records are not notified:
 * the sender learns of delivery from request.delivered / request.retrieved.
 */
const audiences: Partial<Record<EventType, readonly Audience[]>> = {
  'request.submitted': ['recipient'],
  'request.retrieved': ['sender'],
  'request.delivered': ['sender'],
  'request.delivery_failed': ['sender'],
  'request.acknowledged': ['sender'],
  'request.clarification_requested': ['sender'],
  'request.clarified': ['recipient'],
  'request.extended': ['sender'],
  'request.partially_executed': ['sender'],
  'request.executed': ['sender'],
  'request.refused': ['sender'],
  'request.withdrawn': ['recipient'],
  'request.acknowledgement_reminder': ['recipient'],
  'request.response_reminder': ['recipient'],
  'request.acknowledgement_overdue': ['sender', 'recipient'],
  'request.response_overdue': ['sender', 'recipient'],
  'request.deemed_accepted': ['sender', 'recipient']
}

export function audienceOf (type: EventType): readonly Audience[] {
  return audiences[type] ?? []
}

/** Should a failed delivery of this event be recorded as request.delivery_failed? (Not of that event itself.) */
export const recordsDeliveryFailure = (type: EventType): boolean => type !== 'request.delivery_failed'

/** Whether a webhook response status is worth retrying (RFC 9110: 408 and 429 are transient). */
export function isRetryableStatus (status: number): boolean {
  if (status >= 200 && status < 300) return false
  if (status === 408 || status === 429) return true
  return status >= 500 || status < 200
}
