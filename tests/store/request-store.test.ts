// How a request is kept: a record hash of short fields (a listpack), its sealed
// payload in a key of its own written in the same Lua step, claims (sender
// reference, idempotency key) holding the request's id. Records and claims
// written by earlier versions (payload inside the hash, hex body hash, claims
// of 'hash|id', descriptive fields as an object) are still read.
import t from 'tap'
import { createHash } from 'node:crypto'
import { bearer, buildApp, demoConfig, example, payloadKey } from '../helpers/app.js'
import { keys, redisClient, submit } from '../helpers/fixtures.js'
import { canonicalJson } from '../../src/domain/canonical-json.js'
import { RequestService } from '../../src/services/request-service.js'
import { AuditLog } from '../../src/store/audit-log.js'
import { PayloadCipher } from '../../src/store/payload-cipher.js'
import { RequestStore } from '../../src/store/request-store.js'

const cipher = new PayloadCipher(payloadKey)

t.test('a submission writes the record and its payload key together; a replay or a conflict writes neither', async (t) => {
  const { app, redis, token } = await buildApp(t)
  const db = await redisClient(t, redis.url)
  const body = example('mla-request', 'STORE-1')
  const created = await submit(app, token('TR-MOJ'), body, { 'idempotency-key': 'store-1' })
  t.equal(created.statusCode, 201)
  const id = created.json().id as string
  t.equal(await db.call('OBJECT', 'ENCODING', keys.request(id)), 'listpack', 'the record is a compact listpack')
  t.equal(await db.hexists(keys.request(id), 'content'), 0, 'no payload inside the record')
  t.same(JSON.parse(await db.hget(keys.request(id), 'meta') ?? 'null'), ['STORE-1', body.priority, body.handling.code, body.legalBasis, 'coe1959-tr-moj-de-bfj', body.language],
    'the descriptive fields are one array, without their names')
  const sealed = await db.getBuffer(keys.payload(id))
  t.ok(sealed !== null && sealed.subarray(0, 3).toString() === 'v2:', 'the payload key holds the binary sealed form')
  t.same(JSON.parse(cipher.open(id, sealed as Buffer)), body, 'which opens to the body as submitted')
  t.notOk(sealed?.includes(Buffer.from('STORE-1')), 'encrypted at rest')
  t.equal(await db.hget(keys.senderReferences('TR-MOJ'), 'STORE-1'), id, 'the sender-reference claim holds the id')
  t.equal(await db.get(keys.idempotency('TR-MOJ', 'store-1')), id, 'the idempotency key holds the id')

  const payloadKeys = async (): Promise<string[]> => (await db.keys(`${keys.prefix}pl:*`)).sort()
  const before = await payloadKeys()
  t.equal((await submit(app, token('TR-MOJ'), body, { 'idempotency-key': 'store-1' })).statusCode, 201, 'replay by key')
  t.equal((await submit(app, token('TR-MOJ'), body)).statusCode, 201, 'replay by sender reference')
  t.equal((await submit(app, token('TR-MOJ'), { ...body, language: 'de' })).statusCode, 409, 'sender reference taken')
  t.equal((await submit(app, token('TR-MOJ'), { ...body, senderReference: 'STORE-2' }, { 'idempotency-key': 'store-1' })).statusCode, 422, 'idempotency key reused')
  t.same(await payloadKeys(), before, 'no payload key without its record')
  t.equal((await db.keys(`${keys.prefix}req:*`)).length, before.length, 'one record per payload key')

  const store = new RequestStore(db)
  const got = await store.get(id)
  t.same(got?.sealedContent, sealed, 'the store reads the payload with the record')
  const bare = await store.get(id, { payload: false })
  t.equal(bare?.sealedContent, undefined, 'or, asked not to, leaves it in Redis')
  t.same({ ...bare, sealedContent: got?.sealedContent }, got, 'with the same record otherwise')
  t.throws(() => new RequestService(store, cipher, demoConfig(), 60).openContent(bare!), /without its payload/, 'and such a record cannot be opened by mistake')
  const fetched = await app.inject({ method: 'GET', url: `/v1/requests/${id}`, headers: bearer(token('DE-BFJ')) })
  t.same(fetched.json().content, body, 'and the API shows it to the recipient')
})

t.test('records and claims written by earlier versions', async (t) => {
  const { app, redis, token } = await buildApp(t)
  const db = await redisClient(t, redis.url)
  const body = example('mla-request', 'LEGACY-1')
  const created = await submit(app, token('TR-MOJ'), body, { 'idempotency-key': 'legacy-1' })
  const id = created.json().id as string
  // Rewrite it as an earlier version stored it.
  const hex = createHash('sha256').update(canonicalJson(body)).digest('hex')
  const sealed = await db.getBuffer(keys.payload(id))
  const record = await new RequestStore(db).get(id, { payload: false })
  const { senderReference, priority, handlingCode, legalBasis, agreementId, language } = record!
  await db.hset(keys.request(id), 'content', cipher.seal(id, cipher.open(id, sealed as Buffer)), 'bodyHash', hex,
    'meta', JSON.stringify({ senderReference, priority, handlingCode, legalBasis, agreementId, language }))
  await db.del(keys.payload(id))
  t.same(await new RequestStore(db).get(id, { payload: false }), record, 'descriptive fields kept as an object read as before')
  await db.hset(keys.senderReferences('TR-MOJ'), 'LEGACY-1', `${hex}|${id}`)
  await db.set(keys.idempotency('TR-MOJ', 'legacy-1'), `${hex}|${id}`)

  const fetched = await app.inject({ method: 'GET', url: `/v1/requests/${id}`, headers: bearer(token('DE-BFJ')) })
  t.same(fetched.json().content, body, 'a payload inside the record opens')
  const byKey = await submit(app, token('TR-MOJ'), body, { 'idempotency-key': 'legacy-1' })
  t.equal(byKey.headers['idempotent-replayed'], 'true', 'an old idempotency claim replays')
  t.equal(byKey.json().id, id)
  const byReference = await submit(app, token('TR-MOJ'), body)
  t.equal(byReference.headers['idempotent-replayed'], 'true', 'an old sender-reference claim replays')
  t.equal((await submit(app, token('TR-MOJ'), { ...body, language: 'de' })).statusCode, 409, 'and still refuses another body')
  await db.hset(keys.senderReferences('TR-MOJ'), 'LEGACY-1', id)
  t.equal((await submit(app, token('TR-MOJ'), body)).headers['idempotent-replayed'], 'true', 'a new claim on a record with a hex body hash replays')
  t.equal((await submit(app, token('TR-MOJ'), { ...body, language: 'de' })).statusCode, 409, 'and refuses another body')
})

t.test('the audit chain stays intact when links are computed by the gateway: two connections, replays and transitions interleaved', async (t) => {
  const { app, redis, token } = await buildApp(t)
  const connections = [await redisClient(t, redis.url), await redisClient(t, redis.url)]
  const services = connections.map((db) => new RequestService(new RequestStore(db), cipher, demoConfig(), 86400))
  const clerk = { authority: 'TR-MOJ', roles: ['agency' as const], subject: 'clerk@tr-moj' }
  const body = (i: number): Record<string, any> => {
    const b = example('mla-request', `CHAIN-${i}`)
    b.urgency.requestedBy = '2099-12-31'
    return b
  }
  const created: string[] = []
  const work: Array<Promise<unknown>> = []
  for (let i = 0; i < 400; i++) {
    // One in five is a replay of an earlier submission.
    const n = i % 5 === 4 ? i - 3 : i
    work.push(services[i % 2].submit(clerk, body(n) as never).then((result) => { if (result.kind === 'created') created.push(result.request.id) }))
    if (i % 40 === 39) {
      work.push(Promise.all(work.slice(-10)).then(async () => {
        const id = created[created.length - 1]
        if (id !== undefined) await app.inject({ method: 'POST', url: `/v1/requests/${id}/acknowledgement`, headers: bearer(token('DE-BFJ')), payload: {} })
      }))
    }
  }
  await Promise.all(work)
  t.equal(created.length, 320, 'every new submission created once')
  const verification = await new AuditLog(connections[0], keys).verify()
  t.match(verification, { ok: true }, 'the chain verifies')
  t.ok(verification.ok && verification.checked >= 320, `${verification.ok ? verification.checked : 0} entries checked`)
})

t.test('the audit chain stays intact when commits carry gateway-computed links: single- and multi-event commits on two connections at once', async (t) => {
  const { redis } = await buildApp(t)
  const connections = [await redisClient(t, redis.url), await redisClient(t, redis.url)]
  const services = connections.map((db) => new RequestService(new RequestStore(db), cipher, demoConfig(), 86400))
  const sender = { authority: 'TR-MOJ', roles: ['agency' as const], subject: 'clerk@tr-moj' }
  const recipient = { authority: 'DE-BFJ', roles: ['agency' as const], subject: 'clerk@de-bfj' }
  const ids: string[] = []
  for (let i = 0; i < 60; i++) {
    const b = example('mla-request', `COMMIT-CHAIN-${i}`)
    b.urgency.requestedBy = '2099-12-31'
    const result = await services[i % 2].submit(sender, b as never)
    ids.push(result.request.id)
  }
  // Per request, from either connection at once: a recipient's fetch (a retrieval and a disclosure:
  // two events), an acknowledgement (one), a reminder-like fact (one), a sender's fetch (one).
  await Promise.all(ids.flatMap((id, i) => {
    const [a, b] = i % 2 === 0 ? services : [...services].reverse()
    return [
      a.store.get(id).then(async (loaded) => await a.disclose(recipient, loaded!)),
      b.acknowledge(recipient, id, {}).catch(() => undefined),
      a.record(id, (request) => request.ackRemindedFor === undefined ? { event: 'request.acknowledgement_reminder', fields: { ackRemindedFor: request.ackDue ?? 0 } } : undefined),
      b.store.get(id).then(async (loaded) => await b.disclose(sender, loaded!))
    ]
  }))
  const verification = await new AuditLog(connections[0], keys).verify()
  t.match(verification, { ok: true }, 'the chain verifies')
  t.ok(verification.ok && verification.checked >= 60 * 5, `${verification.ok ? verification.checked : 0} entries checked`)
})
