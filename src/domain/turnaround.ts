import type { RequestStatus, RequestType } from './types.js'
import { blockId, blocksContaining, epochDayOf } from './time-blocks.js'

// Turnaround aggregates: kept up to date at each transition, so that a report
// reads a bounded set of small keys whatever the history behind them.
//
// Each change is added into the time block of every level that holds the
// request's submission day (see time-blocks.ts). Durations go into log-scaled
// buckets: bucket 0 holds [0, 1) ms and is reported as 0; bucket b ≥ 1 holds
// [r^(b−1), r^b) ms and is reported at the harmonic mean of its bounds, the
// point whose relative error is the same at both ends: (r − 1)/(r + 1) ≈ 0.99%
// for r = 1.02, so any percentile is within 1% of the exact value.

export const bucketRatio = 1.02
const logRatio = Math.log(bucketRatio)
/** Buckets per histogram: the last one starts at r^1398 ms ≈ 33 years and takes anything longer (the exact max is kept beside). */
export const histogramBuckets = 1400
/**
 * A histogram is a hash bucket → count while it holds at most this many
 * buckets; past it, the store turns it into a dense array of u32 counters,
 * which costs the same to read however many requests it counts. 16, not 64:
 * reading a dense array (≤ 5.6 kB) costs about as much as 4–6 hash fields, and
 * at 10,000 requests a quarter's report took 17 ms with 16 against 40 ms with
 * 64 (10 blocks; 3,200 against 10,000 fields read), for 6% more Redis memory.
 */
export const sparseHistogramMaxBuckets = 16

export function bucketOf (durationMs: number): number {
  if (!(durationMs >= 1)) return 0
  return Math.min(histogramBuckets - 1, 1 + Math.floor(Math.log(durationMs) / logRatio))
}

export function bucketValueMs (bucket: number): number {
  if (bucket <= 0) return 0
  const low = Math.exp((bucket - 1) * logRatio)
  return (2 * low * bucketRatio) / (1 + bucketRatio)
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
export type ClockCode = 'd' | 'a' | 'r'
export const clockCodes: readonly ClockCode[] = ['d', 'a', 'r']
const clockCode: Record<Clock, ClockCode> = { deliver: 'd', acknowledge: 'a', respond: 'r' }

/**
 * What one change adds to the aggregates: counters and histograms of the blocks
 * holding its submission day, and live gauges. Tuples rather than objects: it
 * travels as JSON into the commit scripts at every transition.
 */
export interface AggregateDelta {
  /** The blocks holding the submission day (UTC), one per level, level 0 first: `<level>:<index>` (see time-blocks.ts). */
  blocks: string[]
  /** `${sender}>${recipient}:${type}` */
  combo: string
  /** The request's first change: its combo joins the set of combos of each block. */
  submission: boolean
  /** Counters to add to. */
  incr: Array<[string, number]>
  /** Durations measured by this change: [clock, bucket, milliseconds]; each goes into the clock's histogram and max. */
  samples: Array<[ClockCode, number, number]>
  live: Array<[string, number]>
}

const closed = (status: RequestStatus): boolean => ['executed', 'refused', 'withdrawn', 'deemed_accepted'].includes(status)
const answered = (status: RequestStatus): boolean => status === 'executed' || status === 'refused'

/** Open, and a pending step is past its deadline. */
export function overdueNow (request: TurnaroundFacts): boolean {
  if (closed(request.status)) return false
  return request.respOverdue || (request.ackOverdue && request.acknowledgedAt === undefined)
}

export const comboOf = (request: Pick<TurnaroundFacts, 'sender' | 'recipient' | 'type'>): string => `${request.sender}>${request.recipient}:${request.type}`

/** The aggregate changes implied by a request going from `before` (undefined: new) to `after`. Pure. */
export function aggregateDelta (before: TurnaroundFacts | undefined, after: TurnaroundFacts): AggregateDelta | undefined {
  const incr: Array<[string, number]> = []
  const samples: Array<[ClockCode, number, number]> = []
  const live: Array<[string, number]> = []
  const clock = (name: Clock, at: number): void => {
    const duration = Math.max(0, at - after.submittedAt)
    samples.push([clockCode[name], bucketOf(duration), duration])
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
  return {
    blocks: blocksContaining(epochDayOf(after.submittedAt)).map(blockId),
    combo: comboOf(after),
    submission: before === undefined,
    incr,
    samples,
    live
  }
}
