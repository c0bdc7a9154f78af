import { reminderAt } from '../src/domain/deadlines.js'
import type { Agreement } from '../src/domain/types.js'
import type { StoredRequest } from '../src/store/request-store.js'
import type { DeadlineJob } from './queues.js'

/** The deadline jobs an open request should have now: reminders and due dates of each pending clock. */
export function deadlineJobsFor (request: StoredRequest, agreement: Agreement | undefined): DeadlineJob[] {
  const fraction = agreement?.reminderAtFraction ?? 0.8
  const start = new Date(request.submittedAt)
  const jobs: DeadlineJob[] = []
  if (request.ackDue !== undefined && request.acknowledgedAt === undefined && !request.ackOverdue) {
    const dueAt = request.ackDue
    jobs.push({ requestId: request.id, kind: 'acknowledgement_reminder', dueAt, fireAt: reminderAt(start, new Date(dueAt), fraction).getTime() })
    jobs.push({ requestId: request.id, kind: 'acknowledgement_due', dueAt, fireAt: dueAt })
  }
  if (!request.respOverdue) {
    const dueAt = request.respDue
    jobs.push({ requestId: request.id, kind: 'response_reminder', dueAt, fireAt: reminderAt(start, new Date(dueAt), fraction).getTime() })
    jobs.push({ requestId: request.id, kind: 'response_due', dueAt, fireAt: dueAt })
  }
  return jobs
}
