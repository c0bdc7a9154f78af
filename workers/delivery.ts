import { UnrecoverableError, type Job } from 'bullmq'
import { Webhook } from 'standardwebhooks'
import { request as httpRequest } from 'undici'
import type { AuditEvent } from '../src/domain/events.js'
import { isRetryableStatus, recordsDeliveryFailure } from '../src/domain/notifications.js'
import type { RequestService } from '../src/services/request-service.js'
import type { DeliveryJob } from './queues.js'

export interface DeliveryTarget {
  url: string
  secret: string
}

/** The webhook body: the event and the request's metadata, never its personal data. */
export function webhookPayload (eventId: string, event: AuditEvent & { seq?: number }): string {
  return JSON.stringify({
    type: event.type,
    timestamp: event.at,
    data: {
      ...event.data,
      eventId,
      requestId: event.requestId,
      requestType: event.requestType,
      sender: event.sender,
      recipient: event.recipient,
      actor: event.actor.authority
    }
  })
}

async function post (target: DeliveryTarget, messageId: string, body: string, timeoutMs: number): Promise<number> {
  // One instant for the signature and the header: read twice, the clock can cross a
  // second in between and the receiver rejects the signature.
  const signedAt = new Date()
  const signature = new Webhook(target.secret).sign(messageId, signedAt, body)
  const response = await httpRequest(target.url, {
    method: 'POST',
    body,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'Rogatory-Webhooks/1',
      'webhook-id': messageId,
      'webhook-timestamp': String(Math.floor(signedAt.getTime() / 1000)),
      'webhook-signature': signature
    },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs
  })
  await response.body.dump()
  return response.statusCode
}

export type AttemptOutcome =
  | { kind: 'delivered', status: number }
  /** Failed; another attempt is due on the schedule. */
  | { kind: 'retry', failure: string, status?: number }
  /** Failed for good (a 4xx other than 408/429, or the schedule is spent); request.delivery_failed is recorded. */
  | { kind: 'given_up', failure: string, status?: number }
  | { kind: 'no_target' }

/** Makes one delivery attempt; `attempt` counts from 1 over the whole schedule, wherever the attempts ran. */
export type Deliverer = (delivery: DeliveryJob, attempt: number) => Promise<AttemptOutcome>

/**
 * POSTs one event to one authority's URL. 2xx: done (and the request is
 * delivered when this was its submission). 4xx other than 408/429: given up at
 * once. Anything else is retried on the authority's schedule; the last failure
 * records request.delivery_failed for the sender to see.
 */
export function createDeliverer (service: RequestService, targetOf: (authority: string) => DeliveryTarget | undefined): Deliverer {
  return async function deliver (delivery: DeliveryJob, attempt: number): Promise<AttemptOutcome> {
    const { eventId, authority, timeoutMs } = delivery
    const target = targetOf(authority)
    if (target === undefined) return { kind: 'no_target' }
    const event = JSON.parse(delivery.event) as AuditEvent
    let status: number | undefined
    let failure: string
    try {
      status = await post(target, `msg_${eventId}_${authority}`, webhookPayload(eventId, event), timeoutMs)
      if (status >= 200 && status < 300) {
        if (event.type === 'request.submitted' && authority === event.recipient) {
          await service.transition(event.requestId, 'gateway', { kind: 'deliver' }, { data: { submissionEventId: eventId } })
        }
        return { kind: 'delivered', status }
      }
      failure = `HTTP ${status}`
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error)
    }
    const lastAttempt = (status !== undefined && !isRetryableStatus(status)) || attempt >= delivery.scheduleMs.length
    if (!lastAttempt) return { kind: 'retry', failure, status }
    if (recordsDeliveryFailure(event.type)) {
      const marker = `deliveryFailed_${eventId}_${authority}`
      await service.record(event.requestId, (request) => (request.deliveryFailures.includes(marker)
        ? undefined
        : {
            event: 'request.delivery_failed',
            fields: { [marker]: status ?? 0 },
            data: { failedEventId: eventId, failedEvent: event.type, authority, attempts: attempt, lastStatus: status ?? null }
          }))
    }
    return { kind: 'given_up', failure, status }
  }
}

/** The queue's processor: the attempts after the first, on the authority's schedule. */
export function createDeliveryProcessor (deliver: Deliverer) {
  return async function processDelivery (job: Job<DeliveryJob>): Promise<number | 'no_target'> {
    const outcome = await deliver(job.data, (job.data.attemptsBefore ?? 0) + job.attemptsMade + 1)
    switch (outcome.kind) {
      case 'no_target': return 'no_target'
      case 'delivered': return outcome.status
      case 'retry': throw new Error(`webhook delivery failed: ${outcome.failure}`)
      case 'given_up': throw new UnrecoverableError(`webhook delivery given up: ${outcome.failure}`)
    }
  }
}
