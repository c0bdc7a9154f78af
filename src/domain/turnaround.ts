import type { RequestStatus, RequestType } from './types.js'

// Turnaround aggregates: kept up to date at each transition, so that a report
// reads a handful of small hashes whatever the history behind them.
//
// Durations go into log-scaled buckets: bucket b holds [r^b, r^(b+1)) ms and is
// reported at its geometric middle, so any percentile is within (√r − 1) ≈ 0.5%
// of the exact value for r = 1.01.

const bucketRatio = 1.01
const logRatio = Math.log(bucketRatio)

export function bucketOf (durationMs: number): number {
  return durationMs < 1 ? -1 : Math.floor(Math.log(durationMs) / logRatio)
}

export function bucketValueMs (bucket: number): number {
  return bucket < 0 ? 0 : Math.exp((bucket + 0.5) * logRatio)
}

/** The facts of a request the aggregates depend on (a stored request has them all). */
export interface TurnaroundFacts {
  type: RequestType
  sender: string
  recipient: string
  status: RequestStatus
  submittedAt: number
  deliveredAt?: number
  acknowledgedAt?: number
  respondedAt?: number
  ackDue?: number
  respDue: number
  ackOverdue: boolean
  respOverdue: boolean
}

export type Clock = 'deliver' | 'acknowledge' | 'respond'
const clockCode: Record<Clock, string> = { deliver: 'd', acknowledge: 'a', respond: 'r' }

/** What one change adds to the aggregates: counters and histograms of its submission day, and live gauges. */
export interface AggregateDelta {
  /** `${day}` of submission, UTC, YYYY-MM-DD. */
  day: string
  /** `${sender}>${recipient}:${type}` */
  combo: string
  incr: Array<[string, number]>
  max: Array<[string, number]>
  live: Array<[string, number]>
}

const closed = (status: RequestStatus): boolean => ['executed', 'refused', 'withdrawn', 'deemed_accepted'].includes(status)
const answered = (status: RequestStatus): boolean => status === 'executed' || status === 'refused'

/** Open, and a pending step is past its deadline. */
export function overdueNow (request: TurnaroundFacts): boolean {
  if (closed(request.status)) return false
  return request.respOverdue || (request.ackOverdue && request.acknowledgedAt === undefined)
}

export const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10)
export const comboOf = (request: Pick<TurnaroundFacts, 'sender' | 'recipient' | 'type'>): string => `${request.sender}>${request.recipient}:${request.type}`

/** The aggregate changes implied by a request going from `before` (undefined: new) to `after`. Pure. */
export function aggregateDelta (before: TurnaroundFacts | undefined, after: TurnaroundFacts): AggregateDelta | undefined {
  const incr: Array<[string, number]> = []
  const max: Array<[string, number]> = []
  const live: Array<[string, number]> = []
  const clock = (name: Clock, at: number): void => {
    const duration = Math.max(0, at - after.submittedAt)
    incr.push([`h:${clockCode[name]}:${bucketOf(duration)}`, 1])
    max.push([`max:${clockCode[name]}`, duration])
  }
  if (before === undefined) {
    incr.push(['submitted', 1])
    live.push(['open', 1])
  }
  if (before?.deliveredAt === undefined && after.deliveredAt !== undefined) {
    incr.push(['delivered', 1])
    clock('deliver', after.deliveredAt)
  }
  if (before?.acknowledgedAt === undefined && after.acknowledgedAt !== undefined) {
    incr.push(['acknowledged', 1])
    clock('acknowledge', after.acknowledgedAt)
    if (after.ackDue === undefined || after.acknowledgedAt <= after.ackDue) incr.push(['acknowledgedOnTime', 1])
  }
  if (before !== undefined && !answered(before.status) && answered(after.status) && after.respondedAt !== undefined) {
    incr.push(['answered', 1], [after.status, 1])
    clock('respond', after.respondedAt)
    if (after.respondedAt <= after.respDue) incr.push(['answeredOnTime', 1])
  }
  if (before !== undefined && before.status !== after.status && (after.status === 'withdrawn' || after.status === 'deemed_accepted')) {
    incr.push([after.status, 1])
  }
  if (!(before?.ackOverdue ?? false) && after.ackOverdue) incr.push(['acknowledgementOverdue', 1])
  if (!(before?.respOverdue ?? false) && after.respOverdue) incr.push(['responseOverdue', 1])
  if (before !== undefined && !closed(before.status) && closed(after.status)) live.push(['open', -1])
  const overdueChange = Number(overdueNow(after)) - Number(before === undefined ? false : overdueNow(before))
  if (overdueChange !== 0) live.push(['overdue', overdueChange])
  if (incr.length === 0 && live.length === 0) return undefined
  return { day: dayOf(after.submittedAt), combo: comboOf(after), incr, max, live }
}
