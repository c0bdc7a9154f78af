// POST /v1/requests, GET /v1/requests/{id}, GET /v1/requests (inbox/outbox) and
// GET /v1/requests/{id}/events, against a real gateway on a real redis-server.
//
// Submission: schema-checked intake, deadlines from the demo agreements, the
// stored content echoed back. Refusals: problem+json naming the offending
// field by JSON pointer, and nothing written. Idempotency, inbox/outbox
// ordering, paging and filters, and a metadata-only history.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { buildApp as buildTestApp, demoConfig, example, type TestApp } from '../../helpers/app.js'
import {
  DAY_MS,
  UUID_V7,
  endOfDay,
  expectProblem,
  get,
  isoDate,
  keys,
  redisClient,
  pointersOf,
  snapshot,
  startOfDay,
  submit,
  type InjectResponse
} from '../../helpers/fixtures.js'
import { getSchema } from '../../../src/schemas/registry.js'
import { decodeStreamEntry } from '../../../src/store/request-store.js'

type Body = Record<string, any>

/** The gateway plus the test's own connection to its Redis (`db`). */
async function buildApp (t: Test, opts: Parameters<typeof buildTestApp>[1] = {}): Promise<TestApp & { db: Redis }> {
  const built = await buildTestApp(t, opts)
  return { ...built, db: await redisClient(t, built.redis.url) }
}

let refCounter = 0
/** A senderReference no other request in this file uses. */
const freshRef = (label: string): string => `T-${label}-${process.pid}-${++refCounter}`

/** The MLA example with its urgency date pushed far out, so that the agreement's clock governs. */
function mlaBody (ref = freshRef('mla')): Body {
  const body = example('mla-request', ref)
  body.urgency.requestedBy = '2099-12-31'
  return body
}

const repatriationBody = (ref = freshRef('rep')): Body => example('repatriation-request', ref)

/** Runs `fn` (which must be refused) and asserts that Redis holds exactly what it held before. */
async function expectNothingWritten (t: Test, db: Redis, fn: () => Promise<void>): Promise<void> {
  const before = await snapshot(db)
  await fn()
  const after = await snapshot(db)
  t.same(after, before, 'the store is unchanged (DBSIZE and audit XLEN)')
}

async function listIds (t: Test, app: FastifyInstance, token: string, query: string): Promise<string[]> {
  const res = await get(app, token, `/v1/requests?${query}`)
  t.equal(res.statusCode, 200, `GET /v1/requests?${query} answers 200`, { body: res.body.slice(0, 300) })
  return (res.json().items as Array<{ id: string }>).map((item) => item.id)
}

const created = (res: InjectResponse): Body => {
  if (res.statusCode !== 201) throw new Error(`expected 201, got ${res.statusCode}: ${res.body.slice(0, 500)}`)
  return res.json()
}

// ---------------------------------------------------------------------------
// The demo agreements the deadline expectations below rest on.

t.test('the demo config has the clocks these tests expect', async (t) => {
  const agreements = demoConfig().agreements
  const mla = agreements.find((a) => a.id === 'coe1959-tr-moj-de-bfj')
  const rep = agreements.find((a) => a.id === 'readmission-tr-pmm-fr-bepi')
  t.match(mla, { parties: ['TR-MOJ', 'DE-BFJ'], requestType: 'mla', legalBasis: 'coe-1959-convention', acknowledgeWithin: 'P10D', respondWithin: 'P90D' })
  t.match(rep, { parties: ['TR-PMM', 'FR-BEPI'], requestType: 'repatriation', legalBasis: 'eu-readmission-agreement', acknowledgeWithin: 'P5D', respondWithin: 'P25D', custodyLeadTime: 'P3D' })
  t.notOk(agreements.some((a) => a.requestType === 'mla' && a.parties.includes('TR-PMM')), 'TR-PMM has no MLA agreement')
  t.notOk(agreements.some((a) => a.requestType === 'repatriation' && a.parties.includes('TR-MOJ')), 'TR-MOJ has no repatriation agreement')
})

// ---------------------------------------------------------------------------
// Submission

t.test('submission', async (t) => {
  const { app, token, db } = await buildApp(t)
  const trMoj = token('TR-MOJ', ['agency'])
  const trPmm = token('TR-PMM', ['agency'])

  t.test('an MLA request (TR-MOJ → DE-BFJ, 1959 Convention) is accepted with its deadlines', async (t) => {
    const body = mlaBody()
    const before = Date.now()
    const res = await submit(app, trMoj, body)
    const after = Date.now()
    t.equal(res.statusCode, 201, 'answers 201', { body: res.body.slice(0, 500) })
    t.match(String(res.headers['content-type']), /^application\/json/)
    const view = res.json()
    t.match(view.id, UUID_V7, 'the id is a UUIDv7')
    const idMillis = parseInt(view.id.replace(/-/g, '').slice(0, 12), 16)
    t.ok(idMillis >= before && idMillis <= after, 'the UUIDv7 timestamp is the submission time')
    t.equal(res.headers.location, `/v1/requests/${view.id}`, 'Location names the new request')
    t.match(view, {
      type: 'mla',
      sender: 'TR-MOJ',
      recipient: 'DE-BFJ',
      senderReference: body.senderReference,
      status: 'submitted',
      priority: 'urgent',
      handlingCode: 'H2',
      legalBasis: 'coe-1959-convention',
      agreementId: 'coe1959-tr-moj-de-bfj',
      overdue: { acknowledgement: false, response: false }
    })
    const submittedAt = Date.parse(view.submittedAt)
    t.ok(submittedAt >= before && submittedAt <= after, 'submittedAt is the time of submission')
    t.equal(view.deadlines.acknowledgement, new Date(submittedAt + 10 * DAY_MS).toISOString(), 'acknowledgement due submittedAt + P10D')
    t.equal(view.deadlines.response, new Date(submittedAt + 90 * DAY_MS).toISOString(), 'response due submittedAt + P90D')
    t.equal(view.deadlines.responseOriginal, view.deadlines.response, 'no extension yet')
    t.same(view.content, body, 'content is the body as submitted')

    const read = await get(app, trMoj, res.headers.location as string)
    t.equal(read.statusCode, 200, 'the Location can be read')
    t.same(read.json(), view, 'and holds what the 201 said')
  })

  t.test('an urgent date earlier than the agreement\'s clock pulls the response deadline in (end of that day, UTC)', async (t) => {
    const body = mlaBody()
    const by = isoDate(Date.now() + 20 * DAY_MS)
    body.urgency.requestedBy = by
    const view = created(await submit(app, trMoj, body))
    const submittedAt = Date.parse(view.submittedAt)
    t.equal(view.deadlines.response, new Date(endOfDay(by)).toISOString(), 'response due at the end of requestedBy')
    t.equal(view.deadlines.acknowledgement, new Date(submittedAt + 10 * DAY_MS).toISOString(), 'acknowledgement unchanged: + P10D')
  })

  t.test('a repatriation request (TR-PMM → FR-BEPI) is accepted: response = min(submittedAt + 25 days, release date − 3 days)', async (t) => {
    const body = repatriationBody()
    const before = Date.now()
    const res = await submit(app, trPmm, body)
    const after = Date.now()
    t.equal(res.statusCode, 201, 'answers 201', { body: res.body.slice(0, 500) })
    const view = res.json()
    t.match(view.id, UUID_V7, 'the id is a UUIDv7')
    t.equal(res.headers.location, `/v1/requests/${view.id}`)
    t.match(view, {
      type: 'repatriation',
      sender: 'TR-PMM',
      recipient: 'FR-BEPI',
      status: 'submitted',
      legalBasis: 'eu-readmission-agreement',
      agreementId: 'readmission-tr-pmm-fr-bepi',
      handlingCode: 'H3'
    })
    const submittedAt = Date.parse(view.submittedAt)
    t.ok(submittedAt >= before && submittedAt <= after)
    const response = Math.min(submittedAt + 25 * DAY_MS, startOfDay(body.custody.releaseDate) - 3 * DAY_MS)
    t.equal(view.deadlines.response, new Date(response).toISOString(), 'response deadline')
    t.equal(view.deadlines.acknowledgement, new Date(Math.min(submittedAt + 5 * DAY_MS, response)).toISOString(), 'acknowledgement due + P5D')
    t.same(view.content, body, 'content is the body as submitted')
  })

  t.test('a person released soon: the release date minus the 3-day lead time is the response deadline', async (t) => {
    const body = repatriationBody()
    body.custody.releaseDate = isoDate(Date.now() + 12 * DAY_MS)
    const view = created(await submit(app, trPmm, body))
    const submittedAt = Date.parse(view.submittedAt)
    const response = startOfDay(body.custody.releaseDate) - 3 * DAY_MS
    t.ok(response < submittedAt + 25 * DAY_MS, 'the custody deadline is the earlier one here')
    t.equal(view.deadlines.response, new Date(response).toISOString(), 'response due at 00:00Z of the release date − P3D')
    t.equal(view.deadlines.acknowledgement, new Date(submittedAt + 5 * DAY_MS).toISOString(), 'acknowledgement due + P5D')
  })
})

// ---------------------------------------------------------------------------
// Refusals: each one a problem+json, none of them writing anything.

const requiredTopLevel = {
  'mla-request': ['type', 'recipient', 'senderReference', 'priority', 'language', 'translation', 'handling', 'issuingAuthority', 'measures', 'persons', 'proceedings', 'facts', 'offences'],
  'repatriation-request': ['type', 'recipient', 'senderReference', 'priority', 'language', 'translation', 'handling', 'person', 'nationalityEvidence', 'custody', 'nonRefoulement', 'travelDocument']
} as const

t.test('the required-field lists here are the schemas\' own', async (t) => {
  const envelope = getSchema('envelope')?.required as string[]
  for (const name of ['mla-request', 'repatriation-request'] as const) {
    const own = getSchema(name)?.required as string[]
    t.same([...new Set([...envelope, ...own])].sort(), [...requiredTopLevel[name]].sort(), name)
  }
})

t.test('invalid bodies are refused with 400 naming the field, and change nothing', async (t) => {
  const { app, token, db } = await buildApp(t)
  const senders = { 'mla-request': token('TR-MOJ', ['agency']), 'repatriation-request': token('TR-PMM', ['agency']) }
  const bodyOf = (name: keyof typeof senders): Body => (name === 'mla-request' ? mlaBody() : repatriationBody())

  async function expectInvalid (t: Test, name: keyof typeof senders, body: Body, pointer: string): Promise<void> {
    await expectNothingWritten(t, db, async () => {
      const problem = expectProblem(t, await submit(app, senders[name], body), 400)
      t.ok(pointersOf(problem).includes(pointer), `errors[] names ${pointer}`, { errors: problem.errors })
      t.ok(problem.errors!.every((e) => typeof e.detail === 'string' && e.detail !== ''), 'each error says what is wrong')
    })
  }

  for (const name of ['mla-request', 'repatriation-request'] as const) {
    for (const field of requiredTopLevel[name]) {
      t.test(`${name} without ${field}`, async (t) => {
        const body = bodyOf(name)
        delete body[field]
        await expectInvalid(t, name, body, `/${field}`)
      })
    }
  }

  t.test('mla-request: a person without a role (nested required field)', async (t) => {
    const body = mlaBody()
    delete body.persons[0].role
    await expectInvalid(t, 'mla-request', body, '/persons/0/role')
  })

  t.test('repatriation-request: a person without sex (nested required field)', async (t) => {
    const body = repatriationBody()
    delete body.person.sex
    await expectInvalid(t, 'repatriation-request', body, '/person/sex')
  })

  t.test('urgent priority without urgency', async (t) => {
    const body = mlaBody()
    delete body.urgency
    await expectInvalid(t, 'mla-request', body, '/urgency')
  })

  t.test('an unknown top-level field', async (t) => {
    const body = mlaBody()
    body.caseOfficerNotes = 'not in the schema'
    await expectInvalid(t, 'mla-request', body, '/caseOfficerNotes')
  })

  t.test('an unknown nested field', async (t) => {
    const body = repatriationBody()
    body.person.shoeSize = 44
    await expectInvalid(t, 'repatriation-request', body, '/person/shoeSize')
  })

  t.test('a date in the wrong format', async (t) => {
    const body = mlaBody()
    body.persons[0].dateOfBirth = '04.06.1981'
    await expectInvalid(t, 'mla-request', body, '/persons/0/dateOfBirth')
  })

  t.test('an impossible date', async (t) => {
    const body = repatriationBody()
    body.custody.releaseDate = '2027-02-30'
    await expectInvalid(t, 'repatriation-request', body, '/custody/releaseDate')
  })

  t.test('facts of 20001 characters (limit 20000)', async (t) => {
    const body = mlaBody()
    body.facts = 'x'.repeat(20001)
    await expectInvalid(t, 'mla-request', body, '/facts')
  })

  t.test('facts of exactly 20000 characters are fine', async (t) => {
    const body = mlaBody()
    body.facts = 'x'.repeat(20000)
    t.equal((await submit(app, senders['mla-request'], body)).statusCode, 201)
  })

  t.test('51 measures (limit 50)', async (t) => {
    const body = mlaBody()
    body.measures = Array.from({ length: 51 }, (_, i) => ({ measure: 'bank_records', description: `account ${i}` }))
    await expectInvalid(t, 'mla-request', body, '/measures')
  })

  t.test('21 aliases (limit 20)', async (t) => {
    const body = repatriationBody()
    body.person.aliases = Array.from({ length: 21 }, (_, i) => `Alias ${i}`)
    await expectInvalid(t, 'repatriation-request', body, '/person/aliases')
  })

  t.test('an unknown type', async (t) => {
    const body = mlaBody()
    body.type = 'extradition'
    await expectNothingWritten(t, db, async () => {
      expectProblem(t, await submit(app, senders['mla-request'], body), 400)
    })
  })

  for (const [label, payload] of [['a JSON array', '[]'], ['JSON null', 'null'], ['a JSON string', '"mla"']] as const) {
    t.test(`${label} as the body`, async (t) => {
      await expectNothingWritten(t, db, async () => {
        const res = await app.inject({ method: 'POST', url: '/v1/requests', headers: { authorization: `Bearer ${senders['mla-request']}`, 'content-type': 'application/json' }, payload })
        expectProblem(t, res, 400)
      })
    })
  }

  t.test('malformed JSON', async (t) => {
    await expectNothingWritten(t, db, async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/requests',
        headers: { authorization: `Bearer ${senders['mla-request']}`, 'content-type': 'application/json' },
        payload: JSON.stringify(mlaBody()).slice(0, 200)
      })
      expectProblem(t, res, 400)
    })
  })

  t.test('an empty JSON body', async (t) => {
    await expectNothingWritten(t, db, async () => {
      const res = await app.inject({ method: 'POST', url: '/v1/requests', headers: { authorization: `Bearer ${senders['mla-request']}`, 'content-type': 'application/json' } })
      expectProblem(t, res, 400)
    })
  })

  t.test('a JSON body with __proto__', async (t) => {
    await expectNothingWritten(t, db, async () => {
      const payload = JSON.stringify(mlaBody()).replace(/^\{/, '{"__proto__":{"polluted":true},')
      const res = await app.inject({ method: 'POST', url: '/v1/requests', headers: { authorization: `Bearer ${senders['mla-request']}`, 'content-type': 'application/json' }, payload })
      expectProblem(t, res, 400)
      t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched')
    })
  })

  for (const contentType of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded']) {
    t.test(`a ${contentType} body is 415`, async (t) => {
      await expectNothingWritten(t, db, async () => {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/requests',
          headers: { authorization: `Bearer ${senders['mla-request']}`, 'content-type': contentType },
          payload: JSON.stringify(mlaBody())
        })
        expectProblem(t, res, 415)
      })
    })
  }
})

t.test('a body over the configured limit is 413 and changes nothing', async (t) => {
  const { app, token, db } = await buildApp(t, { bodyLimitBytes: 4096 })
  const trMoj = token('TR-MOJ', ['agency'])
  const body = mlaBody()
  body.facts = ''
  const base = Buffer.byteLength(JSON.stringify(body))
  body.facts = 'x'.repeat(5000 - base)
  const payload = JSON.stringify(body)
  t.equal(Buffer.byteLength(payload), 5000, 'the body is 5000 bytes')
  await expectNothingWritten(t, db, async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/requests', headers: { authorization: `Bearer ${trMoj}`, 'content-type': 'application/json' }, payload })
    expectProblem(t, res, 413)
  })
  t.equal((await submit(app, trMoj, mlaBody())).statusCode, 201, 'a body within the limit is still accepted')
})

t.test('valid bodies the gateway cannot route are 422 and change nothing', async (t) => {
  const { app, token, db } = await buildApp(t)
  const trMoj = token('TR-MOJ', ['agency'])

  t.test('an unregistered recipient', async (t) => {
    const body = mlaBody()
    body.recipient = 'XX-NOWHERE'
    await expectNothingWritten(t, db, async () => {
      const problem = expectProblem(t, await submit(app, trMoj, body), 422)
      t.same(pointersOf(problem), ['/recipient'])
    })
  })

  t.test('the sender itself as recipient', async (t) => {
    const body = mlaBody()
    body.recipient = 'TR-MOJ'
    await expectNothingWritten(t, db, async () => {
      const problem = expectProblem(t, await submit(app, trMoj, body), 422)
      t.same(pointersOf(problem), ['/recipient'])
    })
  })

  t.test('an MLA request from TR-PMM (it has repatriation agreements only)', async (t) => {
    const body = mlaBody()
    await expectNothingWritten(t, db, async () => {
      const problem = expectProblem(t, await submit(app, token('TR-PMM', ['agency']), body), 422)
      t.match(problem.type, /no-agreement$/)
      t.ok(pointersOf(problem).includes('/recipient') || pointersOf(problem).includes('/legalBasis'), 'names the field', { errors: problem.errors })
    })
  })

  t.test('a repatriation request from TR-MOJ to FR-BEPI (no repatriation agreement)', async (t) => {
    const body = repatriationBody()
    await expectNothingWritten(t, db, async () => {
      const problem = expectProblem(t, await submit(app, trMoj, body), 422)
      t.match(problem.type, /no-agreement$/)
    })
  })

  t.test('a legal basis the pair has no agreement under', async (t) => {
    const body = mlaBody()
    body.legalBasis = 'eio-directive-2014-41'
    await expectNothingWritten(t, db, async () => {
      const problem = expectProblem(t, await submit(app, trMoj, body), 422)
      t.same(pointersOf(problem), ['/legalBasis'])
    })
  })

  t.test('without legalBasis the registered agreement applies', async (t) => {
    const body = mlaBody()
    delete body.legalBasis
    const view = created(await submit(app, trMoj, body))
    t.equal(view.agreementId, 'coe1959-tr-moj-de-bfj')
  })
})

// ---------------------------------------------------------------------------
// Idempotency and sender references

t.test('idempotency', async (t) => {
  const { app, token, db } = await buildApp(t)
  const trMoj = token('TR-MOJ', ['agency'])
  const outboxIds = async (): Promise<string[]> => await listIds(t, app, trMoj, 'box=outbox&limit=100')

  t.test('the same Idempotency-Key with the same body replays the first answer', async (t) => {
    const body = mlaBody()
    const key = `key-${freshRef('idem')}`
    const first = await submit(app, trMoj, body, { 'idempotency-key': key })
    t.equal(first.statusCode, 201)
    t.notOk('idempotent-replayed' in first.headers, 'the first answer is not a replay')
    const id = first.json().id
    const outboxBefore = await outboxIds()
    const stored = await snapshot(db)

    const again = await submit(app, trMoj, body, { 'idempotency-key': key })
    t.equal(again.statusCode, 201, 'answers 201 again')
    t.equal(again.headers['idempotent-replayed'], 'true', 'marked as a replay')
    t.equal(again.headers.location, `/v1/requests/${id}`)
    t.equal(again.json().id, id, 'same id')
    t.same(again.json().content, body, 'with the content')
    t.same(await snapshot(db), stored, 'nothing new stored, no new audit event')
    t.same(await outboxIds(), outboxBefore, 'the outbox is unchanged')
    t.equal((await outboxIds()).filter((x) => x === id).length, 1, 'the request is listed once')

    const reordered = JSON.stringify(Object.fromEntries(Object.entries(body).reverse()))
    const third = await app.inject({ method: 'POST', url: '/v1/requests', headers: { authorization: `Bearer ${trMoj}`, 'content-type': 'application/json', 'idempotency-key': key }, payload: reordered })
    t.equal(third.statusCode, 201, 'the same body with its fields in another order is the same body')
    t.equal(third.json().id, id)
    t.same(await snapshot(db), stored)
  })

  t.test('only one request stored: the outbox of a fresh sender counts 1', async (t) => {
    const { app, token, db } = await buildApp(t)
    const trMoj = token('TR-MOJ', ['agency'])
    const body = mlaBody()
    for (let i = 0; i < 3; i++) {
      t.equal((await submit(app, trMoj, body, { 'idempotency-key': 'only-once' })).statusCode, 201)
    }
    t.equal((await listIds(t, app, trMoj, 'box=outbox')).length, 1, 'one request in the outbox')
    t.equal((await listIds(t, app, token('DE-BFJ', ['agency']), 'box=inbox')).length, 1, 'one request in the recipient\'s inbox')
    t.equal(await db.xlen(keys.auditStream), 1, 'one audit event')
  })

  t.test('the same Idempotency-Key with a different body is 422 and changes nothing', async (t) => {
    const key = `key-${freshRef('idem')}`
    const body = mlaBody()
    t.equal((await submit(app, trMoj, body, { 'idempotency-key': key })).statusCode, 201)
    await expectNothingWritten(t, db, async () => {
      expectProblem(t, await submit(app, trMoj, { ...body, facts: `${body.facts as string} Amended.` }, { 'idempotency-key': key }), 422, 'other facts')
      expectProblem(t, await submit(app, trMoj, mlaBody(), { 'idempotency-key': key }), 422, 'another request altogether')
    })
  })

  t.test('Idempotency-Keys belong to their authority', async (t) => {
    const key = `shared-${freshRef('idem')}`
    const fromMoj = created(await submit(app, trMoj, mlaBody(), { 'idempotency-key': key }))
    const fromPmm = created(await submit(app, token('TR-PMM', ['agency']), repatriationBody(), { 'idempotency-key': key }))
    t.not(fromPmm.id, fromMoj.id, 'another sender\'s key does not collide')
  })

  t.test('a malformed Idempotency-Key is 400', async (t) => {
    await expectNothingWritten(t, db, async () => {
      expectProblem(t, await submit(app, trMoj, mlaBody(), { 'idempotency-key': 'x'.repeat(201) }), 400, 'too long')
      expectProblem(t, await submit(app, trMoj, mlaBody(), { 'idempotency-key': 'has space' }), 400, 'a space')
    })
  })

  t.test('a senderReference already used with another body is 409 naming /senderReference', async (t) => {
    const body = mlaBody()
    const first = created(await submit(app, trMoj, body))
    await expectNothingWritten(t, db, async () => {
      const problem = expectProblem(t, await submit(app, trMoj, { ...body, facts: 'Different facts.' }), 409)
      t.same(pointersOf(problem), ['/senderReference'])
      t.equal(problem.requestId, first.id, 'and points at the request that holds it')
    })
  })

  t.test('a senderReference resent with the same body replays the same request', async (t) => {
    const body = mlaBody()
    const first = created(await submit(app, trMoj, body))
    const stored = await snapshot(db)
    const again = await submit(app, trMoj, body)
    t.equal(again.statusCode, 201)
    t.equal(again.json().id, first.id, 'same id')
    t.equal(again.headers['idempotent-replayed'], 'true')
    t.same(await snapshot(db), stored, 'nothing new stored')
  })

  t.test('senderReferences are unique per sender, not globally', async (t) => {
    const ref = freshRef('shared')
    const a = created(await submit(app, trMoj, mlaBody(ref)))
    const b = created(await submit(app, token('TR-PMM', ['agency']), repatriationBody(ref)))
    t.not(a.id, b.id)
  })
})

// ---------------------------------------------------------------------------
// Inbox and outbox

t.test('inbox and outbox', async (t) => {
  const { app, token, db } = await buildApp(t)
  const trMoj = token('TR-MOJ', ['agency'])
  const mla = created(await submit(app, trMoj, mlaBody()))
  const rep = created(await submit(app, token('TR-PMM', ['agency']), repatriationBody()))

  t.same(await listIds(t, app, token('DE-BFJ', ['liaison']), 'box=inbox'), [mla.id], 'the recipient\'s inbox lists it')
  t.same(await listIds(t, app, token('DE-BFJ', ['agency']), ''), [mla.id], 'inbox is the default box')
  t.same(await listIds(t, app, trMoj, 'box=outbox'), [mla.id], 'the sender\'s outbox lists it')
  t.same(await listIds(t, app, token('TR-MOJ', ['liaison']), 'box=inbox'), [], 'the sender\'s inbox does not')
  t.same(await listIds(t, app, token('DE-BFJ', ['agency']), 'box=outbox'), [], 'the recipient\'s outbox does not')
  t.same(await listIds(t, app, token('FR-BEPI', ['agency']), 'box=inbox'), [rep.id], 'an unrelated authority\'s inbox has only its own')
  t.same(await listIds(t, app, token('NL-AIRS', ['liaison']), 'box=inbox'), [], 'and another one\'s is empty')

  const res = await get(app, token('DE-BFJ', ['agency']), '/v1/requests?box=inbox')
  const [item] = res.json().items
  t.match(item, { id: mla.id, type: 'mla', sender: 'TR-MOJ', recipient: 'DE-BFJ', status: 'submitted', deadlines: mla.deadlines })
  t.notOk('content' in item, 'list items carry no content')
  t.notOk('nextCursor' in res.json(), 'no cursor when everything fits')
})

t.test('nearest deadline first', async (t) => {
  const { app, token, db } = await buildApp(t)
  const trMoj = token('TR-MOJ', ['agency'])
  const now = Date.now()
  const withUrgency = (days: number | undefined): Body => {
    const body = mlaBody()
    if (days === undefined) {
      body.priority = 'normal'
      delete body.urgency
    } else {
      body.urgency.requestedBy = isoDate(now + days * DAY_MS)
    }
    return body
  }
  // Submitted in a shuffled order: normal (ack due in 10 days), urgent in 5, 2 and 8 days.
  const normal = created(await submit(app, trMoj, withUrgency(undefined)))
  const in5 = created(await submit(app, trMoj, withUrgency(5)))
  const in2 = created(await submit(app, trMoj, withUrgency(2)))
  const in8 = created(await submit(app, trMoj, withUrgency(8)))
  const expected = [in2.id, in5.id, in8.id, normal.id]
  t.same(await listIds(t, app, token('DE-BFJ', ['liaison']), 'box=inbox'), expected, 'inbox: urgent in 2, 5, 8 days, then the normal one')
  t.same(await listIds(t, app, trMoj, 'box=outbox'), expected, 'outbox: same order')
  t.ok(Date.parse(in2.deadlines.response) < Date.parse(in5.deadlines.response), 'the deadlines do differ')
})

t.test('cursor paging returns every request exactly once', async (t) => {
  const { app, token, db } = await buildApp(t)
  const trMoj = token('TR-MOJ', ['agency'])
  const submitted: string[] = []
  for (let i = 0; i < 5; i++) submitted.push(created(await submit(app, trMoj, mlaBody())).id)
  const recipient = token('DE-BFJ', ['liaison'])
  const allAtOnce = await listIds(t, app, recipient, 'box=inbox&limit=100')

  const paged: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const res = await get(app, recipient, `/v1/requests?box=inbox&limit=2${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)
    t.equal(res.statusCode, 200)
    const page = res.json()
    t.ok(page.items.length <= 2, `page ${pages + 1} has at most 2 items`)
    paged.push(...page.items.map((item: { id: string }) => item.id))
    cursor = page.nextCursor
    pages++
  } while (cursor !== undefined && pages < 10)
  t.equal(cursor, undefined, 'the last page has no cursor')
  t.equal(paged.length, 5, 'five items in all')
  t.same([...new Set(paged)].sort(), [...submitted].sort(), 'each request exactly once')
  t.same(paged, allAtOnce, 'in the same order as one big page')
  t.ok(pages >= 3, 'over at least three pages')
})

t.test('filters', async (t) => {
  const { app, token, db } = await buildApp(t)
  const now = Date.now()
  // DE-BFJ's inbox: two 1959-Convention MLA requests from TR-MOJ (ack in 10 days),
  // an EIO from FR-BEPI (ack in 7 days), a repatriation from TR-PMM (ack in 5 days).
  const mla1 = created(await submit(app, token('TR-MOJ', ['agency']), mlaBody()))
  const mla2 = created(await submit(app, token('TR-MOJ', ['agency']), mlaBody()))
  const eioBody = mlaBody()
  eioBody.legalBasis = 'eio-directive-2014-41'
  const eio = created(await submit(app, token('FR-BEPI', ['agency']), eioBody))
  const repBody = repatriationBody()
  repBody.recipient = 'DE-BFJ'
  const rep = created(await submit(app, token('TR-PMM', ['agency']), repBody))
  t.equal(eio.agreementId, 'eio-de-bfj-fr-bepi')
  t.equal(rep.agreementId, 'readmission-tr-pmm-de-bfj')

  const deBfj = token('DE-BFJ', ['liaison'])
  t.same(await listIds(t, app, deBfj, 'box=inbox'), [rep.id, eio.id, mla1.id, mla2.id], 'all four, nearest deadline first')
  t.same(await listIds(t, app, deBfj, 'box=inbox&type=repatriation'), [rep.id], 'type=repatriation')
  t.same(await listIds(t, app, deBfj, 'box=inbox&type=mla'), [eio.id, mla1.id, mla2.id], 'type=mla')
  t.same(await listIds(t, app, deBfj, 'box=inbox&counterpart=TR-MOJ'), [mla1.id, mla2.id], 'counterpart=TR-MOJ')
  t.same(await listIds(t, app, deBfj, 'box=inbox&counterpart=FR-BEPI'), [eio.id], 'counterpart=FR-BEPI')
  t.same(await listIds(t, app, deBfj, 'box=inbox&counterpart=NL-AIRS'), [], 'counterpart=NL-AIRS')
  t.same(await listIds(t, app, deBfj, 'box=inbox&type=mla&counterpart=TR-PMM'), [], 'filters combine')
  t.same(await listIds(t, app, token('TR-MOJ', ['liaison']), 'box=outbox&counterpart=DE-BFJ'), [mla1.id, mla2.id], 'counterpart on the outbox is the recipient')
  t.same(await listIds(t, app, token('TR-MOJ', ['liaison']), 'box=outbox&counterpart=FR-BEPI'), [], 'and only the recipient')

  const dueBefore = new Date(now + 8 * DAY_MS).toISOString()
  t.same(await listIds(t, app, deBfj, `box=inbox&dueBefore=${encodeURIComponent(dueBefore)}`), [rep.id, eio.id], 'dueBefore=now+8d: the 5- and 7-day ones')
  const past = new Date(now - DAY_MS).toISOString()
  t.same(await listIds(t, app, deBfj, `box=inbox&dueBefore=${encodeURIComponent(past)}`), [], 'dueBefore in the past: nothing')

  t.equal((await get(app, token('DE-BFJ', ['agency']), `/v1/requests/${eio.id}`)).statusCode, 200, 'the recipient fetches one')
  t.same(await listIds(t, app, deBfj, 'box=inbox&status=delivered'), [eio.id], 'status=delivered')
  t.same(await listIds(t, app, deBfj, 'box=inbox&status=submitted'), [rep.id, mla1.id, mla2.id], 'status=submitted')
  t.same(await listIds(t, app, deBfj, 'box=inbox&status=executed'), [], 'status=executed (closed): none yet')
  t.same(await listIds(t, app, deBfj, 'box=inbox&status=submitted&type=mla&limit=1'), [mla1.id], 'filters with a limit')
})

t.test('bad list parameters are 400', async (t) => {
  const { app, token, db } = await buildApp(t)
  const liaison = token('DE-BFJ', ['liaison'])
  const garbageCursors = [
    'garbage',
    Buffer.from('{"score":1}').toString('base64url'),
    Buffer.from('["1; DROP","x"]').toString('base64url'),
    'x'.repeat(201)
  ]
  const queries = [
    'limit=0', 'limit=101', 'limit=-1', 'limit=2.5', 'limit=ten',
    'box=sideways', 'type=extradition', 'status=lost', 'counterpart=nobody',
    'dueBefore=tomorrow', 'dueBefore=2027-01-01', 'overdue=maybe', 'sort=asc',
    ...garbageCursors.map((cursor) => `cursor=${encodeURIComponent(cursor)}`)
  ]
  for (const query of queries) {
    expectProblem(t, await get(app, liaison, `/v1/requests?${query}`), 400, query)
  }
  t.equal((await get(app, liaison, '/v1/requests?limit=1')).statusCode, 200, 'limit=1 is fine')
  t.equal((await get(app, liaison, '/v1/requests?limit=100')).statusCode, 200, 'limit=100 is fine')
})

// ---------------------------------------------------------------------------
// Reading, delivery and history

t.test('reading: the recipient\'s first fetch delivers the request; the history has no personal data', async (t) => {
  const { app, token, db } = await buildApp(t)
  const sender = token('TR-MOJ', ['agency'])
  const recipient = token('DE-BFJ', ['agency'])
  const body = mlaBody()
  const view = created(await submit(app, sender, body))
  const url = `/v1/requests/${view.id}`
  const eventTypes = async (): Promise<string[]> => {
    const res = await get(app, sender, `${url}/events`)
    t.equal(res.statusCode, 200)
    return res.json().items.map((event: { type: string }) => event.type)
  }

  t.same(await eventTypes(), ['request.submitted'], 'at first the history holds the submission')

  const bySender = await get(app, sender, url)
  t.equal(bySender.statusCode, 200)
  t.equal(bySender.json().status, 'submitted', 'the sender\'s fetch does not deliver')
  t.same(bySender.json().content, body, 'the sender sees the content')
  t.same(await eventTypes(), ['request.submitted'], 'nor does it add to the history')

  const first = await get(app, recipient, url)
  t.equal(first.statusCode, 200)
  t.equal(first.json().status, 'delivered', 'the recipient\'s first fetch delivers')
  t.type(first.json().deliveredAt, 'string', 'with deliveredAt')
  t.same(first.json().content, body, 'the recipient sees the content')
  const deliveredAt = Date.parse(first.json().deliveredAt)
  t.ok(deliveredAt >= Date.parse(view.submittedAt), 'delivered after submission')

  const second = await get(app, token('DE-BFJ', ['liaison']), url)
  t.equal(second.json().status, 'delivered', 'a second fetch changes nothing')
  t.equal(second.json().deliveredAt, first.json().deliveredAt)
  t.same(second.json().deadlines, view.deadlines, 'delivery leaves the deadlines alone')

  t.same(await eventTypes(), ['request.submitted', 'request.retrieved'], 'the history records the retrieval once')
  const events = (await get(app, recipient, `${url}/events`)).json().items
  t.match(events[0], { type: 'request.submitted', requestId: view.id, requestType: 'mla', sender: 'TR-MOJ', recipient: 'DE-BFJ', actor: { authority: 'TR-MOJ' } })
  t.match(events[1], { type: 'request.retrieved', requestId: view.id, actor: { authority: 'DE-BFJ' } })
  t.ok(Date.parse(events[0].at) <= Date.parse(events[1].at), 'in order')

  // Personal data: names, document and account numbers, free text.
  const personal = ['Karaosmanlı', 'Burak', 'Brandt', 'Sabine', 'U00000000', 'DE00 5001', 'Mainufer', 'Elif', 'nitelikli', body.facts.slice(0, 40)]
  const historyJson = JSON.stringify(events)
  for (const text of personal) t.notOk(historyJson.includes(text), `the history does not contain ${JSON.stringify(text)}`)

  // The whole audit stream (disclosure records included) holds metadata only.
  const entries = await db.xrange(keys.auditStream, '-', '+') as Array<[string, string[]]>
  const decoded = entries.map(([id, fields]) => decodeStreamEntry(id, fields))
  // As stored and as read back.
  const stream = JSON.stringify(entries) + JSON.stringify(decoded)
  for (const text of personal) t.notOk(stream.includes(text), `the audit stream does not contain ${JSON.stringify(text)}`)
  t.equal(decoded.filter((event) => event.type === 'request.disclosed').length, 3, 'each of the three fetches with content is logged as a disclosure')
})

t.test('a repatriation request\'s history has no personal data either', async (t) => {
  const { app, token, db } = await buildApp(t)
  const body = repatriationBody()
  const view = created(await submit(app, token('TR-PMM', ['agency']), body))
  t.equal((await get(app, token('FR-BEPI', ['agency']), `/v1/requests/${view.id}`)).json().status, 'delivered')
  const res = await get(app, token('FR-BEPI', ['auditor']), `/v1/requests/${view.id}/events`)
  t.equal(res.statusCode, 200)
  t.same(res.json().items.map((e: { type: string }) => e.type), ['request.submitted', 'request.retrieved'])
  const entries = await db.xrange(keys.auditStream, '-', '+') as Array<[string, string[]]>
  const json = JSON.stringify(res.json()) + JSON.stringify(entries) + JSON.stringify(entries.map(([id, fields]) => decodeStreamEntry(id, fields)))
  for (const text of ['Moreau', 'Julien', 'Morel', 'Nadia', '00XX00000', 'Villeurbanne', 'diabetes', 'Insulin', 'Léa']) {
    t.notOk(json.includes(text), `does not contain ${JSON.stringify(text)}`)
  }
})

t.test('the payload is not stored in clear', async (t) => {
  const { app, token, db } = await buildApp(t)
  const view = created(await submit(app, token('TR-MOJ', ['agency']), mlaBody()))
  const hash = await db.hgetall(keys.request(view.id))
  const raw = JSON.stringify(hash)
  for (const text of ['Karaosmanlı', 'U00000000', 'Brandt']) t.notOk(raw.includes(text), `the stored record does not contain ${text}`)
})

t.test('an auditor\'s fetch neither delivers nor discloses', async (t) => {
  const { app, token, db } = await buildApp(t)
  const view = created(await submit(app, token('TR-MOJ', ['agency']), mlaBody()))
  const stored = await snapshot(db)
  const res = await get(app, token('DE-BFJ', ['auditor']), `/v1/requests/${view.id}`)
  t.equal(res.statusCode, 200)
  t.equal(res.json().status, 'submitted', 'the recipient\'s auditor does not deliver it')
  t.notOk('content' in res.json(), 'and sees no content')
  t.same(await snapshot(db), stored, 'nothing is logged: no personal data was disclosed')
})

t.test('an id in upper case names the same request (UUIDs are case-insensitive)', async (t) => {
  const { app, token } = await buildApp(t)
  const sender = token('TR-MOJ', ['agency'])
  const view = created(await submit(app, sender, mlaBody()))
  const upper = await get(app, sender, `/v1/requests/${(view.id as string).toUpperCase()}`)
  t.equal(upper.statusCode, 200)
  t.equal(upper.json().id, view.id, 'the canonical (lower-case) id')
  t.equal((await get(app, sender, `/v1/requests/${(view.id as string).toUpperCase()}/events`)).statusCode, 200, 'events too')
})

t.test('concurrency: one commit per state change', async (t) => {
  const { app, token, db } = await buildApp(t)
  const sender = token('TR-MOJ', ['agency'])

  t.test('ten simultaneous POSTs with one Idempotency-Key store one request', async (t) => {
    const body = mlaBody()
    const answers = await Promise.all(Array.from({ length: 10 }, async () => await submit(app, sender, body, { 'idempotency-key': 'burst' })))
    t.same(answers.map((res) => res.statusCode), Array(10).fill(201), 'all answered 201')
    t.equal(new Set(answers.map((res) => res.json().id)).size, 1, 'all with the same id')
    t.equal(answers.filter((res) => res.headers['idempotent-replayed'] === 'true').length, 9, 'nine of them replays')
  })

  t.test('ten simultaneous POSTs of different bodies under one senderReference: one 201, nine 409', async (t) => {
    const ref = freshRef('race')
    const before = await snapshot(db)
    const answers = await Promise.all(Array.from({ length: 10 }, async (_, i) => await submit(app, sender, { ...mlaBody(ref), facts: `Version ${i} of the facts.` })))
    t.same(answers.map((res) => res.statusCode).sort(), [201, ...Array(9).fill(409)], 'one accepted, nine conflicts')
    t.equal((await snapshot(db)).auditEntries, before.auditEntries + 1, 'one audit event')
  })

  t.test('ten simultaneous first fetches by the recipient deliver it once', async (t) => {
    const view = created(await submit(app, sender, mlaBody()))
    const recipient = token('DE-BFJ', ['agency'])
    const answers = await Promise.all(Array.from({ length: 10 }, async () => await get(app, recipient, `/v1/requests/${view.id as string}`)))
    t.same(answers.map((res) => res.statusCode), Array(10).fill(200))
    const history = (await get(app, sender, `/v1/requests/${view.id as string}/events`)).json().items.map((e: { type: string }) => e.type)
    t.same(history, ['request.submitted', 'request.retrieved'], 'one request.retrieved event')
    t.equal((await get(app, sender, `/v1/requests/${view.id as string}`)).json().status, 'delivered')

    t.same(answers.map((res) => res.json().status), Array(10).fill('delivered'), 'every one of those answers shows it delivered')
  })
})

t.test('an id that is not a UUID is 400', async (t) => {
  const { app, token, db } = await buildApp(t)
  expectProblem(t, await get(app, token('TR-MOJ', ['agency']), '/v1/requests/not-a-uuid'), 400)
  expectProblem(t, await get(app, token('TR-MOJ', ['agency']), '/v1/requests/not-a-uuid/events'), 400)
})

