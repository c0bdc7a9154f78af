import { bucketValueMs, clockCodes, histogramBuckets, type ClockCode } from './turnaround.js'

// Turning aggregates into report rows. Pure: the store hands in the raw hash
// fields and dense histogram bytes of each block, this merges them into typed
// arrays and computes percentiles from the histograms.

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

/** The sums of the blocks read so far for one row: counters, a count per histogram bucket, and each clock's max. */
export interface Accumulator {
  counters: Map<string, number>
  histograms: Record<ClockCode, Float64Array>
  /** Milliseconds; −1 while no duration was seen. */
  max: Record<ClockCode, number>
}

export const newAccumulator = (): Accumulator => ({
  counters: new Map(),
  histograms: { d: new Float64Array(histogramBuckets), a: new Float64Array(histogramBuckets), r: new Float64Array(histogramBuckets) },
  max: { d: -1, a: -1, r: -1 }
})

/** Empties an accumulator for the next row (its arrays are reused). */
export function resetAccumulator (accumulator: Accumulator): void {
  accumulator.counters.clear()
  for (const clock of clockCodes) {
    accumulator.histograms[clock].fill(0)
    accumulator.max[clock] = -1
  }
}

const isClockCode = (text: string): text is ClockCode => text === 'd' || text === 'a' || text === 'r'

/** Adds one block's counters hash (HGETALL of agg:<level>:<index>:<combo>). */
export function addCounters (into: Accumulator, hash: Record<string, string>): void {
  for (const field in hash) {
    if (field.startsWith('max:')) {
      const clock = field.slice(4)
      if (isClockCode(clock)) into.max[clock] = Math.max(into.max[clock], Number(hash[field]))
    } else if (!field.startsWith('dense:')) {
      into.counters.set(field, (into.counters.get(field) ?? 0) + Number(hash[field]))
    }
  }
}

/** Adds one block's sparse histogram (HGETALL of …:h:<clock>: bucket → count). */
export function addSparseHistogram (into: Accumulator, clock: ClockCode, hash: Record<string, string>): void {
  const histogram = into.histograms[clock]
  for (const bucket in hash) histogram[Number(bucket)] += Number(hash[bucket])
}

/** Adds one block's dense histogram (the bytes of …:hd:<clock>: u32 big-endian counters, bucket i at byte 4i, as BITFIELD writes them). */
export function addDenseHistogram (into: Accumulator, clock: ClockCode, bytes: Uint8Array): void {
  const histogram = into.histograms[clock]
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const buckets = Math.min(histogramBuckets, bytes.byteLength >>> 2)
  for (let bucket = 0; bucket < buckets; bucket++) {
    const count = view.getUint32(bucket * 4, false)
    if (count !== 0) histogram[bucket] += count
  }
}

const total = (histogram: Float64Array): number => {
  let sum = 0
  for (let bucket = 0; bucket < histogram.length; bucket++) sum += histogram[bucket]
  return sum
}

/** The value at quantile q (nearest rank) of a bucketed histogram, at its bucket's representative value. */
export function quantileMs (histogram: Float64Array, q: number): number | null {
  const count = total(histogram)
  if (count === 0) return null
  const rank = Math.max(1, Math.ceil(q * count))
  let seen = 0
  for (let bucket = 0; bucket < histogram.length; bucket++) {
    seen += histogram[bucket]
    if (seen >= rank) return bucketValueMs(bucket)
  }
  return null
}

const seconds = (ms: number | null): number | null => (ms === null ? null : Math.round(ms) / 1000)

function clockFigures (accumulator: Accumulator, clock: ClockCode): ClockFigures {
  const histogram = accumulator.histograms[clock]
  const count = total(histogram)
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
