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

/**
 * POSTs one event to one authority's URL. 2xx: done (and the request is
 * delivered when this was its submission). 4xx other than 408/429: given up at
 * once. Anything else is retried on the authority's schedule; the last failure
 * records request.delivery_failed for the sender to see.
 */
export function createDeliveryProcessor (service: RequestService, targetOf: (authority: string) => DeliveryTarget | undefined) {
  return async function processDelivery (job: Job<DeliveryJob>): Promise<number | 'no_target'> {
    const { eventId, authority, timeoutMs } = job.data
    const target = targetOf(authority)
    if (target === undefined) return 'no_target'
    const event = JSON.parse(job.data.event) as AuditEvent
    let status: number | undefined
    let failure: string
    try {
      status = await post(target, `msg_${eventId}_${authority}`, webhookPayload(eventId, event), timeoutMs)
      if (status >= 200 && status < 300) {
        if (event.type === 'request.submitted' && authority === event.recipient) {
          await service.transition(event.requestId, 'gateway', { kind: 'deliver' }, { data: { submissionEventId: eventId } })
        }
        return status
      }
      failure = `HTTP ${status}`
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error)
    }
    const lastAttempt = status !== undefined && !isRetryableStatus(status)
      ? true
      : job.attemptsMade + 1 >= (job.opts.attempts ?? 1)
    if (lastAttempt && recordsDeliveryFailure(event.type)) {
      const marker = `deliveryFailed_${eventId}_${authority}`
      await service.record(event.requestId, (request) => (request.deliveryFailures.includes(marker)
        ? undefined
        : {
            event: 'request.delivery_failed',
            fields: { [marker]: status ?? 0 },
            data: { failedEventId: eventId, failedEvent: event.type, authority, attempts: job.attemptsMade + 1, lastStatus: status ?? null }
          }))
    }
    if (status !== undefined && !isRetryableStatus(status)) throw new UnrecoverableError(`webhook answered ${failure}; not retried`)
    throw new Error(`webhook delivery failed: ${failure}`)
  }
}
