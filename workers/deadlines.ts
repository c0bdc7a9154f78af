import { directoryOf } from '../src/config/gateway-config.js'
import { pendingDeadlines, type Deadline, type DeadlineKind } from '../src/domain/deadlines.js'
import type { EventType } from '../src/domain/events.js'
import { gatewayActor } from '../src/domain/events.js'
import { isOpen } from '../src/domain/lifecycle.js'
import type { GatewayConfig } from '../src/domain/types.js'
import { auditEvent, type RequestService } from '../src/services/request-service.js'
import type { StoredRequest } from '../src/store/request-store.js'

const reminderField = { acknowledgement_reminder: 'ackRemindedFor', response_reminder: 'respRemindedFor' } as const
const reminderEvent: Record<keyof typeof reminderField, EventType> = {
  acknowledgement_reminder: 'request.acknowledgement_reminder',
  response_reminder: 'request.response_reminder'
}
/** Rounds of read → fire → re-read for one request before leaving it to its lease. */
const maxRoundsPerRequest = 8

/** Is the clock this deadline watches still running, still at the deadline it was made for? */
function stillPending (request: StoredRequest, deadline: Deadline): boolean {
  if (!isOpen(request.status)) return false
  if (deadline.kind === 'acknowledgement_reminder' || deadline.kind === 'acknowledgement_due') {
    return request.ackDue === deadline.dueAt && request.acknowledgedAt === undefined && !request.ackOverdue
  }
  return request.respDue === deadline.dueAt && !request.respOverdue
}

export interface DeadlineFirer {
  /**
   * Records one deadline or reminder: the new record, or undefined when there was
   * nothing to record (its step was taken, its deadline moved, it already fired).
   * `loaded`: the record as just read, tried first.
   */
  fire: (deadline: Deadline, loaded?: StoredRequest) => Promise<StoredRequest | undefined>
  /**
   * Records every deadline and reminder of the request that is due by `now`, in
   * order, and leaves the request's entry in the deadline set at its next one.
   * Returns what it recorded (empty when everything had been done already).
   * `loaded`: the record as just read, used instead of reading it again.
   */
  fireDue: (requestId: string, now: number, loaded?: StoredRequest) => Promise<DeadlineKind[]>
}

/** Fires deadlines. The stored record is the truth: whatever is no longer pending records nothing. */
export function createDeadlineFirer (service: RequestService, config: GatewayConfig): DeadlineFirer {
  async function fire (deadline: Deadline, loaded?: StoredRequest): Promise<StoredRequest | undefined> {
    const dueAt = new Date(deadline.dueAt).toISOString()
    if (deadline.kind === 'acknowledgement_reminder' || deadline.kind === 'response_reminder') {
      const kind = deadline.kind
      const field = reminderField[kind]
      return await service.record(deadline.requestId, (request) => {
        if (!stillPending(request, deadline) || request[field] === deadline.dueAt) return undefined
        return { event: reminderEvent[kind], fields: { [field]: deadline.dueAt }, data: { dueAt } }
      }, loaded)
    }
    if (deadline.kind === 'acknowledgement_due') {
      return await service.record(deadline.requestId, (request) => stillPending(request, deadline)
        ? { event: 'request.acknowledgement_overdue', fields: { ackOverdue: 1 }, data: { dueAt } }
        : undefined, loaded)
    }
    const request = loaded ?? await service.store.get(deadline.requestId, { payload: false })
    if (request === undefined || !stillPending(request, deadline)) return undefined
    if (directoryOf(config).agreementById(request.agreementId)?.onSilence === 'deemed_accepted') {
      return await service.transition(request.id, 'gateway', { kind: 'deem_accepted' }, {
        check: (current) => {
          if (!stillPending(current, deadline)) throw new StaleDeadline()
        },
        fields: () => ({ respOverdue: 1 }),
        leadingEvents: (current, at) => [auditEvent(current, 'request.response_overdue', gatewayActor, at, { status: current.status, dueAt })],
        data: { dueAt, onSilence: 'deemed_accepted' }
      }).catch((error: unknown) => {
        if (error instanceof StaleDeadline) return undefined
        throw error
      })
    }
    return await service.record(deadline.requestId, (current) => stillPending(current, deadline)
      ? { event: 'request.response_overdue', fields: { respOverdue: 1 }, data: { dueAt } }
      : undefined, request)
  }

  async function fireDue (requestId: string, now: number, loaded?: StoredRequest): Promise<DeadlineKind[]> {
    const recorded: DeadlineKind[] = []
    let request = loaded ?? await service.store.get(requestId, { payload: false })
    // True while `request` is what our own commit left: that commit already set the entry.
    let ownCommit = false
    for (let round = 0; round < maxRoundsPerRequest; round++) {
      if (request === undefined) {
        await service.store.forgetDeadlineIfGone(requestId)
        return recorded
      }
      const due = pendingDeadlines(request, service.reminderFraction(request), now).filter((deadline) => deadline.fireAt <= now)
      if (due.length === 0) {
        if (ownCommit || await service.store.rescheduleDeadline(requestId, request.version, service.nextDeadline(request) ?? undefined)) return recorded
        request = await service.store.get(requestId, { payload: false })
        continue
      }
      const next = await fire(due[0], request)
      if (next !== undefined) {
        recorded.push(due[0].kind)
        request = next
        ownCommit = true
      } else {
        request = await service.store.get(requestId, { payload: false })
        ownCommit = false
      }
    }
    // Still changing under us: the entry keeps its lease and comes back when it runs out.
    return recorded
  }

  return { fire, fireDue }
}

class StaleDeadline extends Error {}
