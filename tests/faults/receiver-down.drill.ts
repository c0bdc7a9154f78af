// Fault drill 4: the recipients' webhook endpoint is down, then comes back on
// the same port. The gateway runs its workers in-process (RUN_WORKERS=true).
//  - DE-BFJ's retry schedule outlasts the outage: every notification arrives
//    after the endpoint returns, signed, and every request ends up delivered.
//  - FR-BEPI's (short, test-configured) schedule runs out while it is down:
//    request.delivery_failed is recorded once in each request's history, the
//    sender is told by webhook once the endpoint is back, and the given-up
//    deliveries are not attempted again.
import t from 'tap'
import { example } from '../helpers/app.js'
import {
  burst, checkDeliveries, deliveryJobCounts, drillConfig, drillToken, eventsOf, eventually, expectedNotifications,
  newPayloadKey, readStore, scratchDir, startGatewayProcess, startRedis, writeGatewayConfig, type StoreContents
} from '../helpers/processes.js'
import { Receiver } from '../helpers/receiver.js'

const N = Number(process.env.DRILL_REQUESTS ?? 30)
const paths = new Map([['DE-BFJ', '/hooks/de-bfj'], ['FR-BEPI', '/hooks/fr-bepi'], ['TR-MOJ', '/hooks/tr-moj']])
const LONG = [0, 1, 1, 2, 3, 5, 8, 13]
const SHORT = [0, 1, 1]

t.test('receiver down, then up: everything arrives after it returns; past the retry schedule, request.delivery_failed is recorded', async (t) => {
  const began = Date.now()
  const redis = await startRedis(t, { appendfsync: 'always' })
  const dir = await scratchDir(t, 'drill-receiver')
  const receiver = await Receiver.start(t)
  const config = drillConfig()
  for (const authority of config.authorities) {
    const path = paths.get(authority.id)
    if (path !== undefined) authority.webhook = receiver.webhook(path, { retryScheduleSeconds: authority.id === 'FR-BEPI' ? SHORT : LONG, timeoutMs: 3000 })
  }
  const gateway = await startGatewayProcess(t, {
    redisUrl: redis.url, configPath: await writeGatewayConfig(dir, config), payloadKeyBase64: newPayloadKey(), dataDir: dir, runWorkers: true
  })

  const port = receiver.port
  await receiver.down()
  const downAt = Date.now()
  const run = `${process.pid}-${Date.now()}`
  const toDe = Array.from({ length: N }, (_, i) => example('mla-request', `DRILL-RCV-DE-${run}-${i}`))
  const toFr: Array<Record<string, unknown>> = Array.from({ length: N }, (_, i) => ({ ...example('mla-request', `DRILL-RCV-FR-${run}-${i}`), recipient: 'FR-BEPI' }))
  const submissions = await burst({ origin: gateway.origin, token: drillToken('TR-MOJ'), bodies: [...toDe, ...toFr], concurrency: 10 })
  const idOf = new Map(submissions.map((s) => [s.senderReference, s.id]))
  const deIds = toDe.map((b) => idOf.get(String(b.senderReference))).filter((id): id is string => id !== undefined)
  const frIds = toFr.map((b) => idOf.get(String(b.senderReference))).filter((id): id is string => id !== undefined)
  t.equal(deIds.length + frIds.length, 2 * N, `${2 * N} requests submitted while the endpoint is down (${N} to DE-BFJ, ${N} to FR-BEPI)`)

  // FR-BEPI's schedule (attempts at 0, 1, 2 s) runs out while the endpoint is down.
  let store: StoreContents = await readStore(redis.url, ['TR-MOJ'])
  let notFailed: string[] = frIds
  try {
    await eventually('request.delivery_failed on every request to FR-BEPI', async () => {
      store = await readStore(redis.url, ['TR-MOJ'])
      notFailed = frIds.filter((id) => eventsOf(store.audit, id, 'request.delivery_failed').length === 0)
      return notFailed.length === 0 ? true : undefined
    }, 30_000, 250)
  } catch {}
  t.same(notFailed, [], 'past its retry schedule, each delivery to FR-BEPI is given up and request.delivery_failed recorded')
  t.equal(receiver.deliveries.length, 0, 'nothing reached the endpoint while it was down')
  const deliveredEarly = deIds.filter((id) => store.records.get(id)?.status !== 'submitted')
  t.same(deliveredEarly, [], 'no request to DE-BFJ counts as delivered while the endpoint is down')

  await receiver.up()
  const upAt = Date.now()
  t.equal(receiver.port, port, `the endpoint is back on the same port after ${upAt - downAt} ms`)

  // DE-BFJ's schedule outlasts the outage: everything owed arrives now, the given-up FR-BEPI deliveries excepted.
  const owed = (): ReturnType<typeof expectedNotifications> => expectedNotifications(store.audit, paths).filter((n) => !(n.type === 'request.submitted' && n.authority === 'FR-BEPI'))
  let report = checkDeliveries(receiver.deliveries, [])
  let undelivered: string[] = deIds
  try {
    await eventually('every request to DE-BFJ delivered and every notification arrived', async () => {
      store = await readStore(redis.url, ['TR-MOJ'])
      undelivered = deIds.filter((id) => store.records.get(id)?.status !== 'delivered')
      report = checkDeliveries(receiver.deliveries.filter((d) => d.path !== paths.get('FR-BEPI')), owed())
      return undelivered.length === 0 && report.missing.length === 0 ? true : undefined
    }, 45_000, 250)
  } catch {}
  t.same(undelivered, [], `all ${N} requests to DE-BFJ are delivered after the endpoint returned`)
  t.same(report.missing.slice(0, 10), [], `every one of the ${report.expected} notifications owed arrived after the endpoint returned, answered 2xx`, { missing: report.missing.length })
  t.ok(receiver.deliveries.every((d) => d.at >= upAt), 'all of them after it was back')
  t.same(report.idMismatches.slice(0, 10), [], 'one webhook-id per event, repeats included')
  t.equal(receiver.deliveries.filter((d) => !d.verified).length, 0, 'every attempt carried a valid Standard Webhooks signature')
  t.equal(report.unexpected.length, 0, 'nothing arrived that the audit log does not account for')
  const retriedGivenUp = receiver.deliveries.filter((d) => d.path === paths.get('FR-BEPI'))
  t.equal(retriedGivenUp.length, 0, 'the deliveries to FR-BEPI that were given up are not attempted again')

  const failures = frIds.map((id) => eventsOf(store.audit, id, 'request.delivery_failed'))
  t.ok(failures.every((f) => f.length === 1), 'request.delivery_failed is recorded exactly once per request to FR-BEPI')
  t.ok(failures.every((f) => f[0]?.event.data.authority === 'FR-BEPI' && f[0].event.data.attempts === SHORT.length),
    `naming FR-BEPI and the ${SHORT.length} attempts of its schedule`, { sample: failures[0]?.[0]?.event.data })
  t.ok(frIds.every((id) => store.records.get(id)?.status === 'submitted'), 'those requests stay submitted (the recipient can still fetch them)')
  const failureNotices = frIds.filter((id) => receiver.deliveries.some((d) => d.path === paths.get('TR-MOJ') && d.body?.type === 'request.delivery_failed' &&
    d.body?.data?.requestId === id && d.verified && d.answered && d.status < 300))
  t.equal(failureNotices.length, frIds.length, 'the sender (TR-MOJ) is told of each failure by webhook once the endpoint is back')
  t.ok(deIds.every((id) => eventsOf(store.audit, id, 'request.delivered').length === 1 && eventsOf(store.audit, id, 'request.delivery_failed').length === 0),
    'each request to DE-BFJ: request.delivered once, no delivery failure')
  const jobs = await deliveryJobCounts(redis.url)
  t.equal(jobs.failed, frIds.length, `exactly the ${frIds.length} deliveries to FR-BEPI failed for good`, { jobs })
  t.ok(store.chain.ok, 'the audit hash chain verifies')

  t.comment(`drill receiver-down: endpoint down ${upAt - downAt} ms; ${N} requests to DE-BFJ (schedule ${LONG.join(',')} s): delivered ${N - undelivered.length}/${N}; ` +
    `${N} to FR-BEPI (schedule ${SHORT.join(',')} s): delivery_failed recorded ${failures.filter((f) => f.length === 1).length}/${N}, sender told ${failureNotices.length}/${N}, re-attempted ${retriedGivenUp.length}; ` +
    `notifications owed after return ${report.expected}, arrived ${report.expected - report.missing.length}, missing ${report.missing.length}, attempts ${report.attempts} (repeats ${report.repeats}), ` +
    `first arrival ${Math.min(...receiver.deliveries.map((d) => d.at)) - upAt} ms after return; ${((Date.now() - began) / 1000).toFixed(1)} s`)
})
