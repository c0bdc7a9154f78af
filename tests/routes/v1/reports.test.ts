// GET /v1/reports/turnaround against a generated history of a few thousand
// requests: every figure of the report (counts, p50/p90/max of each clock, the
// on-time shares, open and overdue now) must equal the figure computed here,
// independently, from the raw audit events; percentiles within 1% (the
// histogram's precision), everything else exactly. JSON and CSV agree, the
// reciprocity view sets A → B beside B → A, scopes follow the roles, and the
// CLI (`npm run report`, runReport) prints the same rows.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { buildApp, payloadKey, type TestApp } from '../../helpers/app.js'
import { expectProblem, get, keys, redisClient } from '../../helpers/fixtures.js'
import { runReport } from '../../../src/cli/report.js'
import { csvColumns, type ClockFigures, type ReportRow } from '../../../src/domain/report.js'
import { decompose, epochDayOfIso } from '../../../src/domain/time-blocks.js'
import type { AuditEvent } from '../../../src/domain/events.js'
import type { RequestStatus } from '../../../src/domain/types.js'
import { seedHistory, type SeedSummary } from '../../../src/services/seeder.js'
import { PayloadCipher } from '../../../src/store/payload-cipher.js'
import { decodeStreamEntry, RequestStore } from '../../../src/store/request-store.js'

const REQUESTS = 2000
const DAYS = 60
const DAY_MS = 86_400_000

// ---------------------------------------------------------------------------
// The independent computation: each request's facts, replayed from its events.

interface Facts {
  id: string
  combo: string
  sender: string
  recipient: string
  type: string
  day: string
  submittedAt: number
  deliveredAt?: number
  acknowledgedAt?: number
  acknowledgedBy?: string
  answeredAt?: number
  outcome?: 'executed' | 'refused'
  ackDue?: number
  respDue: number
  respDueAtAnswer?: number
  status: RequestStatus
  ackOverdue: boolean
  respOverdue: boolean
  ackOverdueCount: number
  respOverdueCount: number
}

const closedStatuses = new Set(['executed', 'refused', 'withdrawn', 'deemed_accepted'])
const responseEvents = new Set(['request.partially_executed', 'request.executed', 'request.refused'])

/** One request's story, from its events in log order. */
function replay (events: AuditEvent[]): Facts {
  const first = events[0]
  if (first.type !== 'request.submitted') throw new Error(`request ${first.requestId} does not start with its submission`)
  const submittedAt = Date.parse(first.at)
  const facts: Facts = {
    id: first.requestId,
    combo: `${first.sender}>${first.recipient}:${first.requestType}`,
    sender: first.sender,
    recipient: first.recipient,
    type: first.requestType,
    day: first.at.slice(0, 10),
    submittedAt,
    ackDue: first.data.acknowledgementDue === null ? undefined : Date.parse(first.data.acknowledgementDue as string),
    respDue: Date.parse(first.data.responseDue as string),
    status: 'submitted',
    ackOverdue: false,
    respOverdue: false,
    ackOverdueCount: 0,
    respOverdueCount: 0
  }
  for (const event of events.slice(1)) {
    const at = Date.parse(event.at)
    if (event.type === 'request.disclosed') continue
    // DESIGN §2: delivered when the webhook got through or the recipient fetched it;
    // any step the recipient takes proves it reached them.
    if (facts.deliveredAt === undefined && (event.type === 'request.delivered' || event.type === 'request.retrieved' || event.actor.authority === facts.recipient)) facts.deliveredAt = at
    // Acknowledged by the acknowledgement, or by the first step that shows receipt: a question or an answer.
    if (facts.acknowledgedAt === undefined && (event.type === 'request.acknowledged' || event.type === 'request.clarification_requested' || responseEvents.has(event.type))) {
      facts.acknowledgedAt = at
      facts.acknowledgedBy = event.type
    }
    if (facts.answeredAt === undefined && (event.type === 'request.executed' || event.type === 'request.refused')) {
      facts.answeredAt = at
      facts.outcome = event.type === 'request.executed' ? 'executed' : 'refused'
      facts.respDueAtAnswer = facts.respDue
    }
    if (event.type === 'request.extended') {
      facts.respDue = Date.parse(event.data.responseDue as string)
      facts.respOverdue = false
    }
    if (event.type === 'request.acknowledgement_overdue') {
      facts.ackOverdue = true
      facts.ackOverdueCount++
    }
    if (event.type === 'request.response_overdue') {
      facts.respOverdue = true
      facts.respOverdueCount++
    }
    if (typeof event.data.status === 'string') facts.status = event.data.status as RequestStatus
  }
  return facts
}

const isOpen = (facts: Facts): boolean => !closedStatuses.has(facts.status)
const isOverdueNow = (facts: Facts): boolean => isOpen(facts) && (facts.respOverdue || (facts.ackOverdue && facts.acknowledgedAt === undefined))

/** Nearest rank, as the report defines its percentiles: the ⌈q·n⌉-th smallest value. */
function nearestRank (sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]
}

interface ExpectedClock { count: number, p50Ms: number | null, p90Ms: number | null, maxMs: number | null }

function clockOf (durations: number[]): ExpectedClock {
  const sorted = [...durations].sort((a, b) => a - b)
  return { count: sorted.length, p50Ms: nearestRank(sorted, 0.5), p90Ms: nearestRank(sorted, 0.9), maxMs: sorted.length === 0 ? null : sorted[sorted.length - 1] }
}

const share = (part: number, whole: number): number | null => (whole === 0 ? null : Math.round((part / whole) * 10000) / 10000)

interface ExpectedRow {
  sender: string
  recipient: string
  type: string
  counts: Record<'submitted' | 'delivered' | 'acknowledged' | 'answered' | 'executed' | 'refused' | 'withdrawn' | 'deemedAccepted' | 'acknowledgementOverdue' | 'responseOverdue', number>
  deliver: ExpectedClock
  acknowledge: ExpectedClock
  answer: ExpectedClock
  acknowledgedOnTimeShare: number | null
  answeredOnTimeShare: number | null
  openNow: number
  overdueNow: number
}

/** The report's rows, computed from the facts: period figures for requests submitted from..to, live figures over all. */
function expectedRows (all: Facts[], from: string, to: string, groupBy: 'type' | 'direction' = 'type'): Map<string, ExpectedRow> {
  const keyOf = (facts: Facts): string => groupBy === 'type' ? facts.combo : `${facts.sender}>${facts.recipient}:*`
  const groups = new Map<string, Facts[]>()
  for (const facts of all) {
    const key = keyOf(facts)
    if (!groups.has(key)) groups.set(key, [])
    groups.get(key)?.push(facts)
  }
  const rows = new Map<string, ExpectedRow>()
  for (const [key, members] of groups) {
    const inPeriod = members.filter((facts) => facts.day >= from && facts.day <= to)
    const delivered = inPeriod.filter((facts) => facts.deliveredAt !== undefined)
    const acknowledged = inPeriod.filter((facts) => facts.acknowledgedAt !== undefined)
    const answered = inPeriod.filter((facts) => facts.answeredAt !== undefined)
    const [pair, type] = key.split(':')
    const [sender, recipient] = pair.split('>')
    rows.set(key, {
      sender,
      recipient,
      type,
      counts: {
        submitted: inPeriod.length,
        delivered: delivered.length,
        acknowledged: acknowledged.length,
        answered: answered.length,
        executed: answered.filter((facts) => facts.outcome === 'executed').length,
        refused: answered.filter((facts) => facts.outcome === 'refused').length,
        withdrawn: inPeriod.filter((facts) => facts.status === 'withdrawn').length,
        deemedAccepted: inPeriod.filter((facts) => facts.status === 'deemed_accepted').length,
        acknowledgementOverdue: inPeriod.reduce((sum, facts) => sum + facts.ackOverdueCount, 0),
        responseOverdue: inPeriod.reduce((sum, facts) => sum + facts.respOverdueCount, 0)
      },
      deliver: clockOf(delivered.map((facts) => (facts.deliveredAt as number) - facts.submittedAt)),
      acknowledge: clockOf(acknowledged.map((facts) => (facts.acknowledgedAt as number) - facts.submittedAt)),
      answer: clockOf(answered.map((facts) => (facts.answeredAt as number) - facts.submittedAt)),
      acknowledgedOnTimeShare: share(acknowledged.filter((facts) => facts.ackDue === undefined || (facts.acknowledgedAt as number) <= facts.ackDue).length, acknowledged.length),
      answeredOnTimeShare: share(answered.filter((facts) => (facts.answeredAt as number) <= (facts.respDueAtAnswer as number)).length, answered.length),
      openNow: members.filter(isOpen).length,
      overdueNow: members.filter(isOverdueNow).length
    })
  }
  return rows
}

// ---------------------------------------------------------------------------
// Comparing

function checkClock (t: Test, label: string, actual: ClockFigures, expected: ExpectedClock): void {
  t.equal(actual.count, expected.count, `${label}: count`)
  for (const [name, reported, exact] of [['p50', actual.p50Seconds, expected.p50Ms], ['p90', actual.p90Seconds, expected.p90Ms]] as const) {
    if (exact === null) {
      t.equal(reported, null, `${label}: ${name} is null without data`)
      continue
    }
    const reportedMs = (reported ?? NaN) * 1000
    // What the buckets guarantee (0.99%, inside the 1% asked), plus the half
    // millisecond of the report's rounding to whole milliseconds: the two together
    // can exceed 1% for durations under ~5 s, so the rounding is allowed for apart.
    const tolerance = exact * 0.0099 + 0.5
    t.ok(Math.abs(reportedMs - exact) <= tolerance, `${label}: ${name} ${reported} s within 1% of the exact ${exact / 1000} s`)
  }
  t.equal(actual.maxSeconds, expected.maxMs === null ? null : expected.maxMs / 1000, `${label}: max exactly`)
}

function checkRows (t: Test, actual: ReportRow[], expected: Map<string, ExpectedRow>): void {
  const actualKeys = actual.map((row) => `${row.sender}>${row.recipient}:${row.type}`).sort()
  t.same(actualKeys, [...expected.keys()].sort(), 'one row for each direction of each pair (and type) with requests')
  for (const row of actual) {
    const key = `${row.sender}>${row.recipient}:${row.type}`
    const want = expected.get(key)
    if (want === undefined) continue
    t.same({
      submitted: row.submitted,
      delivered: row.delivered,
      acknowledged: row.acknowledged,
      answered: row.answered,
      executed: row.executed,
      refused: row.refused,
      withdrawn: row.withdrawn,
      deemedAccepted: row.deemedAccepted,
      acknowledgementOverdue: row.acknowledgementOverdue,
      responseOverdue: row.responseOverdue
    }, want.counts, `${key}: counts`)
    checkClock(t, `${key} time to deliver`, row.timeToDeliver, want.deliver)
    checkClock(t, `${key} time to acknowledge`, row.timeToAcknowledge, want.acknowledge)
    checkClock(t, `${key} time to answer`, row.timeToAnswer, want.answer)
    t.equal(row.acknowledgedOnTimeShare, want.acknowledgedOnTimeShare, `${key}: share acknowledged on time`)
    t.equal(row.answeredOnTimeShare, want.answeredOnTimeShare, `${key}: share answered on time`)
    t.equal(row.openNow, want.openNow, `${key}: open now`)
    t.equal(row.overdueNow, want.overdueNow, `${key}: overdue now`)
  }
}

/** CSV → rows of strings keyed by column. */
function parseCsv (text: string): Array<Record<string, string>> {
  const lines = text.trimEnd().split('\n')
  const header = lines[0].split(',')
  return lines.slice(1).map((line) => {
    const cells = line.split(',')
    return Object.fromEntries(header.map((column, index) => [column, cells[index]]))
  })
}

/** The CSV cells a JSON row must produce (null → empty). */
function csvCellsOf (row: ReportRow): Record<string, string> {
  const text = (value: number | string | null): string => (value === null ? '' : String(value))
  return {
    sender: row.sender,
    recipient: row.recipient,
    type: row.type,
    submitted: text(row.submitted),
    delivered: text(row.delivered),
    acknowledged: text(row.acknowledged),
    answered: text(row.answered),
    executed: text(row.executed),
    refused: text(row.refused),
    withdrawn: text(row.withdrawn),
    deemedAccepted: text(row.deemedAccepted),
    acknowledgementOverdue: text(row.acknowledgementOverdue),
    responseOverdue: text(row.responseOverdue),
    deliverP50Seconds: text(row.timeToDeliver.p50Seconds),
    deliverP90Seconds: text(row.timeToDeliver.p90Seconds),
    deliverMaxSeconds: text(row.timeToDeliver.maxSeconds),
    acknowledgeP50Seconds: text(row.timeToAcknowledge.p50Seconds),
    acknowledgeP90Seconds: text(row.timeToAcknowledge.p90Seconds),
    acknowledgeMaxSeconds: text(row.timeToAcknowledge.maxSeconds),
    answerP50Seconds: text(row.timeToAnswer.p50Seconds),
    answerP90Seconds: text(row.timeToAnswer.p90Seconds),
    answerMaxSeconds: text(row.timeToAnswer.maxSeconds),
    acknowledgedOnTimeShare: text(row.acknowledgedOnTimeShare),
    answeredOnTimeShare: text(row.answeredOnTimeShare),
    openNow: text(row.openNow),
    overdueNow: text(row.overdueNow)
  }
}

/** Runs the CLI's report in-process against this Redis, capturing what it prints. */
async function cliReport (url: string, args: string[]): Promise<{ code: number, stdout: string }> {
  const previous = process.env.REDIS_URL
  process.env.REDIS_URL = url
  const write = process.stdout.write
  let stdout = ''
  process.stdout.write = ((chunk: string | Uint8Array): boolean => {
    stdout += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')
    return true
  }) as typeof process.stdout.write
  try {
    const code = await runReport(args)
    return { code, stdout }
  } finally {
    process.stdout.write = write
    if (previous === undefined) delete process.env.REDIS_URL
    else process.env.REDIS_URL = previous
  }
}

// ---------------------------------------------------------------------------

interface World {
  gateway: TestApp
  summary: SeedSummary
  facts: Facts[]
  oversight: string
}

async function seededWorld (t: Test): Promise<World> {
  const gateway = await buildApp(t)
  const seeding = new Redis(gateway.redis.url, { enableAutoPipelining: true })
  t.teardown(() => { seeding.disconnect() })
  const summary = await seedHistory({
    store: new RequestStore(seeding),
    cipher: new PayloadCipher(payloadKey),
    config: gateway.config,
    requests: REQUESTS,
    days: DAYS,
    seed: 20261201,
    concurrency: 200
  })
  t.equal(summary.created, REQUESTS, `${REQUESTS} requests generated`)

  const db = await redisClient(t, gateway.redis.url)
  const byRequest = new Map<string, AuditEvent[]>()
  let start = '-'
  for (;;) {
    const batch = await db.xrange(keys.auditStream, start, '+', 'COUNT', 5000) as Array<[string, string[]]>
    for (const [id, fields] of batch) {
      const event = decodeStreamEntry(id, fields)
      if (!byRequest.has(event.requestId)) byRequest.set(event.requestId, [])
      byRequest.get(event.requestId)?.push(event)
    }
    if (batch.length < 5000) break
    start = `(${batch[batch.length - 1][0]}`
  }
  const facts = [...byRequest.values()].map(replay)
  t.equal(facts.length, REQUESTS, 'the audit log tells the story of every request')
  return { gateway, summary, facts, oversight: gateway.token('EU-OVERSIGHT', ['auditor']) }
}

t.test('turnaround report over a generated history', async (t) => {
  const world = await seededWorld(t)
  const { gateway, summary, facts, oversight } = world
  const { app } = gateway

  t.test('the history is varied enough to test every figure', async (t) => {
    const statuses = new Set(facts.map((f) => f.status))
    for (const status of ['submitted', 'delivered', 'acknowledged', 'executed', 'refused', 'withdrawn', 'deemed_accepted', 'partially_executed']) {
      t.ok(statuses.has(status as RequestStatus), `some requests end ${status}`)
    }
    t.ok(facts.some((f) => f.ackDue !== undefined && f.acknowledgedAt !== undefined && f.acknowledgedAt > f.ackDue), 'some acknowledged late')
    t.ok(facts.some((f) => f.acknowledgedBy === 'request.clarification_requested'), 'some acknowledged by asking questions first')
    t.ok(facts.some((f) => f.answeredAt !== undefined && f.answeredAt > (f.respDueAtAnswer as number)), 'some answered late')
    t.ok(facts.filter(isOverdueNow).length > 10, 'some open and overdue now')
    t.ok(new Set(facts.map((f) => f.combo)).size >= 12, 'many directions of many pairs')
    t.ok(facts.some((f) => f.type === 'mla') && facts.some((f) => f.type === 'repatriation'), 'both types')
  })

  t.test('the records say what the events say', async (t) => {
    const store = new RequestStore(await redisClient(t, gateway.redis.url))
    const records = new Map((await store.getMany(facts.map((f) => f.id))).map((record) => [record.id, record]))
    let mismatches = 0
    for (const f of facts) {
      const record = records.get(f.id)
      const same = record !== undefined && record.status === f.status && record.submittedAt === f.submittedAt &&
        record.deliveredAt === f.deliveredAt && record.acknowledgedAt === f.acknowledgedAt &&
        (f.answeredAt === undefined || record.respondedAt === f.answeredAt) && record.respDue === f.respDue &&
        record.ackOverdue === f.ackOverdue && record.respOverdue === f.respOverdue
      if (!same && mismatches++ < 5) t.fail(`request ${f.id}: record and events disagree`, { record, facts: f })
    }
    t.equal(mismatches, 0, 'every record matches its events')
  })

  const periods: Array<[string, string, string]> = [
    ['the whole seeded period', summary.from, summary.to],
    ['three weeks in the middle', isoDay(Date.parse(summary.from) + 20 * DAY_MS), isoDay(Date.parse(summary.from) + 40 * DAY_MS)],
    ['a single day', isoDay(Date.parse(summary.from) + 30 * DAY_MS), isoDay(Date.parse(summary.from) + 30 * DAY_MS)],
    ['all but the first and last three days (mid-block at both ends)', isoDay(Date.parse(summary.from) + 3 * DAY_MS), isoDay(Date.parse(summary.to) - 3 * DAY_MS)],
    ['a period without submissions (live gauges only)', '2031-01-01', '2031-01-31']
  ]

  const levels = (from: string, to: string): number => new Set(decompose(epochDayOfIso(from), epochDayOfIso(to)).map((block) => block.level)).size
  t.ok(levels(periods[3][1], periods[3][2]) >= 3, 'one period is read from blocks of three levels or more')

  for (const [label, from, to] of periods) {
    t.test(`every figure, ${label} (${from} .. ${to}: ${decompose(epochDayOfIso(from), epochDayOfIso(to)).length} blocks)`, async (t) => {
      const res = await get(app, oversight, `/v1/reports/turnaround?from=${from}&to=${to}`)
      t.equal(res.statusCode, 200)
      const report = res.json() as { from: string, to: string, scope: string, rows: ReportRow[] }
      t.equal(report.from, from)
      t.equal(report.to, to)
      t.equal(report.scope, 'gateway', 'an oversight auditor sees the whole gateway')
      checkRows(t, report.rows, expectedRows(facts, from, to))
    })
  }

  t.test('grouped by direction: both types of a direction in one row', async (t) => {
    const res = await get(app, oversight, `/v1/reports/turnaround?from=${summary.from}&to=${summary.to}&groupBy=direction`)
    t.equal(res.statusCode, 200)
    const rows = res.json().rows as ReportRow[]
    t.ok(rows.every((row) => row.type === '*'), 'type *')
    checkRows(t, rows, expectedRows(facts, summary.from, summary.to, 'direction'))
  })

  t.test('JSON and CSV agree, cell by cell', async (t) => {
    const url = `/v1/reports/turnaround?from=${summary.from}&to=${summary.to}`
    const json = (await get(app, oversight, url)).json().rows as ReportRow[]
    const csv = await get(app, oversight, `${url}&format=csv`)
    t.equal(csv.statusCode, 200)
    t.match(String(csv.headers['content-type']), /^text\/csv/)
    t.match(String(csv.headers['content-disposition']), new RegExp(`attachment; filename="turnaround-${summary.from}-${summary.to}.csv"`))
    const parsed = parseCsv(csv.body)
    t.same(Object.keys(parsed[0]), [...csvColumns], 'the documented columns, in order')
    t.equal(parsed.length, json.length, 'one line per row')
    t.same(parsed, json.map(csvCellsOf), 'the same figures')
  })

  t.test('reciprocity: A → B beside B → A for each pair and type', async (t) => {
    const res = await get(app, oversight, `/v1/reports/turnaround?from=${summary.from}&to=${summary.to}`)
    const { rows, reciprocity } = res.json() as { rows: ReportRow[], reciprocity: Array<{ authorities: [string, string], type: string, forward: ReportRow | null, backward: ReportRow | null }> }
    const byKey = new Map(rows.map((row) => [`${row.sender}>${row.recipient}:${row.type}`, row]))
    const covered = new Set<string>()
    for (const entry of reciprocity) {
      const [a, b] = entry.authorities
      t.ok(a < b, `${a} / ${b} in order`)
      t.same(entry.forward, byKey.get(`${a}>${b}:${entry.type}`) ?? null, `${a} → ${b} (${entry.type}) is the forward row`)
      t.same(entry.backward, byKey.get(`${b}>${a}:${entry.type}`) ?? null, `${b} → ${a} (${entry.type}) is the backward row`)
      covered.add(`${a}>${b}:${entry.type}`).add(`${b}>${a}:${entry.type}`)
    }
    t.ok(rows.every((row) => covered.has(`${row.sender}>${row.recipient}:${row.type}`)), 'every row appears in the reciprocity view')
    t.equal(reciprocity.length, new Set(rows.map((row) => `${[row.sender, row.recipient].sort().join('|')}|${row.type}`)).size, 'once per pair and type')
    t.ok(reciprocity.some((entry) => entry.forward !== null && entry.backward !== null), 'pairs with traffic both ways')
  })

  t.test('scopes: liaison officers and auditors see their own authority\'s pairs; oversight auditors every pair', async (t) => {
    const url = `/v1/reports/turnaround?from=${summary.from}&to=${summary.to}`
    const everything = (await get(app, oversight, url)).json().rows as ReportRow[]
    for (const authority of ['TR-MOJ', 'TR-PMM', 'DE-BFJ', 'FR-BEPI', 'NL-AIRS']) {
      const own = everything.filter((row) => row.sender === authority || row.recipient === authority)
      t.ok(own.length > 0, `${authority} has pairs`)
      for (const role of ['liaison', 'auditor'] as const) {
        const res = await get(app, gateway.token(authority, [role]), url)
        t.equal(res.statusCode, 200, `${role} of ${authority}: 200`)
        t.equal(res.json().scope, authority, `${role} of ${authority}: scoped to ${authority}`)
        t.same(res.json().rows, own, `${role} of ${authority}: exactly the rows of its pairs, with the same figures`)
      }
    }
    const liaisonOfOversight = await get(app, gateway.token('EU-OVERSIGHT', ['liaison']), url)
    t.equal(liaisonOfOversight.statusCode, 200)
    t.same(liaisonOfOversight.json().rows, [], 'oversight is for auditors: a liaison officer of the oversight body sees no pair')
    for (const role of ['agency', 'admin'] as const) {
      expectProblem(t, await get(app, gateway.token('TR-MOJ', [role]), url), 403, `${role}`)
      expectProblem(t, await get(app, gateway.token('EU-OVERSIGHT', [role]), url), 403, `${role} of the oversight body`)
    }
    expectProblem(t, await app.inject({ method: 'GET', url }), 401, 'no token')
  })

  t.test('bad periods are refused with 400', async (t) => {
    const cases: Array<[string, string]> = [
      ['from=2026-10-02&to=2026-10-01', 'to before from'],
      ['from=2026-13-01&to=2026-12-31', 'no such month'],
      ['from=2026-10-01', 'to missing'],
      ['to=2026-10-01', 'from missing'],
      ['from=yesterday&to=2026-10-01', 'not a date'],
      ['from=2026-10-01T00:00:00Z&to=2026-10-02', 'a timestamp, not a date'],
      ['from=2000-01-01&to=2026-10-01', 'longer than ten years'],
      ['from=2026-10-01&to=2026-10-02&format=xml', 'unknown format'],
      ['from=2026-10-01&to=2026-10-02&groupBy=month', 'unknown grouping'],
      ['from=2026-10-01&to=2026-10-02&colour=blue', 'unknown parameter']
    ]
    for (const [query, what] of cases) expectProblem(t, await get(app, oversight, `/v1/reports/turnaround?${query}`), 400, what)
  })

  t.test('npm run report (runReport) prints the same rows', async (t) => {
    const url = `/v1/reports/turnaround?from=${summary.from}&to=${summary.to}`
    const api = (await get(app, oversight, url)).json()
    const json = await cliReport(gateway.redis.url, ['--from', summary.from, '--to', summary.to])
    t.equal(json.code, 0)
    const printed = JSON.parse(json.stdout)
    t.same(printed.rows, api.rows, 'JSON: the same rows as the API')
    t.same(printed.reciprocity, api.reciprocity, 'JSON: the same reciprocity view')

    const csv = await cliReport(gateway.redis.url, ['--from', summary.from, '--to', summary.to, '--csv'])
    t.equal(csv.code, 0)
    t.equal(csv.stdout, (await get(app, oversight, `${url}&format=csv`)).body, '--csv: the same CSV as the API')

    const scoped = await cliReport(gateway.redis.url, ['--from', summary.from, '--to', summary.to, '--authority', 'FR-BEPI'])
    t.same(JSON.parse(scoped.stdout).rows, (await get(app, gateway.token('FR-BEPI', ['auditor']), url)).json().rows, '--authority: what that authority\'s auditors see')

    const byDirection = await cliReport(gateway.redis.url, ['--from', summary.from, '--to', summary.to, '--by', 'direction'])
    t.same(JSON.parse(byDirection.stdout).rows, (await get(app, oversight, `${url}&groupBy=direction`)).json().rows, '--by direction')

    const bad = await cliReport(gateway.redis.url, ['--from', 'yesterday', '--to', summary.to])
    t.equal(bad.code, 2, 'a bad date is a usage error')
  })
})

function isoDay (ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}
