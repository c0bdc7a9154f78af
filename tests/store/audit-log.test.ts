// AuditLog.verify() on a real Redis: the log the gateway writes verifies, and
// tampering done directly in Redis is detected and names the first bad entry.
//
// A Redis stream only accepts ids above its last one, so an entry cannot be put
// back in place after XDEL. Tampering therefore rebuilds the stream: read every
// entry, DEL the key, XADD them back with their original explicit ids after
// changing, dropping or swapping some (a swap exchanges the field values of two
// entries and keeps the ids where they were, which is what reordering a stream
// amounts to). Rebuilding the untouched entries gives a log that verifies, so
// the procedure itself changes nothing.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { compactAuditBody, expandAuditBody } from '../../src/domain/audit-body.js'
import { bearer, buildApp, demoConfig, example, payloadKey } from '../helpers/app.js'
import { get, keys, redisClient, submit } from '../helpers/fixtures.js'
import { seedHistory } from '../../src/services/seeder.js'
import { AuditLog } from '../../src/store/audit-log.js'
import { PayloadCipher } from '../../src/store/payload-cipher.js'
import { RequestStore } from '../../src/store/request-store.js'

type Entry = [id: string, fields: string[]]

async function readAll (db: Redis): Promise<Entry[]> {
  const out: Entry[] = []
  let start = '-'
  for (;;) {
    const batch = await db.xrange(keys.auditStream, start, '+', 'COUNT', 5000) as Entry[]
    out.push(...batch)
    if (batch.length < 5000) return out
    start = `(${batch[batch.length - 1][0]}`
  }
}

/** Replaces the stream with these entries, under their own ids, in one MULTI. */
async function rebuild (db: Redis, entries: Entry[]): Promise<void> {
  const multi = db.multi()
  multi.del(keys.auditStream)
  for (const [id, fields] of entries) multi.xadd(keys.auditStream, id, ...fields)
  const results = await multi.exec()
  for (const [error] of results ?? []) if (error) throw error
}

const field = (fields: string[], name: string): string => fields[fields.indexOf(name) + 1]
const withField = (fields: string[], name: string, value: string): string[] => fields.map((item, i) => (i > 0 && fields[i - 1] === name && i % 2 === 1 ? value : item))
/** The entry's event text edited as a forger would: read back as canonical JSON, changed, stored again. */
const forgedBody = (fields: string[], edit: (canonical: string) => string): string => compactAuditBody(edit(expandAuditBody(field(fields, 'body'))))

/** Builds a small history through the API: submissions, a fetch (disclosure + delivery), acknowledgement, answers, a withdrawal. */
async function workSomeRequests (t: Test): Promise<{ db: Redis, log: AuditLog, submitAnother: () => Promise<void> }> {
  const { app, token, redis } = await buildApp(t)
  const trMoj = token('TR-MOJ', ['agency'])
  const deBfj = token('DE-BFJ', ['agency'])
  const trPmm = token('TR-PMM', ['agency'])
  const frBepi = token('FR-BEPI', ['agency'])
  let n = 0
  const mla = (): Record<string, any> => {
    const body = example('mla-request', `AUDIT-LOG-${++n}`)
    body.urgency.requestedBy = '2099-12-31'
    return body
  }
  const post = async (who: string, path: string, payload: Record<string, unknown>): Promise<void> => {
    const res = await app.inject({ method: 'POST', url: path, headers: bearer(who), payload })
    t.equal(res.statusCode, 200, `POST ${path.replace(/[0-9a-f-]{36}/, '{id}')}`, { body: res.body.slice(0, 300) })
  }

  const first = (await submit(app, trMoj, mla())).json().id as string
  const second = (await submit(app, trMoj, mla())).json().id as string
  const repatriation = (await submit(app, trPmm, example('repatriation-request', 'AUDIT-LOG-REP'))).json().id as string
  t.equal((await get(app, deBfj, `/v1/requests/${first}`)).statusCode, 200, 'the recipient fetches the first request')
  await post(deBfj, `/v1/requests/${first}/acknowledgement`, { recipientReference: 'BfJ-2026-1' })
  await post(deBfj, `/v1/requests/${first}/responses`, { outcome: 'partially_executed' })
  await post(deBfj, `/v1/requests/${first}/responses`, { outcome: 'executed' })
  await post(trMoj, `/v1/requests/${second}/withdrawal`, { reason: 'proceedings discontinued' })
  await post(frBepi, `/v1/requests/${repatriation}/acknowledgement`, {})
  await post(frBepi, `/v1/requests/${repatriation}/responses`, { outcome: 'refused', grounds: ['non_refoulement'] })

  const db = await redisClient(t, redis.url)
  return {
    db,
    log: new AuditLog(db, keys),
    submitAnother: async () => { t.equal((await submit(app, trMoj, mla())).statusCode, 201) }
  }
}

t.test('the log the gateway writes verifies; every kind of tampering is found', async (t) => {
  const { db, log, submitAnother } = await workSomeRequests(t)
  const original = await readAll(db)
  const count = original.length
  t.equal(count, 11, `11 entries written: 3 submissions, a retrieval with its disclosure, 2 acknowledgements, 3 answers and a withdrawal`)
  const tipHash = await db.hget(keys.auditTip, 'hash')

  t.test('untouched: ok, with the count and the chain head', async (t) => {
    t.same(await log.verify(), { ok: true, checked: count, tipSeq: count, tipHash })
  })

  t.test('rebuilt unchanged: still ok (the tampering procedure itself changes nothing)', async (t) => {
    await rebuild(db, original)
    t.same(await log.verify(), { ok: true, checked: count, tipSeq: count, tipHash })
  })

  t.test('a body changed: altered, naming that entry', async (t) => {
    const k = 5
    const [id, fields] = original[k]
    const body = field(fields, 'body')
    const forged = forgedBody(fields, (canonical) => canonical.replace(/"actor":\{"authority":"[A-Z-]+"/, '"actor":{"authority":"NL-AIRS"'))
    t.not(forged, body, 'the actor was changed')
    await rebuild(db, original.map((entry, i) => (i === k ? [id, withField(fields, 'body', forged)] : entry)))
    t.match(await log.verify(), { ok: false, fault: 'altered', entryId: id, seq: k + 1, checked: k })
    await rebuild(db, original)
  })

  t.test('a hash changed: altered, naming that entry', async (t) => {
    const k = 2
    const [id, fields] = original[k]
    await rebuild(db, original.map((entry, i) => (i === k ? [id, withField(fields, 'hash', 'f'.repeat(64))] : entry)))
    t.match(await log.verify(), { ok: false, fault: 'altered', entryId: id, seq: k + 1 })
    await rebuild(db, original)
  })

  t.test('an entry removed (XDEL): removed, the fault at the next entry', async (t) => {
    const k = 4
    t.equal(await db.xdel(keys.auditStream, original[k][0]), 1)
    t.match(await log.verify(), { ok: false, fault: 'removed', entryId: original[k + 1][0], seq: k + 2, checked: k })
    await rebuild(db, original)
  })

  t.test('two adjacent entries swapped (fields exchanged, ids kept): reordered, naming the first', async (t) => {
    const k = 6
    const swapped = original.map((entry, i): Entry => i === k ? [entry[0], original[k + 1][1]] : i === k + 1 ? [entry[0], original[k][1]] : entry)
    await rebuild(db, swapped)
    t.match(await log.verify(), { ok: false, fault: 'reordered', entryId: original[k][0], seq: k + 2, checked: k })
    await rebuild(db, original)
  })

  t.test('the tail cut off (XDEL of the latest entries): truncated', async (t) => {
    t.equal(await db.xdel(keys.auditStream, original[count - 1][0], original[count - 2][0]), 2)
    t.match(await log.verify(), { ok: false, fault: 'truncated', entryId: null, seq: count - 1, checked: count - 2 })
    await rebuild(db, original)
  })

  t.test('the oldest entries trimmed (XTRIM): removed, at the first entry left', async (t) => {
    await db.xtrim(keys.auditStream, 'MINID', original[3][0])
    t.match(await log.verify(), { ok: false, fault: 'removed', entryId: original[3][0], seq: 4, checked: 0 })
    await rebuild(db, original)
  })

  t.test('restored, the log verifies again and keeps growing', async (t) => {
    t.same(await log.verify(), { ok: true, checked: count, tipSeq: count, tipHash })
    await submitAnother()
    const result = await log.verify()
    t.match(result, { ok: true, checked: count + 1, tipSeq: count + 1 })
  })
})

t.test('verification across read batches (5,000 entries each)', async (t) => {
  const { app, redis } = await buildApp(t)
  t.ok(app)
  const seeding = new Redis(redis.url, { enableAutoPipelining: true })
  t.teardown(() => { seeding.disconnect() })
  await seedHistory({ store: new RequestStore(seeding), cipher: new PayloadCipher(payloadKey), config: demoConfig(), requests: 1300, days: 30, seed: 5 })
  const db = await redisClient(t, redis.url)
  const log = new AuditLog(db, keys)
  const original = await readAll(db)
  const count = original.length
  t.ok(count > 5002, `${count} entries: more than one batch`)

  t.same(await log.verify(), { ok: true, checked: count, tipSeq: count, tipHash: await db.hget(keys.auditTip, 'hash') }, 'intact')

  // Entries 5,000 and 5,001 straddle the first batch boundary: the look-ahead must read the next batch.
  const k = 4999
  await rebuild(db, original.map((entry, i): Entry => i === k ? [entry[0], original[k + 1][1]] : i === k + 1 ? [entry[0], original[k][1]] : entry))
  t.match(await log.verify(), { ok: false, fault: 'reordered', entryId: original[k][0], seq: k + 2, checked: k }, 'a swap across the boundary')

  await rebuild(db, original.filter((_entry, i) => i !== k + 1))
  t.match(await log.verify(), { ok: false, fault: 'removed', entryId: original[k + 2][0], seq: k + 3, checked: k + 1 }, 'a removal at the start of the second batch')

  const late = count - 3
  const lateForged = forgedBody(original[late][1], (canonical) => canonical.replace('"type":"request.', '"type":"request.x'))
  t.not(lateForged, field(original[late][1], 'body'), 'the late entry\'s type was changed')
  await rebuild(db, original.map((entry, i): Entry => (i === late ? [entry[0], withField(entry[1], 'body', lateForged)] : entry)))
  t.match(await log.verify(), { ok: false, fault: 'altered', entryId: original[late][0], seq: late + 1, checked: late }, 'an alteration late in the log')

  await rebuild(db, original)
  t.match(await log.verify(), { ok: true, checked: count })
})
