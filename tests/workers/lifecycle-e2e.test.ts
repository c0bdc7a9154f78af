// The lifecycle end to end: the API, the workers (dispatcher, delivery,
// deadlines, sweep) and a real webhook receiver on a real Redis. Requests are
// delivered by signed webhook, every step reaches the other side, and the
// deadlines of the agreements fire on time, once, as "negative evidence" both
// sides see: overdue flags, the readmission agreement's deemed acceptance, and
// the sweep that puts a lost entry of the deadline set back.
//
// One gateway (Redis, API, workers, receiver) serves the whole file: the tests
// use different pairs of authorities, so that each has an inbox of its own,
// and run side by side; the sweep test runs after them. The agreements' clocks are shortened to seconds where a test
// waits for them; building the gateway once also keeps the event loop free
// while the deadlines fire.
import t, { type Test } from 'tap'
import {
  count,
  history,
  hookPath,
  lateness,
  mlaBody,
  must,
  nextDeadline,
  act,
  personalMarkers,
  repatriationBody,
  reportLateness,
  startGateway,
  submitAs,
  sleep,
  view,
  waitForEvent,
  withWebhooks,
  type Gateway,
  type HistoryEvent
} from './harness.js'
import { bearer } from '../helpers/app.js'
import { agreementOf } from '../helpers/config.js'
import { nextDeadlineAt } from '../../src/domain/deadlines.js'
import type { GatewayConfig } from '../../src/domain/types.js'
import type { Receiver } from '../helpers/receiver.js'

reportLateness(t)

const TR = hookPath('TR-MOJ')
const DE = hookPath('DE-BFJ')
const NL = hookPath('NL-AIRS')
const PMM = hookPath('TR-PMM')
const BEPI = hookPath('FR-BEPI')

/**
 * Every party used here receives webhooks. Clocks:
 * - TR-MOJ ↔ DE-BFJ, 1959 Convention: acknowledge in 3 s, respond in 6 s, extend by up to 20 s;
 * - TR-MOJ ↔ DE-BFJ, a bilateral treaty (added) with the demo's 10 and 90 days, for the unhurried path;
 * - TR-MOJ ↔ NL-AIRS, 1959 Convention: 3 s and 6 s;
 * - TR-PMM ↔ FR-BEPI, readmission (deemed accepted on silence): 2 s and 4 s.
 */
function configure (config: GatewayConfig, receiver: Receiver): void {
  withWebhooks(config, receiver, ['TR-MOJ', 'DE-BFJ', 'NL-AIRS', 'TR-PMM', 'FR-BEPI'], { retryScheduleSeconds: [0, 1, 1, 2], timeoutMs: 2000 })
  Object.assign(agreementOf(config, 'coe1959-tr-moj-de-bfj'), { acknowledgeWithin: 'PT3S', respondWithin: 'PT6S', extensionMax: 'PT20S' })
  Object.assign(agreementOf(config, 'coe1959-tr-moj-nl-airs'), { acknowledgeWithin: 'PT3S', respondWithin: 'PT6S' })
  Object.assign(agreementOf(config, 'readmission-tr-pmm-fr-bepi'), { acknowledgeWithin: 'PT2S', respondWithin: 'PT4S' })
  config.agreements.push({
    id: 'bilateral-tr-moj-de-bfj',
    parties: ['TR-MOJ', 'DE-BFJ'],
    requestType: 'mla',
    legalBasis: 'bilateral-mla-treaty',
    title: 'A bilateral MLA treaty with the demo clocks (test)',
    acknowledgeWithin: 'P10D',
    respondWithin: 'P90D',
    extensionMax: 'P30D',
    onSilence: 'stays_overdue',
    reminderAtFraction: 0.8
  })
}

const gw = await startGateway(t, { configure })
const { receiver } = gw

/** The fired event of this type, checked against its due date: never early, at most 2 s late. */
function expectOnTime (t: Test, events: HistoryEvent[], type: string, dueIso: string, what: string): void {
  const fired = events.filter((e) => e.type === type)
  t.equal(fired.length, 1, `${what}: ${type} is recorded once`)
  if (fired.length === 0) return
  const event = fired[0]
  t.equal(event.data.dueAt, dueIso, `${what}: ${type} names the deadline it is about`)
  const late = Date.parse(event.at) - Date.parse(event.data.dueAt)
  lateness.push(late)
  t.ok(late >= 0, `${what}: ${type} is not recorded before the deadline (${late} ms after)`)
  t.ok(late <= 2000, `${what}: ${type} is recorded within 2 s of the deadline (${late} ms after)`)
  t.equal(event.actor.authority, 'gateway', `${what}: ${type} is recorded by the gateway`)
}

const accepted = (receiver: Receiver, id: string, type: string, path: string): boolean =>
  receiver.about(id, type, path).some((d) => d.answered && d.status >= 200 && d.status < 300)

async function inboxIds (gw: Gateway, authority: string, query: string): Promise<string[]> {
  const res = await gw.app.inject({ method: 'GET', url: `/v1/requests?box=inbox&${query}`, headers: bearer(gw.token(authority, 'liaison')) })
  if (res.statusCode !== 200) throw new Error(`inbox answered ${res.statusCode}: ${res.body}`)
  return res.json().items.map((item: { id: string }) => item.id)
}

const sideBySide = t.test('side by side', { jobs: 4 }, async (t) => {
  t.test('an MLA request TR-MOJ → DE-BFJ: submitted, delivered by webhook, acknowledged, partially executed, executed; each step reaches the other side', async (t) => {
    const submitted = await submitAs(gw, 'TR-MOJ', { ...mlaBody(), legalBasis: 'bilateral-mla-treaty' })
    t.equal(submitted.agreementId, 'bilateral-tr-moj-de-bfj', 'under the bilateral treaty (days, not seconds: no deadline interferes)')
    const id: string = submitted.id
    t.equal(submitted.status, 'submitted', 'the request starts submitted')

    await receiver.waitFor(() => accepted(receiver, id, 'request.submitted', DE), 10_000, 'the submission at DE-BFJ')
    await waitForEvent(gw, id, 'request.delivered', 10_000)
    const delivered = await view(gw, 'TR-MOJ', id)
    t.equal(delivered.status, 'delivered', 'the webhook\'s 2xx makes the request delivered')
    t.type(delivered.deliveredAt, 'string', 'with the time of delivery')
    await receiver.waitFor(() => accepted(receiver, id, 'request.delivered', TR), 10_000, 'the delivery notice at TR-MOJ')

    // The recipient fetches the content with its own token: no second delivery.
    const fetched = await view(gw, 'DE-BFJ', id)
    t.equal(fetched.status, 'delivered', 'the recipient\'s fetch after delivery leaves it delivered')
    t.equal(fetched.content.persons[0].familyName, 'Karaosmanlı', 'and the recipient gets the content through the API')

    const acknowledged = await must(gw, 'DE-BFJ', id, 'acknowledgement', { recipientReference: 'BfJ II 3 - 9350/26', estimatedAnswerDate: '2027-02-01' })
    t.equal(acknowledged.status, 'acknowledged', 'acknowledged')
    await receiver.waitFor(() => accepted(receiver, id, 'request.acknowledged', TR), 10_000, 'the acknowledgement at TR-MOJ')

    const partial = await must(gw, 'DE-BFJ', id, 'responses', { outcome: 'partially_executed', text: 'Bank records of Burak Selim Karaosmanlı enclosed; Sabine Brandt to be heard next month.' })
    t.equal(partial.status, 'partially_executed', 'partially executed')
    await receiver.waitFor(() => accepted(receiver, id, 'request.partially_executed', TR), 10_000, 'the partial answer at TR-MOJ')

    const executed = await must(gw, 'DE-BFJ', id, 'responses', { outcome: 'executed', text: 'Hearing of Sabine Brandt held; record enclosed (passport U00000000 verified).' })
    t.equal(executed.status, 'executed', 'executed')
    t.type(executed.closedAt, 'string', 'and closed')
    await receiver.waitFor(() => accepted(receiver, id, 'request.executed', TR), 10_000, 'the final answer at TR-MOJ')

    const steps = ['request.submitted', 'request.delivered', 'request.acknowledged', 'request.partially_executed', 'request.executed']
    const senderView = await history(gw, 'TR-MOJ', id)
    t.same(senderView.map((e) => e.type), steps, 'the history holds every step, in order')
    t.same((await history(gw, 'DE-BFJ', id)).map((e) => e.id), senderView.map((e) => e.id), 'the recipient sees the same history')
    t.same(senderView.map((e) => e.actor.authority), ['TR-MOJ', 'gateway', 'DE-BFJ', 'DE-BFJ', 'DE-BFJ'], 'each step names who took it')
    const times = senderView.map((e) => Date.parse(e.at))
    t.same(times, [...times].sort((a, b) => a - b), 'in chronological order')

    // Who got what: the submission at DE-BFJ's URL, the rest at TR-MOJ's.
    const mine = receiver.deliveries.filter((d) => d.body?.data?.requestId === id)
    const expectedPath: Record<string, string> = { 'request.submitted': DE, 'request.delivered': TR, 'request.acknowledged': TR, 'request.partially_executed': TR, 'request.executed': TR }
    for (const event of senderView) {
      const copies = mine.filter((d) => d.body.type === event.type)
      t.ok(copies.length >= 1, `${event.type} was delivered`)
      t.same([...new Set(copies.map((d) => d.path))], [expectedPath[event.type]], `${event.type} went to ${expectedPath[event.type]} only`)
      t.equal(new Set(copies.map((d) => d.webhookId)).size, 1, `${event.type}: one webhook-id for every copy`)
      t.equal(copies[0]?.body.data.eventId, event.id, `${event.type}: the payload's data.eventId is the event's own id in the history`)
      t.equal(copies[0]?.body.timestamp, event.at, `${event.type}: the payload's timestamp is the event's`)
    }
    t.equal(new Set(mine.map((d) => d.webhookId)).size, steps.length, 'a distinct webhook-id per event')
    t.ok(mine.every((d) => d.verified), 'every webhook carried a valid Standard Webhooks signature for its authority\'s secret')
    t.equal(mine.find((d) => d.body.type === 'request.submitted')?.body.data.requestType, 'mla', 'the payload carries the request\'s metadata')

    const leaks = personalMarkers.filter((marker) => mine.some((d) => d.raw.includes(marker)))
    t.same(leaks, [], 'no personal data (names, document numbers, free text) in any webhook body')

    t.notOk((await inboxIds(gw, 'DE-BFJ', '')).includes(id), 'executed: gone from the recipient\'s inbox')
    t.ok((await inboxIds(gw, 'DE-BFJ', 'status=executed')).includes(id), 'and listed with status=executed')
  })

  t.test('acknowledgement and response deadlines fire on time, once, seen and notified on both sides; overdue=true lists them, most overdue first', async (t) => {
    const toNL = (): Record<string, any> => ({ ...mlaBody(), recipient: 'NL-AIRS' })
    const a1 = await submitAs(gw, 'TR-MOJ', toNL())
    const b = await submitAs(gw, 'TR-MOJ', toNL())
    const bSubmitted = Date.parse(b.submittedAt)
    const bAckDue = Date.parse(b.deadlines.acknowledgement)
    t.equal(await nextDeadline(gw, b.id), bSubmitted + Math.floor((bAckDue - bSubmitted) * 0.8), 'the submission put b in the deadline set at its acknowledgement reminder')
    await must(gw, 'NL-AIRS', b.id, 'acknowledgement', {})
    const bRespDue = Date.parse(b.deadlines.response)
    t.equal(await nextDeadline(gw, b.id), bSubmitted + Math.floor((bRespDue - bSubmitted) * 0.8), 'the acknowledgement moved it to the response reminder: nothing left to fire for the acknowledgement')
    await new Promise((resolve) => setTimeout(resolve, 500))
    const a2 = await submitAs(gw, 'TR-MOJ', toNL())
    t.ok(Date.parse(a1.deadlines.acknowledgement) < Date.parse(a2.deadlines.acknowledgement), 'a1 is due before a2')

    await waitForEvent(gw, a2.id, 'request.acknowledgement_overdue', 10_000)
    // The overdue list at this instant: every request whose pending deadline has passed, most overdue first.
    const d = await submitAs(gw, 'TR-MOJ', toNL())
    const scoreOf = (r: any, acknowledged: boolean): number => acknowledged ? Date.parse(r.deadlines.response) : Date.parse(r.deadlines.acknowledgement)
    const candidates = [{ r: a1, s: scoreOf(a1, false) }, { r: a2, s: scoreOf(a2, false) }, { r: b, s: scoreOf(b, true) }, { r: d, s: scoreOf(d, false) }]
    const before = Date.now()
    const overdueIds = await inboxIds(gw, 'NL-AIRS', 'overdue=true')
    const expected = candidates.filter((c) => c.s <= before).sort((x, y) => x.s - y.s).map((c) => c.r.id)
    t.same(overdueIds, expected, 'overdue=true lists exactly the overdue requests, most overdue first')
    t.same(overdueIds.slice(0, 2), [a1.id, a2.id], 'a1 (overdue longer) before a2')
    t.notOk(overdueIds.includes(d.id), 'a request not yet due is not listed')
    t.same((await inboxIds(gw, 'NL-AIRS', '')).slice(0, 2), [a1.id, a2.id], 'the plain inbox puts the overdue ones first too')

    for (const r of [a1, a2, b]) await waitForEvent(gw, r.id, 'request.response_overdue', 12_000)
    t.equal(count(await history(gw, 'TR-MOJ', b.id), 'request.acknowledgement_overdue'), 0, 'no acknowledgement_overdue for b, acknowledged in time')

    for (const [name, r, acknowledged] of [['a1', a1, false], ['a2', a2, false], ['b', b, true]] as const) {
      const seenBySender = await history(gw, 'TR-MOJ', r.id)
      const seenByRecipient = await history(gw, 'NL-AIRS', r.id)
      t.same(seenByRecipient.map((e) => e.id), seenBySender.map((e) => e.id), `${name}: both sides see the same history`)
      if (!acknowledged) expectOnTime(t, seenBySender, 'request.acknowledgement_overdue', r.deadlines.acknowledgement, name)
      expectOnTime(t, seenBySender, 'request.response_overdue', r.deadlines.response, name)
      for (const side of ['TR-MOJ', 'NL-AIRS']) {
        const v = await view(gw, side, r.id)
        t.same(v.overdue, { acknowledgement: !acknowledged, response: true }, `${name}: ${side} sees the overdue flags`)
        t.equal(v.status, acknowledged ? 'acknowledged' : 'delivered', `${name}: overdue is a flag, not a state`)
      }
    }
    t.equal(count(await history(gw, 'TR-MOJ', a1.id), 'request.acknowledgement_reminder'), 1, 'a1: one acknowledgement reminder')
    const a1Events = await history(gw, 'TR-MOJ', a1.id)
    const order = a1Events.map((e) => e.type)
    t.ok(order.indexOf('request.acknowledgement_reminder') < order.indexOf('request.acknowledgement_overdue'), 'the reminder came before the deadline')
    const reminder = a1Events.find((e) => e.type === 'request.acknowledgement_reminder')
    t.ok(Date.parse(reminder!.at) < Date.parse(a1.deadlines.acknowledgement), 'the reminder is recorded before the deadline')

    // Negative evidence reaches both parties.
    await receiver.waitFor(() => [a1, a2].every((r) => [TR, NL].every((path) =>
      accepted(receiver, r.id, 'request.acknowledgement_overdue', path) && accepted(receiver, r.id, 'request.response_overdue', path))), 10_000, 'overdue notices at both parties')
    t.pass('acknowledgement_overdue and response_overdue were delivered to TR-MOJ and NL-AIRS')
    t.ok(receiver.about(a1.id, 'request.acknowledgement_reminder').every((d) => d.path === NL), 'reminders go to the recipient only')

    // Firing again what has fired records nothing more.
    const dueAt = Date.parse(a1.deadlines.response)
    t.equal(await gw.workers.deadlines.fire({ requestId: a1.id, kind: 'response_due', dueAt, fireAt: dueAt }), undefined, 'a re-run of a fired deadline is a no-op')
    t.same(await gw.workers.deadlines.fireDue(a1.id, Date.now()), [], 'and firing whatever is due finds nothing left')
    t.equal(count(await history(gw, 'TR-MOJ', a1.id), 'request.response_overdue'), 1, 'still one response_overdue')
    t.equal(await nextDeadline(gw, a1.id), undefined, 'with both clocks fired, a1 has left the deadline set')
    const firedA1 = (gw.firings.get(a1.id) ?? []).flatMap((firing) => firing.recorded)
    t.same(firedA1, ['acknowledgement_reminder', 'acknowledgement_due', 'response_reminder', 'response_due'], 'the deadline worker recorded each reminder and deadline of a1 once, in order')
  })

  t.test('an extension moves the response deadline: nothing fires at the old time, the overdue event comes at the new time', async (t) => {
    const r = await submitAs(gw, 'TR-MOJ', mlaBody())
    const oldDue = r.deadlines.response
    await must(gw, 'DE-BFJ', r.id, 'acknowledgement', {})
    const newDue = new Date(Date.parse(oldDue) + 3000).toISOString()
    const extended = await must(gw, 'DE-BFJ', r.id, 'extension', { responseDeadline: newDue, reason: 'The witness is abroad until next week.' })
    t.equal(extended.deadlines.response, newDue, 'the response deadline moved')
    t.equal(extended.deadlines.responseOriginal, oldDue, 'the original one is kept')
    const submitted = Date.parse(r.submittedAt)
    const expectedNext = nextDeadlineAt({ id: r.id, status: 'acknowledged', submittedAt: submitted, acknowledgedAt: submitted, ackOverdue: false, respDue: Date.parse(newDue), respOverdue: false })
    t.equal(await nextDeadline(gw, r.id), expectedNext, 'the extension moved the deadline entry to the reminder of the new deadline')

    await sleep(Math.max(0, Date.parse(oldDue) + 500 - Date.now()))
    t.equal(count(await history(gw, 'TR-MOJ', r.id), 'request.response_overdue'), 0, 'not overdue at the old deadline')
    t.notOk((await view(gw, 'TR-MOJ', r.id)).overdue.response, 'nor flagged')
    t.notOk((gw.firings.get(r.id) ?? []).some((firing) => firing.recorded.includes('response_due') && firing.at < Date.parse(newDue)), 'no response deadline recorded before the new one')

    const events = await waitForEvent(gw, r.id, 'request.response_overdue', 10_000)
    expectOnTime(t, events, 'request.response_overdue', newDue, 'extended request')
    const types = events.map((e) => e.type)
    t.ok(types.indexOf('request.extended') < types.indexOf('request.response_overdue'), 'the extension is in the history, before the overdue event')
    t.equal(events.find((e) => e.type === 'request.extended')?.data.responseDue, newDue, 'the extension event records the new deadline')
  })

  t.test('a readmission request nobody answers is deemed accepted when its response deadline passes', async (t) => {
    const r = await submitAs(gw, 'TR-PMM', repatriationBody())
    t.equal(r.agreementId, 'readmission-tr-pmm-fr-bepi', 'under the readmission agreement')
    t.equal(Date.parse(r.deadlines.response) - Date.parse(r.submittedAt), 4000, 'answered against the agreement\'s clock, not the release date')

    const events = await waitForEvent(gw, r.id, 'request.deemed_accepted', 12_000, 'TR-PMM')
    const types = events.map((e) => e.type)
    t.same(types.slice(-2), ['request.response_overdue', 'request.deemed_accepted'], 'response_overdue, then deemed_accepted, closing the history')
    t.equal(count(events, 'request.deemed_accepted'), 1, 'deemed accepted once')
    expectOnTime(t, events, 'request.acknowledgement_overdue', r.deadlines.acknowledgement, 'repatriation')
    expectOnTime(t, events, 'request.response_overdue', r.deadlines.response, 'repatriation')
    const deemed = events.find((e) => e.type === 'request.deemed_accepted')!
    t.equal(deemed.data.status, 'deemed_accepted', 'the closing event records the new status')
    t.equal(deemed.actor.authority, 'gateway', 'by the gateway')

    for (const side of ['TR-PMM', 'FR-BEPI']) {
      const v = await view(gw, side, r.id)
      t.equal(v.status, 'deemed_accepted', `${side} sees it deemed accepted`)
      t.type(v.closedAt, 'string', `${side} sees it closed`)
      t.equal(v.overdue.response, true, `${side} sees the response overdue`)
    }
    t.same((await history(gw, 'FR-BEPI', r.id)).map((e) => e.id), events.map((e) => e.id), 'the recipient sees the same history')
    await receiver.waitFor(() => [PMM, BEPI].every((path) => accepted(receiver, r.id, 'request.deemed_accepted', path) && accepted(receiver, r.id, 'request.response_overdue', path)), 10_000, 'deemed acceptance at both parties')
    t.pass('response_overdue and deemed_accepted were delivered to both parties')
    t.notOk((await inboxIds(gw, 'FR-BEPI', '')).includes(r.id), 'gone from the recipient\'s inbox')
    t.ok((await inboxIds(gw, 'FR-BEPI', 'status=deemed_accepted')).includes(r.id), 'listed with status=deemed_accepted')

    const late = await act(gw, 'FR-BEPI', r.id, 'responses', { outcome: 'refused', grounds: ['non_refoulement'] })
    t.equal(late.statusCode, 409, 'a refusal after deemed acceptance is refused (409)')
    t.equal(late.json().currentStatus, 'deemed_accepted', 'naming the current status')
  })
})

t.test('the sweep puts back a request lost from the deadline set, and its deadlines still fire', async (t) => {
  await sideBySide
  const r = await submitAs(gw, 'TR-MOJ', mlaBody())
  const submitted = Date.parse(r.submittedAt)
  const ackReminder = submitted + Math.floor((Date.parse(r.deadlines.acknowledgement) - submitted) * 0.8)
  t.equal(await nextDeadline(gw, r.id), ackReminder, 'the submission put the request in the deadline set, at its first reminder')
  const before = await gw.workers.sweep()
  t.equal(before.scheduled, 0, 'a sweep leaves the entries it finds alone')

  await gw.db.zrem('rog:deadlines', r.id)
  t.equal(await nextDeadline(gw, r.id), undefined, 'the entry is gone')
  const swept = await gw.workers.sweep()
  t.ok(swept.requests >= 1, `the sweep went through the open requests (${swept.requests})`)
  t.equal(swept.scheduled, 1, 'and put back the one entry missing')
  t.equal(await nextDeadline(gw, r.id), ackReminder, 'at the same time as before')

  const events = await waitForEvent(gw, r.id, 'request.response_overdue', 12_000)
  expectOnTime(t, events, 'request.acknowledgement_overdue', r.deadlines.acknowledgement, 'swept request')
  expectOnTime(t, events, 'request.response_overdue', r.deadlines.response, 'swept request')
  t.equal(await nextDeadline(gw, r.id), undefined, 'once both clocks have fired, the request leaves the deadline set')
  const after = await gw.workers.sweep()
  t.equal(after.scheduled, 0, 'and a sweep adds nothing for it')
  t.equal(await nextDeadline(gw, r.id), undefined, 'still nothing')
})
