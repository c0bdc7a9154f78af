import type { Job } from 'bullmq'
import { directoryOf } from '../src/config/gateway-config.js'
import type { EventType } from '../src/domain/events.js'
import { isOpen } from '../src/domain/lifecycle.js'
import type { GatewayConfig } from '../src/domain/types.js'
import { auditEvent, type RequestService } from '../src/services/request-service.js'
import { gatewayActor } from '../src/domain/events.js'
import type { StoredRequest } from '../src/store/request-store.js'
import type { DeadlineJob } from './queues.js'

export type DeadlineOutcome = 'recorded' | 'stale'

const reminderField = { acknowledgement_reminder: 'ackRemindedFor', response_reminder: 'respRemindedFor' } as const
const reminderEvent: Record<keyof typeof reminderField, EventType> = {
  acknowledgement_reminder: 'request.acknowledgement_reminder',
  response_reminder: 'request.response_reminder'
}

/** Is the clock this job watches still running, still at the deadline the job was made for? */
function stillPending (request: StoredRequest, job: DeadlineJob): boolean {
  if (!isOpen(request.status)) return false
  if (job.kind === 'acknowledgement_reminder' || job.kind === 'acknowledgement_due') {
    return request.ackDue === job.dueAt && request.acknowledgedAt === undefined && !request.ackOverdue
  }
  return request.respDue === job.dueAt && !request.respOverdue
}

/**
 * Fires a deadline or a reminder. The stored record is the truth: a job whose
 * step was taken, whose deadline moved, or which already fired, records nothing.
 */
export function createDeadlineProcessor (service: RequestService, config: GatewayConfig) {
  return async function processDeadline (job: Job<DeadlineJob>): Promise<DeadlineOutcome> {
    const data = job.data
    if (data.kind === 'acknowledgement_reminder' || data.kind === 'response_reminder') {
      const kind = data.kind
      const field = reminderField[kind]
      const done = await service.record(data.requestId, (request) => {
        if (!stillPending(request, data)) return undefined
        if (request[field] === data.dueAt) return undefined
        return { event: reminderEvent[kind], fields: { [field]: data.dueAt }, data: { dueAt: new Date(data.dueAt).toISOString() } }
      })
      return done === undefined ? 'stale' : 'recorded'
    }
    if (data.kind === 'acknowledgement_due') {
      const done = await service.record(data.requestId, (request) => stillPending(request, data)
        ? { event: 'request.acknowledgement_overdue', fields: { ackOverdue: 1 }, data: { dueAt: new Date(data.dueAt).toISOString() } }
        : undefined)
      return done === undefined ? 'stale' : 'recorded'
    }
    const request = await service.store.get(data.requestId)
    if (request === undefined || !stillPending(request, data)) return 'stale'
    const agreement = directoryOf(config).agreementById(request.agreementId)
    const dueAt = new Date(data.dueAt).toISOString()
    if (agreement?.onSilence === 'deemed_accepted') {
      const closed = await service.transition(request.id, 'gateway', { kind: 'deem_accepted' }, {
        check: (current) => {
          if (!stillPending(current, data)) throw new StaleDeadline()
        },
        fields: () => ({ respOverdue: 1 }),
        leadingEvents: (current, at) => [auditEvent(current, 'request.response_overdue', gatewayActor, at, { status: current.status, dueAt })],
        data: { dueAt, onSilence: 'deemed_accepted' }
      }).catch((error: unknown) => {
        if (error instanceof StaleDeadline) return undefined
        throw error
      })
      return closed === undefined ? 'stale' : 'recorded'
    }
    const done = await service.record(data.requestId, (current) => stillPending(current, data)
      ? { event: 'request.response_overdue', fields: { respOverdue: 1 }, data: { dueAt } }
      : undefined)
    return done === undefined ? 'stale' : 'recorded'
  }
}

class StaleDeadline extends Error {}
