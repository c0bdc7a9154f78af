import { Redis } from 'ioredis'

export const queueNames = { delivery: 'delivery' } as const
export const queuePrefix = 'rogq'

export interface DeliveryJob {
  /** Audit stream id of the event: stable across retries and re-dispatch, hence the webhook-id. */
  eventId: string
  authority: string
  /** The event as logged (metadata only). */
  event: string
  /** Delays of the attempts, ms; the schedule of the recipient authority. */
  scheduleMs: number[]
  /** Attempts made before the job existed (the dispatcher's immediate first attempt): 0 or 1. */
  attemptsBefore?: number
  timeoutMs: number
}

// Job ids are derived from what the job is about, so that re-dispatching an
// event adds nothing that already exists.
export const deliveryJobId = (eventId: string, authority: string): string => `deliver_${eventId}_${authority}`

/** BullMQ's workers block on Redis, so their connections must retry forever rather than fail a command. */
export function createQueueConnection (url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, enableReadyCheck: true })
}
