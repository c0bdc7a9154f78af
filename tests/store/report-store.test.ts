// The turnaround aggregates in Redis (applyAggregatesLua in src/store/scripts.ts)
// and their reader (src/store/report-store.ts), against a real redis-server:
// deltas computed by the domain (aggregateDelta) go through the production Lua,
// and every figure of the report is compared with figures computed here from
// the raw samples. Covers the switch of a histogram from a sparse hash to a
// dense u32 array, the extreme buckets, and periods that start and end in the
// middle of blocks of several levels.
import t, { type Test } from 'tap'
import type { Redis, Result } from 'ioredis'
import { redisClient } from '../helpers/fixtures.js'
import { startRedis } from '../helpers/redis.js'
import { addSparseHistogram, newAccumulator, toRow, type ClockFigures, type ReportRow } from '../../src/domain/report.js'
import { blockDaysByLevel, decompose, epochDayOfIso, isoOfEpochDay } from '../../src/domain/time-blocks.js'
import { aggregateDelta, bucketOf, histogramBuckets, sparseHistogramMaxBuckets, type TurnaroundFacts } from '../../src/domain/turnaround.js'
import { createKeys } from '../../src/store/keys.js'
import { ReportStore } from '../../src/store/report-store.js'
import { applyAggregatesLua } from '../../src/store/scripts.js'
import { mulberry32 } from '../../src/services/seeder.js'
import { submittedFacts } from '../helpers/turnaround.js'

const DAY = 86_400_000
const keys = createKeys('rt:')

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rtApplyAggregates(prefix: string, json: string): Result<number, Context>
  }
}

async function aggregatesRedis (t: Test): Promise<Redis> {
  const server = await startRedis(t, { appendfsync: 'everysec' })
  const redis = await redisClient(t, server.url)
  // The production function, called the way the commit scripts call it.
  redis.defineCommand('rtApplyAggregates', { numberOfKeys: 0, lua: `${applyAggregatesLua}\napplyAggregates(ARGV[1], ARGV[2])\nreturn 1\n` })
  return redis
}

/** One request's life as the aggregates see it: submitted, then each later state in turn. */
async function apply (redis: Redis, states: TurnaroundFacts[]): Promise<void> {
  let before: TurnaroundFacts | undefined
  for (const state of states) {
    const delta = aggregateDelta(before, state)
    if (delta !== undefined) await redis.rtApplyAggregates(keys.prefix, JSON.stringify(delta))
    before = state
  }
}

/** A request delivered after `deliverMs`. */
const delivered = (submittedAt: number, deliverMs: number): TurnaroundFacts[] => {
  const first = submittedFacts(submittedAt)
  return [first, { ...first, status: 'delivered', deliveredAt: submittedAt + deliverMs }]
}

/** Nearest rank, as the report defines its percentiles. */
function exactClock (durations: number[]): { count: number, p50: number | null, p90: number | null, max: number | null } {
  const sorted = [...durations].sort((a, b) => a - b)
  const rank = (q: number): number | null => (sorted.length === 0 ? null : sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1])
  return { count: sorted.length, p50: rank(0.5), p90: rank(0.9), max: sorted.length === 0 ? null : sorted[sorted.length - 1] }
}

function checkClock (t: Test, label: string, actual: ClockFigures, durations: number[]): void {
  const exact = exactClock(durations)
  t.equal(actual.count, exact.count, `${label}: count`)
  t.equal(actual.maxSeconds, exact.max === null ? null : exact.max / 1000, `${label}: max exactly`)
  for (const [name, reported, value] of [['p50', actual.p50Seconds, exact.p50], ['p90', actual.p90Seconds, exact.p90]] as const) {
    if (value === null) {
      t.equal(reported, null, `${label}: ${name} null without data`)
      continue
    }
    // Within 1% (the buckets' precision), plus the half millisecond of the report's rounding to whole milliseconds.
    t.ok(Math.abs((reported ?? NaN) * 1000 - value) <= value * 0.01 + 0.5, `${label}: ${name} ${reported} s within 1% of ${value / 1000} s`)
  }
}

/** The row the pure report code gives for these delivery durations, histogram kept sparse in memory: the reference for the dense reads. */
function sparseReference (durations: number[]): ReportRow {
  const accumulator = newAccumulator()
  const hash: Record<string, string> = {}
  for (const ms of durations) hash[bucketOf(ms)] = String(Number(hash[bucketOf(ms)] ?? 0) + 1)
  addSparseHistogram(accumulator, 'd', hash)
  accumulator.max.d = Math.max(...durations)
  accumulator.counters.set('submitted', durations.length).set('delivered', durations.length)
  return toRow({ sender: 'TR-MOJ', recipient: 'DE-BFJ', type: 'mla' }, accumulator, { open: durations.length, overdue: 0 })
}

t.test('a histogram past the threshold turns dense: same figures as before, plus the new sample', async (t) => {
  const redis = await aggregatesRedis(t)
  const reports = new ReportStore(redis, keys)
  const dayIso = '2026-10-14'
  const day = epochDayOfIso(dayIso)
  const at = Date.parse(`${dayIso}T09:00:00Z`)
  const combo = 'TR-MOJ>DE-BFJ:mla'
  const sparseKey = (level: number): string => `${keys.prefix}agg:${level}:${Math.floor(day / blockDaysByLevel[level])}:${combo}:h:d`
  const denseKey = (level: number): string => `${keys.prefix}agg:${level}:${Math.floor(day / blockDaysByLevel[level])}:${combo}:hd:d`
  const report = async (from = dayIso, to = dayIso): Promise<ReportRow> => {
    const rows = (await reports.turnaround({ fromDay: from, toDay: to, groupBy: 'type' })).rows
    t.equal(rows.length, 1, 'one row')
    return rows[0]
  }

  // Durations 5% apart: each in a bucket of its own (buckets are 2% wide).
  const durations = Array.from({ length: sparseHistogramMaxBuckets }, (_, i) => Math.round(20_000 * 1.05 ** i))
  t.equal(new Set(durations.map(bucketOf)).size, sparseHistogramMaxBuckets, `${sparseHistogramMaxBuckets} distinct buckets`)
  for (const ms of durations) await apply(redis, delivered(at, ms))
  for (const level of blockDaysByLevel.keys()) {
    t.equal(await redis.hlen(sparseKey(level)), sparseHistogramMaxBuckets, `level ${level}: sparse, at the threshold`)
    t.equal(await redis.exists(denseKey(level)), 0, `level ${level}: no dense array yet`)
  }
  const before = await report()
  checkClock(t, 'before the switch', before.timeToDeliver, durations)
  t.same(before, sparseReference(durations), 'the figures of the pure code over the same buckets')

  // One more distinct bucket: over the threshold.
  const crossing = Math.round(20_000 * 1.05 ** sparseHistogramMaxBuckets)
  await apply(redis, delivered(at, crossing))
  for (const level of blockDaysByLevel.keys()) {
    t.equal(await redis.exists(sparseKey(level)), 0, `level ${level}: the sparse hash is gone`)
    const bytes = await redis.getBuffer(denseKey(level))
    t.equal(bytes?.byteLength, 4 * (bucketOf(crossing) + 1), `level ${level}: a u32 per bucket up to the highest one used`)
  }
  t.equal(await redis.hget(`${keys.prefix}agg:0:${day}:${combo}`, 'dense:d'), '1', 'the counters hash says the histogram is dense')
  const after = await report()
  checkClock(t, 'after the switch', after.timeToDeliver, [...durations, crossing])
  t.same(after, sparseReference([...durations, crossing]), 'exactly the figures a sparse histogram would give with the new sample')
  t.equal(after.delivered, before.delivered + 1)
  t.equal(after.submitted, before.submitted + 1)

  // Dense from now on: into an existing bucket, a new one, and the extremes.
  const more = [durations[3], 0, 45 * 365 * DAY, 7 * DAY]
  for (const ms of more) await apply(redis, delivered(at, ms))
  t.equal(await redis.exists(sparseKey(0)), 0, 'stays dense')
  t.equal((await redis.getBuffer(denseKey(0)))?.byteLength, 4 * histogramBuckets, 'a 45-year duration goes to the last bucket, and the array stops there')
  const all = [...durations, crossing, ...more]
  const dense = await report()
  t.same(dense, sparseReference(all), 'dense writes: the figures of the same samples kept sparse')
  checkClock(t, 'dense', dense.timeToDeliver, all)
  t.equal(dense.timeToDeliver.maxSeconds, 45 * 365 * DAY / 1000, 'the max beyond the last bucket is exact')

  // The same figures read from the upper levels (a period covering the whole 1024-day block holding the day).
  const top = blockDaysByLevel[blockDaysByLevel.length - 1]
  const first = Math.floor(day / top) * top
  t.same(decompose(first, first + top - 1), [{ level: blockDaysByLevel.length - 1, index: first / top }], 'one top-level block')
  t.same(await report(isoOfEpochDay(first), isoOfEpochDay(first + top - 1)), dense, 'the 1024-day block says what the day says')
})

t.test('periods starting and ending mid-block at several levels: every figure from the raw samples', async (t) => {
  const redis = await aggregatesRedis(t)
  const reports = new ReportStore(redis, keys)
  const random = mulberry32(20261214)
  const firstDay = epochDayOfIso('2024-01-01')
  const spanDays = 1500 // crosses several 256- and 1024-day blocks
  const combos = [['TR-MOJ', 'DE-BFJ', 'mla'], ['DE-BFJ', 'TR-MOJ', 'mla'], ['TR-PMM', 'FR-BEPI', 'repatriation']] as const
  interface Sample { combo: string, day: number, deliver?: number, acknowledge?: number, answer?: number, outcome?: 'executed' | 'refused', onTimeAck: boolean, onTimeAnswer: boolean }
  const samples: Sample[] = []
  const lifeOf = (submittedAt: number, sender: string, recipient: string, type: 'mla' | 'repatriation'): { states: TurnaroundFacts[], sample: Omit<Sample, 'combo' | 'day'> } => {
    const first = submittedFacts(submittedAt, { sender, recipient, type })
    const states = [first]
    const sample: Omit<Sample, 'combo' | 'day'> = { onTimeAck: false, onTimeAnswer: false }
    if (random() < 0.1) return { states, sample }
    const deliver = Math.round(Math.exp(Math.log(200) + random() * Math.log(1e6)))
    const delivery: TurnaroundFacts = { ...first, status: 'delivered', deliveredAt: submittedAt + deliver }
    states.push(delivery)
    sample.deliver = deliver
    if (random() < 0.15) return { states, sample }
    const acknowledge = deliver + Math.round(random() * 20 * DAY)
    const acknowledged: TurnaroundFacts = { ...delivery, status: 'acknowledged', acknowledgedAt: submittedAt + acknowledge }
    states.push(acknowledged)
    sample.acknowledge = acknowledge
    sample.onTimeAck = acknowledge <= 10 * DAY
    if (random() < 0.2) return { states, sample }
    const answer = acknowledge + Math.round(Math.exp(Math.log(DAY) + random() * Math.log(150)))
    const outcome = random() < 0.85 ? 'executed' : 'refused'
    states.push({ ...acknowledged, status: outcome, respondedAt: submittedAt + answer })
    sample.answer = answer
    sample.outcome = outcome
    sample.onTimeAnswer = answer <= 90 * DAY
    return { states, sample }
  }
  const lives: Array<Promise<void>> = []
  for (let i = 0; i < 4000; i++) {
    // Busier near the middle, so that some blocks of every level are dense and others sparse.
    const offset = Math.floor(spanDays * (random() < 0.5 ? random() : 0.4 + 0.2 * random()))
    const [sender, recipient, type] = combos[Math.floor(random() * combos.length)]
    const submittedAt = (firstDay + offset) * DAY + Math.floor(random() * DAY)
    const { states, sample } = lifeOf(submittedAt, sender, recipient, type)
    samples.push({ ...sample, combo: `${sender}>${recipient}:${type}`, day: firstDay + offset })
    lives.push(apply(redis, states))
  }
  await Promise.all(lives)
  const denseKeys = (await redis.keys(`${keys.prefix}agg:*:hd:*`)).length
  const sparseKeys = (await redis.keys(`${keys.prefix}agg:*:h:*`)).length
  t.ok(denseKeys > 0 && sparseKeys > 0, `both kinds of histogram in play (${denseKeys} dense, ${sparseKeys} sparse)`)

  const check = async (t: Test, from: number, to: number): Promise<void> => {
    const report = await reports.turnaround({ fromDay: isoOfEpochDay(from), toDay: isoOfEpochDay(to), groupBy: 'type' })
    const inPeriod = samples.filter((s) => s.day >= from && s.day <= to)
    const expectedCombos = [...new Set(samples.map((s) => s.combo))].sort()
    t.same(report.rows.map((row) => `${row.sender}>${row.recipient}:${row.type}`).sort(), expectedCombos, 'a row per combo (live gauges: every combo)')
    for (const row of report.rows) {
      const mine = inPeriod.filter((s) => s.combo === `${row.sender}>${row.recipient}:${row.type}`)
      const values = (pick: (s: Sample) => number | undefined): number[] => mine.map(pick).filter((v): v is number => v !== undefined)
      const label = `${row.sender}>${row.recipient}`
      t.same({ submitted: row.submitted, delivered: row.delivered, acknowledged: row.acknowledged, answered: row.answered, executed: row.executed, refused: row.refused }, {
        submitted: mine.length,
        delivered: values((s) => s.deliver).length,
        acknowledged: values((s) => s.acknowledge).length,
        answered: values((s) => s.answer).length,
        executed: mine.filter((s) => s.outcome === 'executed').length,
        refused: mine.filter((s) => s.outcome === 'refused').length
      }, `${label}: counts`)
      checkClock(t, `${label} deliver`, row.timeToDeliver, values((s) => s.deliver))
      checkClock(t, `${label} acknowledge`, row.timeToAcknowledge, values((s) => s.acknowledge))
      checkClock(t, `${label} answer`, row.timeToAnswer, values((s) => s.answer))
      const share = (part: number, whole: number): number | null => (whole === 0 ? null : Math.round((part / whole) * 10000) / 10000)
      t.equal(row.acknowledgedOnTimeShare, share(mine.filter((s) => s.acknowledge !== undefined && s.onTimeAck).length, values((s) => s.acknowledge).length), `${label}: acknowledged on time`)
      t.equal(row.answeredOnTimeShare, share(mine.filter((s) => s.answer !== undefined && s.onTimeAnswer).length, values((s) => s.answer).length), `${label}: answered on time`)
    }
  }

  // Cut through blocks of every level: a 1024-day block boundary lies inside the span.
  const top = blockDaysByLevel[blockDaysByLevel.length - 1]
  const boundary = Math.ceil(firstDay / top) * top
  const ranges: Array<[string, number, number]> = [
    ['mid-block at every level on both sides of a 1024-day boundary', boundary - 341, boundary + 341 + 64 + 5],
    ['inside one 256-day block, cutting 64-, 16- and 4-day blocks', boundary + 256 + 3, boundary + 256 + 250],
    ['the whole span', firstDay, firstDay + spanDays - 1],
    ['one day', firstDay + 700, firstDay + 700]
  ]
  for (const [label, from, to] of ranges) {
    const levels = new Set(decompose(from, to).map((block) => block.level))
    t.test(`${label} (${isoOfEpochDay(from)} .. ${isoOfEpochDay(to)}, ${decompose(from, to).length} blocks over ${levels.size} levels)`, async (t) => {
      await check(t, from, to)
    })
  }
  t.ok(new Set(decompose(boundary - 341, boundary + 341 + 64 + 5).map((block) => block.level)).size >= 5, 'the first period uses blocks of at least five levels')
  for (let i = 0; i < 12; i++) {
    const from = firstDay - 20 + Math.floor(random() * (spanDays + 40))
    const to = Math.min(from + Math.floor(random() * 900), firstDay + spanDays + 20)
    t.test(`random period ${isoOfEpochDay(from)} .. ${isoOfEpochDay(to)}`, async (t) => { await check(t, from, to) })
  }
})
