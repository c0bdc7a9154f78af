// Turnaround aggregates (src/domain/turnaround.ts): what each change of a request
// adds to the counters and histograms of the time blocks holding its submission
// day, and to the live gauges (open now, overdue now); and the precision of the
// log-scaled duration buckets.
import t from 'tap'
import fc from 'fast-check'
import { aggregateDelta, bucketOf, bucketValueMs, histogramBuckets, overdueNow, type AggregateDelta, type TurnaroundFacts } from '../../src/domain/turnaround.js'
import { blockDaysByLevel, epochDayOfIso } from '../../src/domain/time-blocks.js'
import { submittedFacts } from '../helpers/turnaround.js'

const DAY = 86_400_000
const HOUR = 3_600_000
const submittedAt = Date.parse('2026-10-14T22:30:00.000Z')

/** A request as submitted: TR-MOJ → DE-BFJ, MLA, acknowledge within 10 days, answer within 90. */
const submitted = (overrides: Partial<TurnaroundFacts> = {}): TurnaroundFacts => submittedFacts(submittedAt, overrides)

const next = (before: TurnaroundFacts, change: Partial<TurnaroundFacts>): TurnaroundFacts => ({ ...before, ...change })

/**
 * The delta as plain maps, order-free, for comparison: each duration sample
 * shown as the histogram field it increments (h:<clock>:<bucket>) and the max
 * it may raise (max:<clock>).
 */
function shape (delta: AggregateDelta | undefined): { day: string, combo: string, incr: Record<string, number>, max: Record<string, number>, live: Record<string, number> } | undefined {
  if (delta === undefined) return undefined
  const sum = (pairs: Array<[string, number]>): Record<string, number> => {
    const out: Record<string, number> = {}
    for (const [field, value] of pairs) out[field] = (out[field] ?? 0) + value
    return out
  }
  const [level0, dayIndex] = delta.blocks[0].split(':').map(Number)
  if (level0 !== 0) throw new Error('the first block is the day itself')
  return {
    day: new Date(dayIndex * DAY).toISOString().slice(0, 10),
    combo: delta.combo,
    incr: sum([...delta.incr, ...delta.samples.map(([clock, bucket]): [string, number] => [`h:${clock}:${bucket}`, 1])]),
    max: Object.fromEntries(delta.samples.map(([clock, , ms]) => [`max:${clock}`, ms])),
    live: sum(delta.live)
  }
}

const base = { day: '2026-10-14', combo: 'TR-MOJ>DE-BFJ:mla' }

t.test('a new request counts as submitted on its submission day and opens', async (t) => {
  t.same(shape(aggregateDelta(undefined, submitted())), { ...base, incr: { submitted: 1 }, max: {}, live: { open: 1 } })
  t.equal(aggregateDelta(undefined, submitted())?.submission, true, 'the first change of a request is its submission')
  const delivered = next(submitted(), { status: 'delivered', deliveredAt: submittedAt + HOUR })
  t.equal(aggregateDelta(submitted(), delivered)?.submission, false, 'later changes are not')
})

t.test('the day is the UTC day of submission, whatever the day of the change', async (t) => {
  const before = next(submitted(), { status: 'delivered', deliveredAt: submittedAt + HOUR })
  // Acknowledged 5 days later (and in another UTC day): still counted on 2026-10-14.
  const delta = aggregateDelta(before, next(before, { status: 'acknowledged', acknowledgedAt: submittedAt + 5 * DAY }))
  t.equal(shape(delta)?.day, '2026-10-14')
  // 22:30 UTC on the 14th is already the 15th east of UTC: the day is UTC's.
  t.equal(shape(aggregateDelta(undefined, submitted({ submittedAt: Date.parse('2026-10-14T23:59:59.999Z') })))?.day, '2026-10-14')
  t.equal(shape(aggregateDelta(undefined, submitted({ submittedAt: Date.parse('2026-10-15T00:00:00.000Z') })))?.day, '2026-10-15')
})

t.test('every change goes to the block of each level that holds the submission day', async (t) => {
  const day = epochDayOfIso('2026-10-14')
  const blocks = aggregateDelta(undefined, submitted())?.blocks
  t.same(blocks, blockDaysByLevel.map((blockDays, level) => `${level}:${Math.floor(day / blockDays)}`), 'one block per level, level 0 (the day) first')
  t.same(blocks?.slice(0, 3), [`0:${day}`, `1:${Math.floor(day / 4)}`, `2:${Math.floor(day / 16)}`])
  const later = next(submitted(), { status: 'delivered', deliveredAt: submittedAt + 40 * DAY })
  t.same(aggregateDelta(submitted(), later)?.blocks, blocks, 'a change weeks later still goes to the submission day\'s blocks')
})

t.test('the combo is sender>recipient:type: each direction of a pair is its own', async (t) => {
  t.equal(aggregateDelta(undefined, submitted())?.combo, 'TR-MOJ>DE-BFJ:mla')
  t.equal(aggregateDelta(undefined, submitted({ sender: 'DE-BFJ', recipient: 'TR-MOJ' }))?.combo, 'DE-BFJ>TR-MOJ:mla')
  t.equal(aggregateDelta(undefined, submitted({ sender: 'TR-PMM', recipient: 'FR-BEPI', type: 'repatriation' }))?.combo, 'TR-PMM>FR-BEPI:repatriation')
})

t.test('delivery: counted once, with its time in the deliver histogram and the max', async (t) => {
  const before = submitted()
  const after = next(before, { status: 'delivered', deliveredAt: submittedAt + 42_000 })
  t.same(shape(aggregateDelta(before, after)), {
    ...base,
    incr: { delivered: 1, [`h:d:${bucketOf(42_000)}`]: 1 },
    max: { 'max:d': 42_000 },
    live: {}
  })
  // A later change does not count the delivery again.
  const later = next(after, { status: 'acknowledged', acknowledgedAt: submittedAt + DAY })
  t.notOk(shape(aggregateDelta(after, later))?.incr.delivered, 'no second delivery')
})

t.test('delivery in the same millisecond as the submission goes to bucket 0 (reported as 0)', async (t) => {
  const delta = shape(aggregateDelta(submitted(), next(submitted(), { status: 'delivered', deliveredAt: submittedAt })))
  t.same(delta?.incr, { delivered: 1, 'h:d:0': 1 })
  t.same(delta?.max, { 'max:d': 0 })
  t.equal(bucketValueMs(0), 0)
})

t.test('a recipient acting first delivers and acknowledges at once', async (t) => {
  // The service sets deliveredAt with the first step of the recipient.
  const at = submittedAt + 3 * DAY
  const delta = shape(aggregateDelta(submitted(), next(submitted(), { status: 'acknowledged', deliveredAt: at, acknowledgedAt: at })))
  t.same(delta?.incr, { delivered: 1, [`h:d:${bucketOf(3 * DAY)}`]: 1, acknowledged: 1, [`h:a:${bucketOf(3 * DAY)}`]: 1, acknowledgedOnTime: 1 })
})

t.test('acknowledgement on time, at the deadline, late, and without an acknowledgement clock', async (t) => {
  const delivered = next(submitted(), { status: 'delivered', deliveredAt: submittedAt + HOUR })
  const ack = (at: number, before = delivered): ReturnType<typeof shape> => shape(aggregateDelta(before, next(before, { status: 'acknowledged', acknowledgedAt: at })))

  t.same(ack(submittedAt + 2 * DAY), { ...base, incr: { acknowledged: 1, [`h:a:${bucketOf(2 * DAY)}`]: 1, acknowledgedOnTime: 1 }, max: { 'max:a': 2 * DAY }, live: {} }, 'on time')
  t.same(ack(submittedAt + 10 * DAY)?.incr, { acknowledged: 1, [`h:a:${bucketOf(10 * DAY)}`]: 1, acknowledgedOnTime: 1 }, 'exactly at the deadline is on time')
  t.same(ack(submittedAt + 10 * DAY + 1)?.incr, { acknowledged: 1, [`h:a:${bucketOf(10 * DAY + 1)}`]: 1 }, 'a millisecond late is late')
  const noClock = next(delivered, { ackDue: undefined })
  t.same(ack(submittedAt + 30 * DAY, noClock)?.incr, { acknowledged: 1, [`h:a:${bucketOf(30 * DAY)}`]: 1, acknowledgedOnTime: 1 }, 'no acknowledgement clock: never late')
})

t.test('a late acknowledgement after the overdue flag: the overdue gauge comes down', async (t) => {
  const delivered = next(submitted(), { status: 'delivered', deliveredAt: submittedAt + HOUR })
  const flagged = next(delivered, { ackOverdue: true })
  t.same(shape(aggregateDelta(delivered, flagged)), { ...base, incr: { acknowledgementOverdue: 1 }, max: {}, live: { overdue: 1 } }, 'flag: counted, and overdue now')
  t.equal(overdueNow(flagged), true)
  const acked = next(flagged, { status: 'acknowledged', acknowledgedAt: submittedAt + 12 * DAY })
  t.same(shape(aggregateDelta(flagged, acked)), {
    ...base,
    incr: { acknowledged: 1, [`h:a:${bucketOf(12 * DAY)}`]: 1 },
    max: { 'max:a': 12 * DAY },
    live: { overdue: -1 }
  }, 'acknowledged late: not on time, and no longer overdue now')
  t.equal(overdueNow(acked), false)
  t.same(aggregateDelta(acked, next(acked, { status: 'clarification_requested' })), undefined, 'the flag stays set but counts nothing more')
})

t.test('the response overdue flag: counted once, overdue now until answered, extended or closed', async (t) => {
  const acked = next(submitted(), { status: 'acknowledged', deliveredAt: submittedAt + HOUR, acknowledgedAt: submittedAt + DAY })
  const overdue = next(acked, { respOverdue: true })
  t.same(shape(aggregateDelta(acked, overdue)), { ...base, incr: { responseOverdue: 1 }, max: {}, live: { overdue: 1 } })

  // Both flags at once still make one overdue request.
  const both = next(submitted({ status: 'delivered', deliveredAt: submittedAt + HOUR }), { ackOverdue: true })
  t.same(shape(aggregateDelta(both, next(both, { respOverdue: true })))?.live, {}, 'already overdue now: the gauge does not move')

  // An extension clears the flag: no longer overdue now (the count of flags stays).
  const extended = next(overdue, { respOverdue: false, respDue: submittedAt + 120 * DAY })
  t.same(shape(aggregateDelta(overdue, extended)), { ...base, incr: {}, max: {}, live: { overdue: -1 } })
  // ...and a second lapse counts a second time.
  t.same(shape(aggregateDelta(extended, next(extended, { respOverdue: true })))?.incr, { responseOverdue: 1 })

  // Answered late: closes, and leaves the overdue gauge.
  const executed = next(overdue, { status: 'executed', respondedAt: submittedAt + 95 * DAY })
  t.same(shape(aggregateDelta(overdue, executed)), {
    ...base,
    incr: { answered: 1, executed: 1, [`h:r:${bucketOf(95 * DAY)}`]: 1 },
    max: { 'max:r': 95 * DAY },
    live: { open: -1, overdue: -1 }
  })
})

t.test('final answers: executed or refused, on time or late; a partial answer is not final', async (t) => {
  const acked = next(submitted(), { status: 'acknowledged', deliveredAt: submittedAt + HOUR, acknowledgedAt: submittedAt + DAY })
  t.same(shape(aggregateDelta(acked, next(acked, { status: 'executed', respondedAt: submittedAt + 40 * DAY }))), {
    ...base,
    incr: { answered: 1, executed: 1, [`h:r:${bucketOf(40 * DAY)}`]: 1, answeredOnTime: 1 },
    max: { 'max:r': 40 * DAY },
    live: { open: -1 }
  }, 'executed on time')
  t.same(shape(aggregateDelta(acked, next(acked, { status: 'refused', respondedAt: submittedAt + 90 * DAY })))?.incr,
    { answered: 1, refused: 1, [`h:r:${bucketOf(90 * DAY)}`]: 1, answeredOnTime: 1 }, 'refused exactly at the deadline: on time')
  t.same(shape(aggregateDelta(acked, next(acked, { status: 'executed', respondedAt: submittedAt + 91 * DAY })))?.incr,
    { answered: 1, executed: 1, [`h:r:${bucketOf(91 * DAY)}`]: 1 }, 'late')
  t.same(shape(aggregateDelta(acked, next(acked, { status: 'executed', respondedAt: submittedAt + 100 * DAY, respDue: submittedAt + 110 * DAY })))?.incr.answeredOnTime, 1,
    'against the extended deadline')

  const partial = next(acked, { status: 'partially_executed', respondedAt: submittedAt + 20 * DAY })
  t.same(aggregateDelta(acked, partial), undefined, 'a partial answer changes no figure: the request stays open')
  t.same(shape(aggregateDelta(partial, next(partial, { status: 'executed', respondedAt: submittedAt + 50 * DAY }))), {
    ...base,
    incr: { answered: 1, executed: 1, [`h:r:${bucketOf(50 * DAY)}`]: 1, answeredOnTime: 1 },
    max: { 'max:r': 50 * DAY },
    live: { open: -1 }
  }, 'the final answer after a partial one is timed at the final answer')
})

t.test('an answer straight from submitted: delivered, acknowledged and answered in one change', async (t) => {
  const at = submittedAt + 5 * DAY
  const delta = shape(aggregateDelta(submitted(), next(submitted(), { status: 'refused', deliveredAt: at, acknowledgedAt: at, respondedAt: at })))
  t.same(delta?.incr, {
    delivered: 1, [`h:d:${bucketOf(5 * DAY)}`]: 1,
    acknowledged: 1, [`h:a:${bucketOf(5 * DAY)}`]: 1, acknowledgedOnTime: 1,
    answered: 1, refused: 1, [`h:r:${bucketOf(5 * DAY)}`]: 1, answeredOnTime: 1
  })
  t.same(delta?.live, { open: -1 })
})

t.test('withdrawal closes without an answer; withdrawing an overdue request also leaves the overdue gauge', async (t) => {
  const delivered = next(submitted(), { status: 'delivered', deliveredAt: submittedAt + HOUR })
  t.same(shape(aggregateDelta(delivered, next(delivered, { status: 'withdrawn' }))), { ...base, incr: { withdrawn: 1 }, max: {}, live: { open: -1 } })
  const overdue = next(delivered, { ackOverdue: true })
  t.same(shape(aggregateDelta(overdue, next(overdue, { status: 'withdrawn' })))?.live, { open: -1, overdue: -1 })
})

t.test('deemed acceptance on silence: the response overdue flag and the closing in one change', async (t) => {
  const repatriation = submitted({ type: 'repatriation', sender: 'TR-PMM', recipient: 'FR-BEPI', status: 'acknowledged', deliveredAt: submittedAt + HOUR, acknowledgedAt: submittedAt + DAY })
  t.same(shape(aggregateDelta(repatriation, next(repatriation, { status: 'deemed_accepted', respOverdue: true }))), {
    day: '2026-10-14',
    combo: 'TR-PMM>FR-BEPI:repatriation',
    incr: { deemed_accepted: 1, responseOverdue: 1 },
    max: {},
    live: { open: -1 }
  }, 'never overdue now: it closed in the same step')
})

t.test('a closed request is never overdue now, and changes after closing move no gauge', async (t) => {
  const closed = submitted({ status: 'executed', deliveredAt: submittedAt + HOUR, acknowledgedAt: submittedAt + DAY, respondedAt: submittedAt + 2 * DAY, respOverdue: true })
  t.equal(overdueNow(closed), false)
  t.same(aggregateDelta(closed, next(closed, { ackOverdue: false })), undefined)
})

t.test('facts that move no figure (a reminder, a disclosure) give no delta', async (t) => {
  const delivered = next(submitted(), { status: 'delivered', deliveredAt: submittedAt + HOUR })
  t.same(aggregateDelta(delivered, { ...delivered }), undefined)
})

t.test('buckets: every duration is reported within 1% of itself', async (t) => {
  // r = 1.02: a bucket [a, 1.02a) reported at its bounds' harmonic mean is within (r − 1)/(r + 1) ≈ 0.990% of anything in it.
  const bound = 0.02 / 2.02
  t.ok(bound < 0.01)
  fc.assert(fc.property(fc.double({ min: 1, max: 1e12, noNaN: true }), (ms) => {
    const bucket = bucketOf(ms)
    const reported = bucketValueMs(bucket)
    return Math.abs(reported - ms) / ms <= bound + 1e-12
  }), { numRuns: 20_000 })
  // Log-uniform over 1 ms .. 30 years, as turnaround times spread.
  let worst = 0
  for (let i = 0; i < 100_000; i++) {
    const ms = Math.exp(Math.random() * Math.log(1e12))
    worst = Math.max(worst, Math.abs(bucketValueMs(bucketOf(ms)) - ms) / ms)
  }
  t.ok(worst < 0.01, `worst relative error ${(worst * 100).toFixed(3)}% < 1%`)
  t.pass('fast-check: 20,000 durations within 0.99%')
})

t.test('buckets are ordered like durations, contiguous, and bounded', async (t) => {
  fc.assert(fc.property(fc.double({ min: 0, max: 1e13, noNaN: true }), fc.double({ min: 0, max: 1e13, noNaN: true }), (a, b) => {
    return a <= b ? bucketOf(a) <= bucketOf(b) : bucketOf(a) >= bucketOf(b)
  }), { numRuns: 20_000 })
  t.equal(bucketOf(0), 0)
  t.equal(bucketOf(0.5), 0)
  t.equal(bucketOf(1), 1)
  t.ok(bucketOf(30 * DAY) < 1100, 'a month is bucket ~1,070: a dense histogram is a few kB')
  t.equal(bucketOf(1e15), histogramBuckets - 1, 'anything beyond ~33 years goes to the last bucket (the exact max is kept beside)')
  t.ok(bucketOf(10 * 366 * DAY) < histogramBuckets - 1, 'ten years still has its own bucket')
})
