// Webhook delivery against a real receiver that misbehaves: answers 503 for a
// while, goes down and comes back on the same port, answers 410, stays down past
// the whole retry schedule, and a worker process SIGKILLed while deliveries are
// in flight. Delivery is at least once, a repeat carries the same webhook-id, a
// hopeless delivery is given up loudly (request.delivery_failed, recorded once,
// visible to the sender), and nothing stays undelivered because a worker died.
import t from 'tap'
import {
  count,
  history,
  hookPath,
  mlaBody,
  spawnWorkerProcess,
  startApi,
  startGateway,
  submitAs,
  view,
  waitForEvent,
  withWebhooks,
  type Api,
  type HistoryEvent
} from './harness.js'
import { eventually } from '../helpers/fixtures.js'
import { bearer } from '../helpers/app.js'
import { Queue } from 'bullmq'
import { deliveryJobId, queueNames, queuePrefix } from '../../workers/queues.js'

t.jobs = 3

const TR = hookPath('TR-MOJ')
const DE = hookPath('DE-BFJ')

/** The submission event of a request (its first history entry). */
async function submissionEvent (gw: Api, id: string): Promise<HistoryEvent> {
  const [first] = await history(gw, 'TR-MOJ', id)
  if (first?.type !== 'request.submitted') throw new Error(`request ${id} has no submission event`)
  return first
}

/** Waits until every request is delivered (status and event). */
async function allDelivered (gw: Api, ids: string[], timeoutMs: number): Promise<void> {
  await eventually('every request delivered', async () => {
    for (const id of ids) {
      const res = await gw.app.inject({ method: 'GET', url: `/v1/requests/${id}`, headers: bearer(gw.token('TR-MOJ', 'auditor')) })
      if (res.json().status !== 'delivered') return undefined
    }
    return true
  }, timeoutMs, 100)
}

t.test('a receiver answering 503 for a while, then 2xx: everything is delivered, every retry of an event with the same webhook-id', async (t) => {
  const gw = await startGateway(t, { configure: (config, receiver) => withWebhooks(config, receiver, ['DE-BFJ'], { retryScheduleSeconds: [0, 1, 1, 2, 2] }) })
  const { receiver } = gw
  receiver.answer(503)
  const ids = [] as string[]
  for (let i = 0; i < 3; i++) ids.push((await submitAs(gw, 'TR-MOJ', mlaBody())).id)

  await receiver.waitFor(() => ids.every((id) => receiver.about(id, 'request.submitted', DE).length >= 2), 10_000, 'two refused attempts per submission')
  for (const id of ids) t.equal((await view(gw, 'TR-MOJ', id)).status, 'submitted', 'not delivered while the receiver answers 503')
  receiver.answer(204)
  await allDelivered(gw, ids, 10_000)

  for (const id of ids) {
    const attempts = receiver.about(id, 'request.submitted', DE)
    const submitted = await submissionEvent(gw, id)
    t.ok(attempts.length >= 3, `${attempts.length} attempts: refused ones, then the accepted one`)
    t.same(attempts.map((d) => d.status).slice(-1), [204], 'the last attempt was accepted')
    t.equal(new Set(attempts.map((d) => d.webhookId)).size, 1, 'every attempt carried the same webhook-id')
    t.ok(attempts.every((d) => d.verified && d.body.data.eventId === submitted.id), 'every attempt is the same signed event')
    const events = await history(gw, 'TR-MOJ', id)
    t.equal(count(events, 'request.delivered'), 1, 'delivered once')
    t.equal(count(events, 'request.delivery_failed'), 0, 'no delivery failure recorded')
  }
})

t.test('a receiver that is down, then up again on the same port: everything is delivered after it returns', async (t) => {
  const gw = await startGateway(t, { configure: (config, receiver) => withWebhooks(config, receiver, ['DE-BFJ'], { retryScheduleSeconds: [0, 1, 1, 2, 2] }) })
  const { receiver } = gw
  const port = receiver.port
  await receiver.down()
  const ids = [] as string[]
  for (let i = 0; i < 3; i++) ids.push((await submitAs(gw, 'TR-MOJ', mlaBody())).id)

  // Wait until each delivery has failed twice against the closed port: the dispatcher's immediate attempt, then one from the queue.
  for (const id of ids) {
    const jobId = deliveryJobId((await submissionEvent(gw, id)).id, 'DE-BFJ')
    await eventually(`two failed attempts of ${jobId}`, async () => {
      const job = await gw.workers.deliveryQueue.getJob(jobId)
      return job !== undefined && (job.data.attemptsBefore ?? 0) + job.attemptsMade >= 2 ? true : undefined
    }, 10_000, 50)
  }
  for (const id of ids) t.equal((await view(gw, 'TR-MOJ', id)).status, 'submitted', 'not delivered while the receiver is down')
  t.equal(receiver.deliveries.length, 0, 'nothing reached the receiver while it was down')

  await receiver.up()
  t.equal(receiver.port, port, 'the receiver is back on the same port')
  await allDelivered(gw, ids, 10_000)
  for (const id of ids) {
    const attempts = receiver.about(id, 'request.submitted', DE)
    t.ok(attempts.some((d) => d.status === 204 && d.verified), 'the submission arrived, signed, after the receiver came back')
    t.equal(new Set(attempts.map((d) => d.webhookId)).size, 1, 'one webhook-id')
    t.equal(count(await history(gw, 'TR-MOJ', id), 'request.delivery_failed'), 0, 'no delivery failure recorded')
  }
})

t.test('a receiver answering 410: one attempt, then request.delivery_failed for the sender, and no further attempts', async (t) => {
  const gw = await startGateway(t, { configure: (config, receiver) => withWebhooks(config, receiver, ['DE-BFJ', 'TR-MOJ'], { retryScheduleSeconds: [0, 1, 1, 2] }) })
  const { receiver } = gw
  receiver.answer((d) => d.path === DE ? 410 : 204)
  const { id } = await submitAs(gw, 'TR-MOJ', mlaBody())
  const submitted = await submissionEvent(gw, id)

  const events = await waitForEvent(gw, id, 'request.delivery_failed', 10_000, 'TR-MOJ')
  const failed = events.filter((e) => e.type === 'request.delivery_failed')
  t.equal(failed.length, 1, 'request.delivery_failed is recorded, in the history the sender reads')
  t.match(failed[0].data, { failedEventId: submitted.id, failedEvent: 'request.submitted', authority: 'DE-BFJ', attempts: 1, lastStatus: 410 }, 'naming the event, the authority, one attempt and the 410')

  t.equal(await gw.workers.deliveryQueue.getJob(deliveryJobId(submitted.id, 'DE-BFJ')), undefined, 'no retry is queued: the immediate attempt gave up')
  t.equal(receiver.about(id, 'request.submitted', DE).length, 1, 'the receiver got exactly one attempt')
  t.equal((await view(gw, 'TR-MOJ', id)).status, 'submitted', 'the request is not delivered')

  const notice = await receiver.waitFor(() => receiver.about(id, 'request.delivery_failed', TR).length > 0, 10_000, 'the failure notice at TR-MOJ')
  const copy = notice.find((d) => d.body?.data?.requestId === id && d.body.type === 'request.delivery_failed')!
  t.ok(copy.verified, 'the sender is told by a signed webhook')
  t.equal(copy.body.data.eventId, failed[0].id, 'the notice\'s data.eventId is its own event id')

  // The recipient can still pull it: the first fetch delivers it.
  const fetched = await view(gw, 'DE-BFJ', id)
  t.equal(fetched.status, 'delivered', 'the recipient\'s fetch delivers it all the same')
  t.equal(count(await history(gw, 'TR-MOJ', id), 'request.retrieved'), 1, 'recorded as a retrieval')
  t.equal(receiver.about(id, 'request.submitted', DE).length, 1, 'and the 410 endpoint was never tried again')
})

t.test('a receiver down past the whole retry schedule: request.delivery_failed recorded once', async (t) => {
  const gw = await startGateway(t, { configure: (config, receiver) => withWebhooks(config, receiver, ['DE-BFJ', 'TR-MOJ'], { retryScheduleSeconds: [0, 1, 1, 1] }) })
  const { receiver } = gw
  await receiver.down()
  const { id } = await submitAs(gw, 'TR-MOJ', mlaBody())
  const submitted = await submissionEvent(gw, id)

  const events = await waitForEvent(gw, id, 'request.delivery_failed', 15_000, 'TR-MOJ')
  const failed = events.find((e) => e.type === 'request.delivery_failed')!
  t.match(failed.data, { failedEventId: submitted.id, failedEvent: 'request.submitted', authority: 'DE-BFJ', attempts: 4, lastStatus: null }, 'after the four attempts of the schedule, no HTTP status')
  const job = await gw.workers.deliveryQueue.getJob(deliveryJobId(submitted.id, 'DE-BFJ'))
  t.equal(await job?.getState(), 'failed', 'the submission\'s delivery is given up')
  t.same([job?.data.attemptsBefore, job?.attemptsMade], [1, 3], 'after the dispatcher\'s immediate attempt and three from the queue')

  // The notice of the failure to TR-MOJ fails too (the receiver is down for everyone):
  // that is not recorded as another failure.
  const noticeJob = deliveryJobId(failed.id, 'TR-MOJ')
  await eventually('the failure notice to be given up', async () => (await (await gw.workers.deliveryQueue.getJob(noticeJob))?.getState()) === 'failed' ? true : undefined, 15_000, 100)
  const after = await history(gw, 'TR-MOJ', id)
  t.equal(count(after, 'request.delivery_failed'), 1, 'request.delivery_failed is recorded once')
  t.equal((await view(gw, 'TR-MOJ', id)).status, 'submitted', 'and the request is still waiting to be fetched')
})

t.test('workers SIGKILLed in the middle of deliveries: a new worker process delivers everything, repeats keep their webhook-id', async (t) => {
  const api = await startApi(t, { configure: (config, receiver) => withWebhooks(config, receiver, ['DE-BFJ'], { retryScheduleSeconds: [0, 1, 1, 2, 2], timeoutMs: 5000 }) })
  const { receiver } = api
  // BullMQ takes a job back from a dead worker once its lock expires and a stalled check sees it;
  // the events whose first attempt the dead dispatcher was making are taken over once idle that long.
  const stalled = { lockDurationMs: 4000, stalledIntervalMs: 1000, claimIdleMs: 3000 }
  const first = await spawnWorkerProcess(t, api, stalled)
  receiver.delay(2000) // every delivery stays in flight for a while

  const N = 20
  const ids = (await Promise.all(Array.from({ length: N }, async () => await submitAs(api, 'TR-MOJ', mlaBody())))).map((r) => r.id as string)
  await receiver.waitFor(() => ids.every((id) => receiver.about(id, 'request.submitted', DE).length > 0), 10_000, 'every submission to arrive')
  await first.kill()
  // Those the receiver had not answered yet when the worker died: the worker never saw a 2xx for them.
  const inFlight = receiver.deliveries.filter((d) => !d.answered)
  t.ok(inFlight.length > 0, `the worker died with ${inFlight.length} deliveries in flight`)
  const stillSubmitted = (await Promise.all(ids.map(async (id) => (await view(api, 'TR-MOJ', id)).status))).filter((s) => s === 'submitted').length
  t.ok(stillSubmitted > 0, `${stillSubmitted} requests were left undelivered by the dead worker`)

  receiver.delay(100)
  await spawnWorkerProcess(t, api, stalled)
  try {
    await allDelivered(api, ids, 30_000)
  } catch (error) {
    const queue = new Queue(queueNames.delivery, { connection: api.db.duplicate(), prefix: queuePrefix })
    const failed = await queue.getFailed()
    t.fail(String(error), { counts: await queue.getJobCounts(), failedReasons: failed.map((job) => job.failedReason) })
    await queue.close()
    return
  }
  t.pass(`all ${N} requests are delivered`)

  for (const id of ids) {
    const submitted = await submissionEvent(api, id)
    const copies = receiver.about(id, 'request.submitted', DE)
    if (copies.length === 0 || !copies.every((d) => d.verified && d.body.data.eventId === submitted.id)) t.fail(`submission of ${id} did not reach the receiver as signed`)
    if (new Set(copies.map((d) => d.webhookId)).size !== 1) t.fail(`submission of ${id} arrived under several webhook-ids`, { ids: copies.map((d) => d.webhookId) })
    if (count(await history(api, 'TR-MOJ', id), 'request.delivered') !== 1) t.fail(`request ${id} is not delivered exactly once`)
  }
  t.pass('every submission reached the receiver, signed, and every repeat carried the same webhook-id')
  const redelivered = inFlight.filter((d) => receiver.deliveries.some((later) => later.at > d.at && later.webhookId === d.webhookId && later.answered && later.status === 204))
  t.equal(redelivered.length, inFlight.length, 'every delivery cut short by the kill was made again, under the same webhook-id')
  t.equal(new Set(receiver.deliveries.map((d) => d.webhookId)).size, N, `${N} distinct webhook-ids for ${N} submissions (${receiver.deliveries.length} attempts in all)`)
})
