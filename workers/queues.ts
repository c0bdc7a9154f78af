import { Redis } from 'ioredis'

export const queueNames = { delivery: 'delivery', deadlines: 'deadlines' } as const
export const queuePrefix = 'rogq'

export type DeadlineKind = 'acknowledgement_reminder' | 'acknowledgement_due' | 'response_reminder' | 'response_due'

export interface DeadlineJob {
  requestId: string
  kind: DeadlineKind
  /** The deadline (ms) this job belongs to; a record whose deadline moved makes it stale. */
  dueAt: number
  /** When the job fires (ms): the deadline itself, or the reminder point before it. */
  fireAt: number
}

export interface DeliveryJob {
  /** Audit stream id of the event: stable across retries and re-dispatch, hence the webhook-id. */
  eventId: string
  authority: string
  /** The event as logged (metadata only). */
  event: string
  /** Delays of the attempts, ms; the schedule of the recipient authority. */
  scheduleMs: number[]
  timeoutMs: number
}

// Job ids are derived from what the job is about, so that re-dispatching an
// event or re-sweeping a request adds nothing that already exists.
export const deliveryJobId = (eventId: string, authority: string): string => `deliver_${eventId}_${authority}`
export const deadlineJobId = (job: DeadlineJob): string => `${job.kind}_${job.requestId}_${job.dueAt}`

/** BullMQ's workers block on Redis, so their connections must retry forever rather than fail a command. */
export function createQueueConnection (url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true })
}
