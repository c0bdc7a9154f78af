// Fault drill 1: the API process is SIGKILLed (twice) in the middle of a burst
// of submissions and started again on the same port. Clients retry with the
// same Idempotency-Key and body until answered. Afterwards, what clients were
// told must be exactly what the store and the audit log hold: every 201 id
// once, no request twice, the hash chain intact.
import t from 'tap'
import { example } from '../helpers/app.js'
import {
  burst, drillConfig, drillToken, judge, newPayloadKey, readStore, scratchDir, sleep, startGatewayProcess, startRedis, tally, writeGatewayConfig
} from '../helpers/processes.js'

const N = Number(process.env.DRILL_REQUESTS ?? 3000)
const CONCURRENCY = 50
/** Kill when this share of the burst has been answered. */
const KILL_AT = [0.25, 0.6]

t.test('API killed during a burst: every 201 is stored and audited exactly once, nothing is duplicated', async (t) => {
  const began = Date.now()
  const redis = await startRedis(t, { appendfsync: 'always' })
  const dataDir = await scratchDir(t, 'drill-api')
  const gateway = await startGatewayProcess(t, { redisUrl: redis.url, configPath: await writeGatewayConfig(dataDir, drillConfig()), payloadKeyBase64: newPayloadKey(), dataDir })

  const run = `${process.pid}-${Date.now()}`
  const bodies = Array.from({ length: N }, (_, i) => example('mla-request', `DRILL-API-${run}-${i}`))
  const kills: Array<{ at: number, answered: number, pid: number | undefined, downMs: number }> = []
  let chaos: Promise<void> = Promise.resolve()
  const pending = [...KILL_AT]
  const submissions = await burst({
    origin: gateway.origin,
    token: drillToken('TR-MOJ'),
    bodies,
    concurrency: CONCURRENCY,
    attemptTimeoutMs: 10_000,
    giveUpAfterMs: 60_000,
    onAnswered: (_submission, answered) => {
      if (pending.length === 0 || answered < pending[0] * N) return
      pending.shift()
      chaos = chaos.then(async () => {
        const pid = gateway.pid
        const at = Date.now()
        await gateway.kill('SIGKILL')
        await sleep(300)
        await gateway.start()
        kills.push({ at, answered, pid, downMs: Date.now() - at })
      })
    }
  })
  await chaos
  t.equal(kills.length, KILL_AT.length, `the gateway was SIGKILLed ${kills.length} times mid-burst (after ${kills.map((k) => k.answered).join(' and ')} answers; down ${kills.map((k) => k.downMs).join(' / ')} ms)`)

  const counts = tally(submissions)
  const gaveUp = submissions.filter((s) => s.gaveUp !== undefined)
  t.same(gaveUp.map((s) => `${s.key}: ${String(s.gaveUp)}`).slice(0, 10), [], 'every submission was eventually answered 201')
  const serverErrors = Object.entries(counts.byOutcome).filter(([label]) => /^5\d\d$/.test(label) && label !== '503')
  t.same(serverErrors, [], 'no 5xx other than 503 was ever answered')
  const timeouts = submissions.flatMap((s) => s.attempts).filter((a) => a.error === 'UND_ERR_HEADERS_TIMEOUT' || a.error === 'UND_ERR_BODY_TIMEOUT')
  t.equal(timeouts.length, 0, 'no attempt hung past 10 s')

  const store = await readStore(redis.url, ['TR-MOJ'])
  const verdict = judge(submissions, store)
  t.equal(verdict.acknowledged, N, `${N} distinct ids acknowledged`)
  t.same(verdict.inconsistentReplays, [], 'a retried key always got the same id back')
  t.same(verdict.lostFromRecords, [], 'every acknowledged id has its record')
  t.same(verdict.lostFromOutbox, [], 'every acknowledged id is in the sender\'s outbox')
  t.same(verdict.lostFromAudit, [], 'every acknowledged id has its request.submitted in the audit log')
  t.same(verdict.unacknowledgedInStore, [], 'the store holds no request that no client was told about')
  t.same(verdict.duplicateReferences, [], 'one record per senderReference')
  t.same(verdict.duplicateSubmittedEvents, [], 'one request.submitted per request')
  t.same(verdict.duplicateOutboxEntries, [], 'one outbox entry per request')
  const ours = [...store.records.values()].filter((r) => r.senderReference.startsWith(`DRILL-API-${run}-`))
  t.equal(ours.length, new Set(submissions.filter((s) => s.id !== undefined).map((s) => s.key)).size, 'records == distinct keys answered')
  t.equal(store.submittedEvents.size, N, `${N} request.submitted entries in the audit log`)
  t.ok(store.chain.ok, `the audit hash chain verifies (${store.audit.length} entries)`, { chain: store.chain })

  const lost = new Set([...verdict.lostFromRecords, ...verdict.lostFromOutbox, ...verdict.lostFromAudit]).size
  const duplicates = verdict.duplicateReferences.length + verdict.duplicateSubmittedEvents.length + verdict.duplicateOutboxEntries.length
  t.comment(`drill api-killed: submitted ${N} (concurrency ${CONCURRENCY}), gateway SIGKILLed ${kills.length}x, ` +
    `acknowledged ${verdict.acknowledged}, found ${store.records.size} records / ${store.outbox.size} in outbox / ${store.submittedEvents.size} in audit, ` +
    `lost ${lost}, duplicates ${duplicates}, gave up ${gaveUp.length}; attempts ${counts.attempts} ` +
    `(201 created ${counts.created}, 201 replayed ${counts.replayed}, ${Object.entries(counts.byOutcome).filter(([k]) => k !== '201').map(([k, v]) => `${k} ${v}`).join(', ') || 'no failures'}); ` +
    `audit chain ${store.chain.ok ? 'ok' : 'BROKEN'}; ${((Date.now() - began) / 1000).toFixed(1)} s`)
})
