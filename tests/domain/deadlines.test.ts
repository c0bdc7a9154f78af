import t from 'tap'
import fc from 'fast-check'
import type { Agreement } from '../../src/domain/types.js'
import { addDuration } from '../../src/domain/duration.js'
import {
  computeDeadlines,
  maxExtendedResponse,
  checkExtension,
  reminderAt,
  toDeadlines,
  startOfUtcDay,
  endOfUtcDay,
  pendingDeadlines,
  nextDeadlineAt,
  type ClockFacts
} from '../../src/domain/deadlines.js'

const eio: Agreement = {
  id: 'eio-de-bfj-fr-bepi',
  parties: ['DE-BFJ', 'FR-BEPI'],
  requestType: 'mla',
  legalBasis: 'eio-directive-2014-41',
  title: 'EIO',
  acknowledgeWithin: 'P7D',
  respondWithin: 'P30D',
  extensionMax: 'P30D',
  onSilence: 'stays_overdue',
  reminderAtFraction: 0.8
}

const readmission: Agreement = {
  id: 'readm-tr-pmm-de-bfj',
  parties: ['TR-PMM', 'DE-BFJ'],
  requestType: 'repatriation',
  legalBasis: 'eu-readmission-agreement',
  title: 'EU–Türkiye readmission',
  acknowledgeWithin: 'P5D',
  respondWithin: 'P25D',
  extensionMax: 'P35D',
  onSilence: 'deemed_accepted',
  custodyLeadTime: 'P3D',
  reminderAtFraction: 0.8
}

const accelerated: Agreement = {
  id: 'acc',
  parties: ['DE-BFJ', '*'],
  requestType: 'repatriation',
  legalBasis: 'accelerated-readmission',
  title: 'accelerated',
  respondWithin: 'P3D',
  onSilence: 'deemed_accepted',
  reminderAtFraction: 0.5
}

const at = (s: string): Date => new Date(s)
const submittedAt = at('2026-03-02T09:15:00.000Z')

t.test('EIO: acknowledge within 7 days, respond within 30', async t => {
  const d = computeDeadlines(eio, { submittedAt })
  t.equal(d.acknowledgement?.toISOString(), '2026-03-09T09:15:00.000Z')
  t.equal(d.response.toISOString(), '2026-04-01T09:15:00.000Z')
  t.equal(d.responseBase.toISOString(), '2026-04-01T09:15:00.000Z')
  t.equal(d.pulledEarlierBy, undefined)
  t.notOk('pulledEarlierBy' in d, 'no pulledEarlierBy key when nothing pulled')
  t.same(toDeadlines(d), { acknowledgement: '2026-03-09T09:15:00.000Z', response: '2026-04-01T09:15:00.000Z' })
})

t.test('no acknowledgement clock when the agreement has none', async t => {
  const d = computeDeadlines(accelerated, { submittedAt })
  t.equal(d.acknowledgement, undefined)
  t.notOk('acknowledgement' in d)
  t.equal(d.response.toISOString(), '2026-03-05T09:15:00.000Z')
  t.same(toDeadlines(d), { response: '2026-03-05T09:15:00.000Z' })
})

t.test('seconds-scale agreements (tests use them)', async t => {
  const fast: Agreement = { ...eio, acknowledgeWithin: 'PT10S', respondWithin: 'PT30S', extensionMax: 'PT15S' }
  const d = computeDeadlines(fast, { submittedAt })
  t.equal(d.acknowledgement?.toISOString(), '2026-03-02T09:15:10.000Z')
  t.equal(d.response.toISOString(), '2026-03-02T09:15:30.000Z')
})

t.test('an urgent date earlier than the agreement pulls the response deadline', async t => {
  const d = computeDeadlines(eio, { submittedAt, urgentBy: '2026-03-20' })
  t.equal(d.response.toISOString(), '2026-03-20T23:59:59.999Z', 'end of that day, UTC')
  t.equal(d.responseBase.toISOString(), '2026-04-01T09:15:00.000Z')
  t.equal(d.pulledEarlierBy, 'urgency')
  t.equal(d.acknowledgement?.toISOString(), '2026-03-09T09:15:00.000Z', 'ack unchanged')
})

t.test('an urgent date later than the agreement changes nothing', async t => {
  const d = computeDeadlines(eio, { submittedAt, urgentBy: '2026-05-30' })
  t.equal(d.response.toISOString(), '2026-04-01T09:15:00.000Z')
  t.equal(d.pulledEarlierBy, undefined)
})

t.test('an urgent date before the acknowledgement deadline clamps the acknowledgement', async t => {
  const d = computeDeadlines(eio, { submittedAt, urgentBy: '2026-03-04' })
  t.equal(d.response.toISOString(), '2026-03-04T23:59:59.999Z')
  t.equal(d.acknowledgement?.toISOString(), '2026-03-04T23:59:59.999Z')
})

t.test('urgent date already past: due immediately (at submittedAt)', async t => {
  const d = computeDeadlines(eio, { submittedAt, urgentBy: '2026-02-01' })
  t.equal(d.response.toISOString(), submittedAt.toISOString())
  t.equal(d.acknowledgement?.toISOString(), submittedAt.toISOString())
  t.equal(d.pulledEarlierBy, 'urgency')
  const sameDay = computeDeadlines(eio, { submittedAt, urgentBy: '2026-03-02' })
  t.equal(sameDay.response.toISOString(), '2026-03-02T23:59:59.999Z', 'today means end of today')
})

t.test('custody release minus the lead time pulls a repatriation deadline', async t => {
  // base: 2026-03-27T09:15Z; release 2026-03-20 → 2026-03-17T00:00Z
  const d = computeDeadlines(readmission, { submittedAt, custodyReleaseDate: '2026-03-20' })
  t.equal(d.responseBase.toISOString(), '2026-03-27T09:15:00.000Z')
  t.equal(d.response.toISOString(), '2026-03-17T00:00:00.000Z')
  t.equal(d.pulledEarlierBy, 'custody_release')
  t.equal(d.acknowledgement?.toISOString(), '2026-03-07T09:15:00.000Z')

  const late = computeDeadlines(readmission, { submittedAt, custodyReleaseDate: '2026-06-01' })
  t.equal(late.response.toISOString(), '2026-03-27T09:15:00.000Z', 'a late release changes nothing')
  t.equal(late.pulledEarlierBy, undefined)

  const noLead = computeDeadlines({ ...readmission, custodyLeadTime: undefined }, { submittedAt, custodyReleaseDate: '2026-03-20' })
  t.equal(noLead.response.toISOString(), '2026-03-20T00:00:00.000Z', 'no lead time: the release date itself')

  const past = computeDeadlines(readmission, { submittedAt, custodyReleaseDate: '2026-03-04' })
  t.equal(past.response.toISOString(), submittedAt.toISOString(), 'release − lead already past: due now')
  t.equal(past.pulledEarlierBy, 'custody_release')
})

t.test('urgency and custody together: the earlier wins', async t => {
  const a = computeDeadlines(readmission, { submittedAt, urgentBy: '2026-03-10', custodyReleaseDate: '2026-03-20' })
  t.equal(a.pulledEarlierBy, 'urgency')
  t.equal(a.response.toISOString(), '2026-03-10T23:59:59.999Z')
  const b = computeDeadlines(readmission, { submittedAt, urgentBy: '2026-03-18', custodyReleaseDate: '2026-03-20' })
  t.equal(b.pulledEarlierBy, 'custody_release')
  t.equal(b.response.toISOString(), '2026-03-17T00:00:00.000Z')
})

t.test('malformed fact dates are rejected', async t => {
  t.throws(() => computeDeadlines(eio, { submittedAt, urgentBy: '2026-02-30' }), /urgentBy.*not a calendar date/)
  t.throws(() => computeDeadlines(eio, { submittedAt, urgentBy: '20260301' }), /urgentBy/)
  t.throws(() => computeDeadlines(readmission, { submittedAt, custodyReleaseDate: '2026-03-20T00:00:00Z' }), /custodyReleaseDate/)
  t.throws(() => computeDeadlines(eio, { submittedAt: new Date('x') }), RangeError)
  t.equal(startOfUtcDay('2028-02-29').toISOString(), '2028-02-29T00:00:00.000Z')
  t.equal(endOfUtcDay('2028-02-29').toISOString(), '2028-02-29T23:59:59.999Z')
  t.throws(() => startOfUtcDay('2026-02-29'), RangeError)
})

t.test('extensions: within the cap, over it, not later, not allowed', async t => {
  const original = at('2026-04-01T09:15:00.000Z')
  t.equal(maxExtendedResponse(eio, original)?.toISOString(), '2026-05-01T09:15:00.000Z')
  t.equal(maxExtendedResponse(accelerated, original), undefined)

  t.same(checkExtension(eio, original, original, at('2026-04-20T00:00:00Z')), { ok: true })
  t.same(checkExtension(eio, original, original, at('2026-05-01T09:15:00.000Z')), { ok: true }, 'exactly the cap')
  const over = checkExtension(eio, original, original, at('2026-05-01T09:15:00.001Z'))
  t.equal(over.ok, false)
  if (!over.ok) t.match(over.reason, /beyond the limit 2026-05-01T09:15:00.000Z/)

  // a second extension: cap still measured from the original deadline
  const current = at('2026-04-20T00:00:00Z')
  t.same(checkExtension(eio, original, current, at('2026-04-30T00:00:00Z')), { ok: true })
  const notLater = checkExtension(eio, original, current, at('2026-04-15T00:00:00Z'))
  t.equal(notLater.ok, false)
  if (!notLater.ok) t.match(notLater.reason, /not later than the current one/)
  t.equal(checkExtension(eio, original, current, current).ok, false, 'equal is not later')

  const none = checkExtension(accelerated, original, original, at('2026-04-02T00:00:00Z'))
  t.equal(none.ok, false)
  if (!none.ok) t.match(none.reason, /allows no extension/)
  t.equal(checkExtension(eio, original, original, new Date('x')).ok, false)

  // readmission: 25 days + 35 = 60 days in all
  const rOriginal = computeDeadlines(readmission, { submittedAt }).response
  t.equal(maxExtendedResponse(readmission, rOriginal)?.toISOString(), addDuration(submittedAt, 'P60D').toISOString())
})

t.test('reminders', async t => {
  const start = at('2026-03-01T00:00:00.000Z')
  const due = at('2026-03-11T00:00:00.000Z') // 10 days
  t.equal(reminderAt(start, due, 0.8).toISOString(), '2026-03-09T00:00:00.000Z', '80% of 10 days = day 8')
  t.equal(reminderAt(start, due, 0.5).toISOString(), '2026-03-06T00:00:00.000Z')
  t.equal(reminderAt(start, at('2026-03-01T00:00:00.010Z'), 0.8).toISOString(), '2026-03-01T00:00:00.008Z')
  t.equal(reminderAt(start, at('2026-03-01T00:00:00.003Z'), 0.5).toISOString(), '2026-03-01T00:00:00.001Z', 'rounded down')
  t.equal(reminderAt(start, start, 0.8).toISOString(), start.toISOString(), 'zero-length clock')
  t.equal(reminderAt(due, start, 0.8).toISOString(), start.toISOString(), 'due before start: at due')
  for (const f of [0, 1, -0.1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => reminderAt(start, due, f), RangeError, `fraction ${f}`)
  }
})

t.test('property: response never after submittedAt+respondWithin, never before submittedAt; ack never after response', async t => {
  const durationArb = fc.oneof(
    fc.integer({ min: 1, max: 120 }).map(n => `P${n}D`),
    fc.integer({ min: 1, max: 3600 }).map(n => `PT${n}S`),
    fc.integer({ min: 1, max: 14 }).map(n => `P${n}M`),
    fc.integer({ min: 1, max: 8 }).map(n => `P${n}W`)
  )
  const dayArb = fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2035-12-31T00:00:00Z'), noInvalidDate: true })
    .map(d => d.toISOString().slice(0, 10))
  fc.assert(fc.property(
    fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2035-12-31T00:00:00Z'), noInvalidDate: true }),
    fc.option(durationArb, { nil: undefined }),
    durationArb,
    fc.option(durationArb, { nil: undefined }),
    fc.option(dayArb, { nil: undefined }),
    fc.option(dayArb, { nil: undefined }),
    (submitted, ack, respond, lead, urgentBy, release) => {
      const agreement: Agreement = {
        ...readmission, acknowledgeWithin: ack, respondWithin: respond, custodyLeadTime: lead
      }
      const d = computeDeadlines(agreement, { submittedAt: submitted, urgentBy, custodyReleaseDate: release })
      const base = addDuration(submitted, respond).getTime()
      if (d.responseBase.getTime() !== base) return false
      if (d.response.getTime() > base) return false
      if (d.response.getTime() < submitted.getTime()) return false
      if ((d.pulledEarlierBy === undefined) !== (d.response.getTime() === base)) return false
      if (ack === undefined) return d.acknowledgement === undefined
      return d.acknowledgement !== undefined && d.acknowledgement.getTime() <= d.response.getTime()
    }
  ), { numRuns: 500 })
  t.pass()
})

t.test('what is left to fire: reminders and due dates of the running clocks, earliest first', async t => {
  const base: ClockFacts = { id: 'r1', status: 'delivered', submittedAt: 0, ackDue: 1000, ackOverdue: false, respDue: 10_000, respOverdue: false }
  const kinds = (facts: ClockFacts, now?: number): string[] => pendingDeadlines(facts, 0.8, now).map((d) => `${d.kind}@${d.fireAt}`)
  t.same(kinds(base), ['acknowledgement_reminder@800', 'acknowledgement_due@1000', 'response_reminder@8000', 'response_due@10000'], 'a fresh request: both clocks, each with its reminder at 80%')
  t.equal(nextDeadlineAt(base), 800, 'so it next needs the worker at the first reminder')
  t.same(kinds({ ...base, ackRemindedFor: 1000 }), ['acknowledgement_due@1000', 'response_reminder@8000', 'response_due@10000'], 'a reminder sent for this deadline is done')
  t.same(kinds({ ...base, ackRemindedFor: 900 }).slice(0, 1), ['acknowledgement_reminder@800'], 'one sent for another deadline is not')
  t.same(kinds({ ...base, acknowledgedAt: 500 }), ['response_reminder@8000', 'response_due@10000'], 'acknowledged: the acknowledgement clock stops')
  t.same(kinds({ ...base, ackOverdue: true }), ['response_reminder@8000', 'response_due@10000'], 'acknowledgement overdue: recorded once, nothing more on that clock')
  t.same(kinds({ ...base, ackDue: undefined }), ['response_reminder@8000', 'response_due@10000'], 'no acknowledgement clock in the agreement')
  t.same(kinds({ ...base, respDue: 20_000, ackOverdue: true }), ['response_reminder@16000', 'response_due@20000'], 'an extended deadline gets its own reminder')
  t.same(kinds({ ...base, respOverdue: true, ackOverdue: true }), [], 'both fired: nothing left')
  t.equal(nextDeadlineAt({ ...base, respOverdue: true, ackOverdue: true }), undefined, 'and no next time')
  for (const status of ['executed', 'refused', 'withdrawn', 'deemed_accepted']) t.same(kinds({ ...base, status }), [], `${status}: closed, nothing to fire`)
  t.same(kinds(base, 1500), ['acknowledgement_due@1000', 'response_reminder@8000', 'response_due@10000'], 'a reminder whose deadline has passed by the time it is fired is skipped: the overdue notice says more')
  t.same(kinds(base, 999), kinds(base), 'while the deadline is still ahead, the late reminder is still sent')
  t.same(pendingDeadlines(base, 0.5).map((d) => d.fireAt), [500, 1000, 5000, 10_000], 'the agreement\'s reminder fraction')
  t.ok(pendingDeadlines(base).every((d) => d.requestId === 'r1' && (d.kind.startsWith('acknowledgement') ? d.dueAt === 1000 : d.dueAt === 10_000)), 'each names its request and the deadline it belongs to')
})
