// Fault drill 2: redis-server is SIGKILLed in the middle of a burst and kept
// down for a while. Meanwhile every client must get a 503 (with Retry-After)
// quickly: never a hang, never another 5xx. Then Redis is started again on
// the same port from its AOF (appendfsync always). Every request answered 201
// before the kill must still be there, nothing is duplicated, and the gateway
// accepts submissions again without being restarted.
import t from 'tap'
import { example } from '../helpers/app.js'
import {
  burst, drillConfig, drillToken, judge, newPayloadKey, readStore, scratchDir, sleep, startGatewayProcess, startRedis, tally, writeGatewayConfig
} from '../helpers/processes.js'

const N = Number(process.env.DRILL_REQUESTS ?? 2000)
const CONCURRENCY = 50
const DOWN_MS = 3000
/** A hang: an attempt unanswered this long fails. */
const ATTEMPT_TIMEOUT_MS = 10_000

t.test('Redis killed during a burst: 503s while it is down, every earlier 201 survives, submissions succeed again', async (t) => {
  const began = Date.now()
  const redis = await startRedis(t, { appendfsync: 'always' })
  const dataDir = await scratchDir(t, 'drill-redis')
  const gateway = await startGatewayProcess(t, { redisUrl: redis.url, configPath: await writeGatewayConfig(dataDir, drillConfig()), payloadKeyBase64: newPayloadKey(), dataDir })

  const run = `${process.pid}-${Date.now()}`
  const bodies = Array.from({ length: N }, (_, i) => example('mla-request', `DRILL-REDIS-${run}-${i}`))
  let killedAt = 0
  let restartedAt = 0
  let restartBeganAt = 0
  let chaos: Promise<void> = Promise.resolve()
  const submissions = await burst({
    origin: gateway.origin,
    token: drillToken('TR-MOJ'),
    bodies,
    concurrency: CONCURRENCY,
    attemptTimeoutMs: ATTEMPT_TIMEOUT_MS,
    giveUpAfterMs: 60_000,
    onAnswered: (_submission, answered) => {
      if (killedAt !== 0 || answered < N / 3) return
      killedAt = Date.now()
      chaos = (async () => {
        await redis.kill()
        await sleep(DOWN_MS)
        restartBeganAt = Date.now()
        await redis.restart()
        restartedAt = Date.now()
      })()
    }
  })
  await chaos
  t.ok(killedAt > 0 && restartedAt > killedAt, `redis-server was SIGKILLed mid-burst and restarted from its AOF ${restartedAt - killedAt} ms later`)

  const attempts = submissions.flatMap((s) => s.attempts)
  // Attempts that began once Redis was dead and ended before a new redis-server was even started
  // (once it is, it may answer before restart() has returned).
  const duringOutage = attempts.filter((a) => a.startedAt >= killedAt && a.endedAt <= restartBeganAt)
  const outageStatuses = new Map<string, number>()
  for (const a of duringOutage) outageStatuses.set(a.error ?? String(a.status), (outageStatuses.get(a.error ?? String(a.status)) ?? 0) + 1)
  t.ok(duringOutage.length > 0, `${duringOutage.length} attempts were made while Redis was down`)
  t.same([...outageStatuses.keys()].filter((k) => k !== '503'), [], 'every one of them was answered 503', { outcomes: Object.fromEntries(outageStatuses) })
  t.equal(duringOutage.filter((a) => a.status === 503 && !/^\d+$/.test(a.retryAfter ?? '')).length, 0, 'each 503 carries Retry-After')
  const slowest = Math.max(0, ...duringOutage.map((a) => a.endedAt - a.startedAt))
  t.ok(slowest < 6000, `the slowest answer during the outage took ${slowest} ms (< 6 s)`)
  const hangs = attempts.filter((a) => a.error === 'UND_ERR_HEADERS_TIMEOUT' || a.error === 'UND_ERR_BODY_TIMEOUT')
  t.equal(hangs.length, 0, `no attempt hung past ${ATTEMPT_TIMEOUT_MS} ms`)
  const counts = tally(submissions)
  t.same(Object.keys(counts.byOutcome).filter((k) => k !== '201' && k !== '503'), [], 'over the whole burst: only 201 and 503, no other status, no connection error', { outcomes: counts.byOutcome })

  const ackedBeforeKill = submissions.filter((s) => s.answeredAt !== undefined && s.answeredAt <= killedAt)
  const ackedAfterRestart = submissions.filter((s) => s.answeredAt !== undefined && s.answeredAt > restartedAt && s.attempts.some((a) => a.status === 201 && a.replayed !== true && a.startedAt > restartedAt))
  t.ok(ackedAfterRestart.length > 0, `after the restart ${ackedAfterRestart.length} new requests were created by the same gateway process`)
  const gaveUp = submissions.filter((s) => s.gaveUp !== undefined)
  t.same(gaveUp.map((s) => `${s.key}: ${String(s.gaveUp)}`).slice(0, 10), [], 'every submission was eventually answered 201')

  const store = await readStore(redis.url, ['TR-MOJ'])
  const verdict = judge(submissions, store)
  const beforeKill = judge(ackedBeforeKill, store)
  t.same(beforeKill.lostFromRecords, [], `all ${ackedBeforeKill.length} requests answered 201 before the kill have their record`)
  t.same(beforeKill.lostFromOutbox, [], '... are in the outbox')
  t.same(beforeKill.lostFromAudit, [], '... and in the audit log')
  t.same(verdict.lostFromRecords, [], 'every request answered 201 at all has its record')
  t.same(verdict.lostFromOutbox, [], '... is in the outbox')
  t.same(verdict.lostFromAudit, [], '... and in the audit log')
  t.same(verdict.inconsistentReplays, [], 'a retried key always got the same id back')
  t.same(verdict.unacknowledgedInStore, [], 'the store holds no request that no client was told about')
  t.same(verdict.duplicateReferences, [], 'one record per senderReference')
  t.same(verdict.duplicateSubmittedEvents, [], 'one request.submitted per request')
  t.same(verdict.duplicateOutboxEntries, [], 'one outbox entry per request')
  t.ok(store.chain.ok, `the audit hash chain verifies (${store.audit.length} entries)`, { chain: store.chain })

  // And a fresh submission, after everything, is accepted.
  const [late] = await burst({ origin: gateway.origin, token: drillToken('TR-MOJ'), bodies: [example('mla-request', `DRILL-REDIS-${run}-late`)], concurrency: 1, giveUpAfterMs: 10_000 })
  t.equal(late.attempts[0]?.status, 201, 'a new submission after the outage is answered 201 at the first attempt')

  const lost = new Set([...verdict.lostFromRecords, ...verdict.lostFromOutbox, ...verdict.lostFromAudit]).size
  const duplicates = verdict.duplicateReferences.length + verdict.duplicateSubmittedEvents.length + verdict.duplicateOutboxEntries.length
  t.comment(`drill redis-killed: submitted ${N} (concurrency ${CONCURRENCY}), redis-server SIGKILLed after ${ackedBeforeKill.length} acknowledgements, down ${restartedAt - killedAt} ms; ` +
    `during the outage ${duringOutage.length} attempts: ${[...outageStatuses].map(([k, v]) => `${k} ${v}`).join(', ')}, slowest ${slowest} ms, hangs ${hangs.length}; ` +
    `acknowledged ${verdict.acknowledged} (before kill ${ackedBeforeKill.length}, created after restart ${ackedAfterRestart.length}), ` +
    `found ${store.records.size} records / ${store.outbox.size} in outbox / ${store.submittedEvents.size} in audit, lost ${lost}, duplicates ${duplicates}, gave up ${gaveUp.length}; ` +
    `attempts ${counts.attempts} (${Object.entries(counts.byOutcome).map(([k, v]) => `${k} ${v}`).join(', ')}, replays ${counts.replayed}); audit chain ${store.chain.ok ? 'ok' : 'BROKEN'}; ${((Date.now() - began) / 1000).toFixed(1)} s`)
})
