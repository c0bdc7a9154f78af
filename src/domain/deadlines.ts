// Deadline arithmetic: what an agreement and a request's facts make of the clocks.
// Pure functions, no I/O; all arithmetic in UTC via duration.ts.

import type { Agreement, Deadlines } from './types.js'
import { addDuration, subtractDuration } from './duration.js'

export interface DeadlineFacts {
  submittedAt: Date
  /** ISO date 'YYYY-MM-DD' by which the sender needs the answer (urgent requests). */
  urgentBy?: string
  /** ISO date 'YYYY-MM-DD' on which a person in custody is released (repatriation). */
  custodyReleaseDate?: string
}

export type PulledEarlierBy = 'urgency' | 'custody_release'

export interface ComputedDeadlines {
  /** Absent when the agreement has no acknowledgement clock. Never after `response`. */
  acknowledgement?: Date
  /** The deadline the request is answered against. */
  response: Date
  /** submittedAt + respondWithin, before any fact pulled it earlier. */
  responseBase: Date
  /** Set when a fact of the case made `response` earlier than `responseBase`. */
  pulledEarlierBy?: PulledEarlierBy
}

const ISO_DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/

/** Midnight UTC at the start of an ISO calendar date; throws RangeError on a malformed or impossible date. */
export function startOfUtcDay (isoDate: string, what = 'date'): Date {
  const m = typeof isoDate === 'string' ? ISO_DATE_RE.exec(isoDate) : null
  if (m === null) throw new RangeError(`${what} "${String(isoDate)}" is not an ISO date (YYYY-MM-DD)`)
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const out = new Date(0)
  out.setUTCFullYear(y, mo - 1, d)
  if (out.getUTCFullYear() !== y || out.getUTCMonth() !== mo - 1 || out.getUTCDate() !== d) {
    throw new RangeError(`${what} "${isoDate}" is not a calendar date`)
  }
  return out
}

/** The last millisecond of an ISO calendar date in UTC (date T23:59:59.999Z). */
export function endOfUtcDay (isoDate: string, what = 'date'): Date {
  return new Date(startOfUtcDay(isoDate, what).getTime() + 86_400_000 - 1)
}

function assertValidDate (d: Date, what: string): void {
  if (!(d instanceof Date) || Number.isNaN(d.getTime())) throw new RangeError(`${what} is not a valid date`)
}

/**
 * The deadlines of a request submitted under `agreement`.
 *
 * - response = submittedAt + respondWithin, unless a fact of the case pulls it
 *   earlier: the urgent date (end of that day, UTC) or, for a person in custody,
 *   the release date (00:00Z) minus the agreement's custodyLeadTime (the release
 *   date itself when no lead time is configured). Facts only ever make the
 *   deadline earlier, never later; when both pull, the earlier one wins (ties go
 *   to 'urgency').
 * - A pulled date that is already at or before submittedAt makes the response
 *   due immediately: the deadline is submittedAt itself. We deliberately do not
 *   reject the request or produce a deadline before it existed: the sender must
 *   be able to file a late-but-urgent request, and the recipient sees it overdue
 *   from the start, which is the honest picture ("negative evidence" at once).
 * - acknowledgement = submittedAt + acknowledgeWithin (absent when the
 *   agreement has none), clamped so it is never after the response deadline.
 */
export function computeDeadlines (agreement: Agreement, facts: DeadlineFacts): ComputedDeadlines {
  const { submittedAt } = facts
  assertValidDate(submittedAt, 'submittedAt')

  const responseBase = addDuration(submittedAt, agreement.respondWithin)
  let response = responseBase
  let pulledEarlierBy: PulledEarlierBy | undefined

  if (facts.urgentBy !== undefined) {
    const urgent = endOfUtcDay(facts.urgentBy, 'urgentBy')
    if (urgent.getTime() < response.getTime()) {
      response = urgent
      pulledEarlierBy = 'urgency'
    }
  }
  if (facts.custodyReleaseDate !== undefined) {
    const release = startOfUtcDay(facts.custodyReleaseDate, 'custodyReleaseDate')
    const custody = agreement.custodyLeadTime !== undefined
      ? subtractDuration(release, agreement.custodyLeadTime)
      : release
    if (custody.getTime() < response.getTime()) {
      response = custody
      pulledEarlierBy = 'custody_release'
    }
  }
  // Due immediately rather than in the past (see above).
  if (response.getTime() < submittedAt.getTime()) response = new Date(submittedAt.getTime())

  const out: ComputedDeadlines = { response, responseBase }
  if (pulledEarlierBy !== undefined) out.pulledEarlierBy = pulledEarlierBy
  if (agreement.acknowledgeWithin !== undefined) {
    const ack = addDuration(submittedAt, agreement.acknowledgeWithin)
    out.acknowledgement = ack.getTime() > response.getTime() ? new Date(response.getTime()) : ack
  }
  return out
}

/** The stored form (ISO timestamps) of computed deadlines. */
export function toDeadlines (computed: Pick<ComputedDeadlines, 'acknowledgement' | 'response'>): Deadlines {
  const out: Deadlines = { response: computed.response.toISOString() }
  if (computed.acknowledgement !== undefined) out.acknowledgement = computed.acknowledgement.toISOString()
  return out
}

/**
 * The latest response deadline an extension may reach: the ORIGINAL response
 * deadline (as fixed at submission) + extensionMax. Undefined when the
 * agreement allows no extension.
 */
export function maxExtendedResponse (agreement: Agreement, originalResponse: Date): Date | undefined {
  if (agreement.extensionMax === undefined) return undefined
  assertValidDate(originalResponse, 'originalResponse')
  return addDuration(originalResponse, agreement.extensionMax)
}

/**
 * Whether the response deadline may move from `currentResponse` to `requested`:
 * it must be strictly later than the current deadline and no later than
 * original + extensionMax. Several successive extensions are fine as long as
 * the cap (always measured from the original deadline) holds.
 */
export function checkExtension (
  agreement: Agreement,
  originalResponse: Date,
  currentResponse: Date,
  requested: Date
): { ok: true } | { ok: false; reason: string } {
  const max = maxExtendedResponse(agreement, originalResponse)
  if (max === undefined) {
    return { ok: false, reason: `agreement ${agreement.id} (${agreement.legalBasis}) allows no extension` }
  }
  if (!(requested instanceof Date) || Number.isNaN(requested.getTime())) {
    return { ok: false, reason: 'the requested deadline is not a valid date' }
  }
  assertValidDate(currentResponse, 'currentResponse')
  if (requested.getTime() <= currentResponse.getTime()) {
    return {
      ok: false,
      reason: `the requested deadline ${requested.toISOString()} is not later than the current one ${currentResponse.toISOString()}`
    }
  }
  if (requested.getTime() > max.getTime()) {
    return {
      ok: false,
      reason: `the requested deadline ${requested.toISOString()} is beyond the limit ${max.toISOString()} ` +
        `(original deadline ${originalResponse.toISOString()} + ${agreement.extensionMax} under agreement ${agreement.id})`
    }
  }
  return { ok: true }
}

/**
 * When a reminder for the clock running from `start` to `due` goes out:
 * start + fraction × (due − start), rounded down to the millisecond (so never
 * after the exact point). A clock that is already at or past its end
 * (due ≤ start) reminds at `due`. Throws RangeError for a fraction outside (0, 1).
 */
export function reminderAt (start: Date, due: Date, fraction: number): Date {
  assertValidDate(start, 'start')
  assertValidDate(due, 'due')
  if (!Number.isFinite(fraction) || fraction <= 0 || fraction >= 1) {
    throw new RangeError(`reminder fraction ${fraction} is not strictly between 0 and 1`)
  }
  const span = due.getTime() - start.getTime()
  if (span <= 0) return new Date(due.getTime())
  return new Date(start.getTime() + Math.floor(span * fraction))
}

// ---------------------------------------------------------------------------
// What is still to fire for a stored request: reminders and due dates of the
// clocks that are running. The gateway keeps one entry per open request in a
// sorted set, scored by the earliest of these; each commit moves it.

export type DeadlineKind = 'acknowledgement_reminder' | 'acknowledgement_due' | 'response_reminder' | 'response_due'

export interface Deadline {
  requestId: string
  kind: DeadlineKind
  /** The deadline (ms) this belongs to; a record whose deadline moved makes it stale. */
  dueAt: number
  /** When it fires (ms): the deadline itself, or the reminder point before it. */
  fireAt: number
}

/** The facts of a stored request its clocks depend on. */
export interface ClockFacts {
  id: string
  status: string
  submittedAt: number
  ackDue?: number
  acknowledgedAt?: number
  ackOverdue: boolean
  ackRemindedFor?: number
  respDue: number
  respOverdue: boolean
  respRemindedFor?: number
}

const closedStatuses = new Set(['executed', 'refused', 'withdrawn', 'deemed_accepted'])

/**
 * Reminders and due dates still to fire, earliest first. A reminder already sent
 * for this deadline is done; so is one whose deadline has passed by `now`
 * (the overdue notice says more than a late reminder would).
 */
export function pendingDeadlines (request: ClockFacts, reminderFraction = 0.8, now = -Infinity): Deadline[] {
  if (closedStatuses.has(request.status)) return []
  const start = new Date(request.submittedAt)
  const out: Deadline[] = []
  const clock = (reminder: DeadlineKind, due: DeadlineKind, dueAt: number, remindedFor: number | undefined): void => {
    if (remindedFor !== dueAt && now < dueAt) out.push({ requestId: request.id, kind: reminder, dueAt, fireAt: reminderAt(start, new Date(dueAt), reminderFraction).getTime() })
    out.push({ requestId: request.id, kind: due, dueAt, fireAt: dueAt })
  }
  if (request.ackDue !== undefined && request.acknowledgedAt === undefined && !request.ackOverdue) {
    clock('acknowledgement_reminder', 'acknowledgement_due', request.ackDue, request.ackRemindedFor)
  }
  if (!request.respOverdue) clock('response_reminder', 'response_due', request.respDue, request.respRemindedFor)
  return out.sort((a, b) => a.fireAt - b.fireAt)
}

/** When the request next needs the deadline worker; undefined when nothing is left to fire. */
export function nextDeadlineAt (request: ClockFacts, reminderFraction = 0.8): number | undefined {
  return pendingDeadlines(request, reminderFraction)[0]?.fireAt
}
