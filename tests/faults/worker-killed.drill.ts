// Fault drill 3: the standalone worker (workers/main.ts) is SIGKILLed while
// webhook deliveries are in flight (the receiver answers in 300–800 ms), then
// started again. The gateway runs without workers (RUN_WORKERS=false). Every
// event still reaches the receiver, signed (Standard Webhooks); a repeat
// carries the same webhook-id; every request ends up delivered, exactly once.
import t from 'tap'
import { example } from '../helpers/app.js'
import {
  burst, checkDeliveries, deliveryJobCounts, drillConfig, dispatchPending, drillToken, eventsOf, eventually, expectedNotifications,
  newPayloadKey, readStore, scratchDir, sleep, startGatewayProcess, startRedis, startWorkerProcess, writeGatewayConfig
} from '../helpers/processes.js'
import { Receiver, type Delivery } from '../helpers/receiver.js'

const N = Number(process.env.DRILL_REQUESTS ?? 150)
/** How many times the worker is killed (DRILL_WORKER_KILLS=2: a delivery in flight at both kills stalls twice). */
const KILLS = Number(process.env.DRILL_WORKER_KILLS ?? 1)
const paths = new Map([['DE-BFJ', '/hooks/de-bfj'], ['TR-MOJ', '/hooks/tr-moj']])

t.test('worker killed mid-deliveries: every event reaches the receiver, repeats keep their webhook-id, every request is delivered', async (t) => {
  const began = Date.now()
  const redis = await startRedis(t, { appendfsync: 'always' })
  const dir = await scratchDir(t, 'drill-worker')
  const receiver = await Receiver.start(t)
  // Slow answers, 300–800 ms, so that deliveries are in flight when the worker dies.
  const jitter = setInterval(() => receiver.delay(300 + Math.floor(Math.random() * 500)), 10)
  t.teardown(() => clearInterval(jitter))

  const config = drillConfig()
  for (const authority of config.authorities) {
    const path = paths.get(authority.id)
    if (path !== undefined) authority.webhook = receiver.webhook(path, { retryScheduleSeconds: [0, 1, 1, 2, 3, 5, 8], timeoutMs: 5000 })
  }
  const env = {
    redisUrl: redis.url,
    configPath: await writeGatewayConfig(dir, config),
    payloadKeyBase64: newPayloadKey(),
    dataDir: dir,
    // What a dead worker held is taken back within seconds instead of 30 s: its jobs
    // (BullMQ lock) and the audit entries its dispatcher had read but not dispatched.
    // 5 s, not less: a busy 2-core machine can block a worker's event loop for ~2 s,
    // and a lock lost while the worker is alive counts as a stall too.
    extra: { WORKER_LOCK_DURATION_MS: '5000', WORKER_STALLED_INTERVAL_MS: '1000', WORKER_CLAIM_IDLE_MS: '3000' }
  }
  const gateway = await startGatewayProcess(t, { ...env, runWorkers: false })
  const worker = await startWorkerProcess(t, env)

  const run = `${process.pid}-${Date.now()}`
  const submissions = await burst({
    origin: gateway.origin,
    token: drillToken('TR-MOJ'),
    bodies: Array.from({ length: N }, (_, i) => example('mla-request', `DRILL-WORKER-${run}-${i}`)),
    concurrency: 10
  })
  const ids = submissions.flatMap((s) => (s.id === undefined ? [] : [s.id]))
  t.equal(ids.length, N, `${N} requests submitted (201)`)

  // SIGKILL the worker while deliveries are in flight, start a new one; KILLS times.
  const kills: Array<{ pid: number | undefined, at: number, inFlight: Delivery[], pending: number, restartMs: number }> = []
  for (let k = 0; k < KILLS; k++) {
    const seen = receiver.deliveries.length
    const since = kills[kills.length - 1]?.at ?? 0
    await receiver.waitFor((ds) => ds.length >= seen + N / 4 && ds.filter((d) => !d.answered && d.at > since).length >= 5, 30_000, 'deliveries in flight')
    const pid = worker.pid
    await worker.kill('SIGKILL')
    const at = Date.now()
    const inFlight = receiver.deliveries.filter((d) => !d.answered && d.at > since && d.at <= at)
    const { count: pending } = await dispatchPending(redis.url)
    await sleep(500)
    await worker.start()
    kills.push({ pid, at, inFlight, pending, restartMs: Date.now() - at })
  }
  const inFlight = kills.flatMap((k) => k.inFlight)
  t.ok(kills.every((k) => k.inFlight.length > 0), `worker SIGKILLed ${KILLS}x with ${kills.map((k) => k.inFlight.length).join(' / ')} deliveries in flight and ` +
    `${kills.map((k) => k.pending).join(' / ')} audit entries read but not yet dispatched; new worker up ${kills.map((k) => k.restartMs).join(' / ')} ms after each kill`)

  const statusesOf = async (): Promise<Map<string, string>> => {
    const store = await readStore(redis.url, ['TR-MOJ'])
    return new Map(ids.map((id) => [id, store.records.get(id)?.status ?? 'missing']))
  }
  let undelivered: string[] = []
  try {
    await eventually('every request delivered', async () => {
      undelivered = [...(await statusesOf())].filter(([, status]) => status !== 'delivered').map(([id]) => id)
      return undelivered.length === 0 ? true : undefined
    }, 60_000, 500)
  } catch {}
  t.same(undelivered, [], 'no request stays undelivered: all are `delivered`', { jobs: await deliveryJobCounts(redis.url) })

  // Every notification owed (submitted → DE-BFJ, delivered → TR-MOJ) arrived.
  let report = checkDeliveries(receiver.deliveries, [])
  let store = await readStore(redis.url, ['TR-MOJ'])
  try {
    await eventually('every notification to arrive', async () => {
      store = await readStore(redis.url, ['TR-MOJ'])
      report = checkDeliveries(receiver.deliveries, expectedNotifications(store.audit, paths))
      return report.missing.length === 0 ? true : undefined
    }, 30_000, 500)
  } catch {}
  t.same(report.missing.slice(0, 10), [], `every one of the ${report.expected} events owed to a webhook reached the receiver, answered 2xx`, { missing: report.missing.length })
  t.same(report.idMismatches.slice(0, 10), [], 'every repeat of an event carried the same webhook-id, and no two events shared one')
  t.equal(report.unverified.length, 0, 'every attempt carried a valid Standard Webhooks signature')
  t.equal(report.unexpected.length, 0, 'nothing arrived that the audit log does not account for')
  const redelivered = kills.flatMap((k) => k.inFlight.filter((d) => receiver.deliveries.some((later) => later.at > k.at && later.webhookId === d.webhookId && later.answered && later.status < 300)))
  t.equal(redelivered.length, inFlight.length, `all ${inFlight.length} deliveries cut short by the kill were made again, under their webhook-id`)

  const notDeliveredOnce = ids.filter((id) => eventsOf(store.audit, id, 'request.delivered').length !== 1)
  t.same(notDeliveredOnce, [], 'request.delivered recorded exactly once per request')
  t.equal(store.audit.filter((e) => e.event.type === 'request.delivery_failed').length, 0, 'no delivery was given up')
  const jobs = await deliveryJobCounts(redis.url)
  t.equal(jobs.failed, 0, 'no delivery job failed for good', { jobs })
  // A live dispatcher holds entries pending for the instant between reading and dispatching them.
  let pending = await dispatchPending(redis.url)
  try {
    await eventually('no pending dispatch entries', async () => (pending = await dispatchPending(redis.url)).count === 0 ? true : undefined, 10_000, 200)
  } catch {}
  t.equal(pending.count, 0, 'no audit entry left pending in the dispatcher group (read by a dead worker, never dispatched)', { pending, workers: [...kills.map((k) => k.pid), worker.pid] })
  t.ok(store.chain.ok, 'the audit hash chain verifies')

  const deliveredCount = ids.length - undelivered.length
  t.comment(`drill worker-killed: ${N} requests, worker SIGKILLed ${KILLS}x with ${kills.map((k) => k.inFlight.length).join('/')} deliveries in flight and ${kills.map((k) => k.pending).join('/')} audit entries undispatched; ` +
    `notifications owed ${report.expected}, arrived ${report.expected - report.missing.length}, missing ${report.missing.length}; ` +
    `attempts ${report.attempts} (repeats ${report.repeats}), webhook-id mismatches ${report.idMismatches.length}, unverified ${report.unverified.length}; ` +
    `redelivered after the kill ${redelivered.length}/${inFlight.length}; delivered ${deliveredCount}/${ids.length}, request.delivered not exactly once ${notDeliveredOnce.length}; ` +
    `jobs ${JSON.stringify(jobs)}; ${((Date.now() - began) / 1000).toFixed(1)} s`)
})
