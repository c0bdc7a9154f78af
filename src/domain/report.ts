import { bucketValueMs } from './turnaround.js'

// Turning aggregate hashes into report rows. Pure: the store hands in the raw
// hash fields, this merges them and computes percentiles from the histograms.

export interface ClockFigures {
  count: number
  p50Seconds: number | null
  p90Seconds: number | null
  maxSeconds: number | null
}

export interface ReportRow {
  sender: string
  recipient: string
  type: string
  submitted: number
  delivered: number
  acknowledged: number
  answered: number
  executed: number
  refused: number
  withdrawn: number
  deemedAccepted: number
  acknowledgementOverdue: number
  responseOverdue: number
  timeToDeliver: ClockFigures
  timeToAcknowledge: ClockFigures
  timeToAnswer: ClockFigures
  /** Of the acknowledged, the share acknowledged by the deadline (null when none). */
  acknowledgedOnTimeShare: number | null
  /** Of the answered, the share answered by the (possibly extended) deadline. */
  answeredOnTimeShare: number | null
  openNow: number
  overdueNow: number
}

export interface Accumulator {
  counters: Map<string, number>
  histograms: Record<'d' | 'a' | 'r', Map<number, number>>
  max: Record<'d' | 'a' | 'r', number>
}

export const newAccumulator = (): Accumulator => ({
  counters: new Map(),
  histograms: { d: new Map(), a: new Map(), r: new Map() },
  max: { d: -1, a: -1, r: -1 }
})

/** Adds one aggregate hash (HGETALL of agg:<day>:<combo>) into an accumulator. */
export function accumulate (into: Accumulator, hash: Record<string, string>): void {
  for (const [field, raw] of Object.entries(hash)) {
    const value = Number(raw)
    if (field.startsWith('h:')) {
      const [, clock, bucket] = field.split(':') as [string, 'd' | 'a' | 'r', string]
      const histogram = into.histograms[clock]
      histogram.set(Number(bucket), (histogram.get(Number(bucket)) ?? 0) + value)
    } else if (field.startsWith('max:')) {
      const clock = field.slice(4) as 'd' | 'a' | 'r'
      into.max[clock] = Math.max(into.max[clock], value)
    } else {
      into.counters.set(field, (into.counters.get(field) ?? 0) + value)
    }
  }
}

export function mergeAccumulators (into: Accumulator, from: Accumulator): void {
  for (const [field, value] of from.counters) into.counters.set(field, (into.counters.get(field) ?? 0) + value)
  for (const clock of ['d', 'a', 'r'] as const) {
    for (const [bucket, count] of from.histograms[clock]) into.histograms[clock].set(bucket, (into.histograms[clock].get(bucket) ?? 0) + count)
    into.max[clock] = Math.max(into.max[clock], from.max[clock])
  }
}

/** The value at quantile q (nearest rank) of a bucketed histogram, at its bucket's geometric middle. */
export function quantileMs (histogram: Map<number, number>, q: number): number | null {
  const total = [...histogram.values()].reduce((sum, count) => sum + count, 0)
  if (total === 0) return null
  const rank = Math.max(1, Math.ceil(q * total))
  let seen = 0
  for (const bucket of [...histogram.keys()].sort((a, b) => a - b)) {
    seen += histogram.get(bucket) ?? 0
    if (seen >= rank) return bucketValueMs(bucket)
  }
  return null
}

const seconds = (ms: number | null): number | null => (ms === null ? null : Math.round(ms) / 1000)

function clockFigures (accumulator: Accumulator, clock: 'd' | 'a' | 'r'): ClockFigures {
  const histogram = accumulator.histograms[clock]
  const count = [...histogram.values()].reduce((sum, n) => sum + n, 0)
  // The exact maximum is kept beside the histogram; a bucket's middle could overshoot it.
  const max = accumulator.max[clock] < 0 ? null : accumulator.max[clock]
  const capped = (ms: number | null): number | null => (ms === null || max === null ? ms : Math.min(ms, max))
  return { count, p50Seconds: seconds(capped(quantileMs(histogram, 0.5))), p90Seconds: seconds(capped(quantileMs(histogram, 0.9))), maxSeconds: seconds(max) }
}

const share = (part: number, whole: number): number | null => (whole === 0 ? null : Math.round((part / whole) * 10000) / 10000)

export function toRow (key: { sender: string, recipient: string, type: string }, accumulator: Accumulator, live: { open: number, overdue: number }): ReportRow {
  const n = (field: string): number => accumulator.counters.get(field) ?? 0
  return {
    ...key,
    submitted: n('submitted'),
    delivered: n('delivered'),
    acknowledged: n('acknowledged'),
    answered: n('answered'),
    executed: n('executed'),
    refused: n('refused'),
    withdrawn: n('withdrawn'),
    deemedAccepted: n('deemed_accepted'),
    acknowledgementOverdue: n('acknowledgementOverdue'),
    responseOverdue: n('responseOverdue'),
    timeToDeliver: clockFigures(accumulator, 'd'),
    timeToAcknowledge: clockFigures(accumulator, 'a'),
    timeToAnswer: clockFigures(accumulator, 'r'),
    acknowledgedOnTimeShare: share(n('acknowledgedOnTime'), n('acknowledged')),
    answeredOnTimeShare: share(n('answeredOnTime'), n('answered')),
    openNow: live.open,
    overdueNow: live.overdue
  }
}

export const csvColumns = [
  'sender', 'recipient', 'type', 'submitted', 'delivered', 'acknowledged', 'answered', 'executed', 'refused', 'withdrawn', 'deemedAccepted',
  'acknowledgementOverdue', 'responseOverdue',
  'deliverP50Seconds', 'deliverP90Seconds', 'deliverMaxSeconds',
  'acknowledgeP50Seconds', 'acknowledgeP90Seconds', 'acknowledgeMaxSeconds',
  'answerP50Seconds', 'answerP90Seconds', 'answerMaxSeconds',
  'acknowledgedOnTimeShare', 'answeredOnTimeShare', 'openNow', 'overdueNow'
] as const

export function toCsv (rows: ReportRow[]): string {
  const cell = (value: unknown): string => {
    const text = value === null || value === undefined ? '' : String(value)
    return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
  }
  const lines = rows.map((row) => [
    row.sender, row.recipient, row.type, row.submitted, row.delivered, row.acknowledged, row.answered, row.executed, row.refused, row.withdrawn, row.deemedAccepted,
    row.acknowledgementOverdue, row.responseOverdue,
    row.timeToDeliver.p50Seconds, row.timeToDeliver.p90Seconds, row.timeToDeliver.maxSeconds,
    row.timeToAcknowledge.p50Seconds, row.timeToAcknowledge.p90Seconds, row.timeToAcknowledge.maxSeconds,
    row.timeToAnswer.p50Seconds, row.timeToAnswer.p90Seconds, row.timeToAnswer.maxSeconds,
    row.acknowledgedOnTimeShare, row.answeredOnTimeShare, row.openNow, row.overdueNow
  ].map(cell).join(','))
  return [csvColumns.join(','), ...lines].join('\n') + '\n'
}
