// The lifecycle steps of the API, POST /v1/requests/{id}/<step>, against a real
// gateway on a real Redis (no workers: the recipients here are pull-only).
//
// Legal steps change the status, the timestamps and the deadlines as the design
// says, and each lands in the request's history. Every illegal step is a 409
// problem naming the current status; a party that is not a party gets 404, a
// role that does not act gets 403, a bad body 400 naming the field; and none of
// these refusals changes anything: not the record (as Redis holds it and as the
// sender reads it), not the audit log, not the history.
import t, { type Test } from 'tap'
import { bearer, buildApp, demoConfig, example } from '../../helpers/app.js'
import { DAY_MS, expectProblem, get, keys, pointersOf, redisClient, submit, type InjectResponse, type ProblemBody } from '../../helpers/fixtures.js'
import type { RequestStatus } from '../../../src/domain/types.js'

type Body = Record<string, any>

// Far more calls than a partner makes: lift the per-authority rate limit.
const config = demoConfig()
for (const authority of config.authorities) authority.rateLimit = { max: 1_000_000, timeWindowSeconds: 60 }
const { app, token, redis } = await buildApp(t, { config })
const db = await redisClient(t, redis.url)

let refCounter = 0
const freshRef = (label: string): string => `TX-${label}-${process.pid}-${++refCounter}`

/** The 1959 Convention MLA example, TR-MOJ → `recipient`, the agreement's clock governing (urgency far out). */
function mlaBody (recipient = 'DE-BFJ'): Body {
  const body = example('mla-request', freshRef('mla'))
  body.urgency.requestedBy = '2099-12-31'
  body.recipient = recipient
  return body
}

interface Req { id: string, sender: string, recipient: string, submitted: Body }

async function submitMla (recipient = 'DE-BFJ'): Promise<Req> {
  const res = await submit(app, token('TR-MOJ'), mlaBody(recipient))
  if (res.statusCode !== 201) throw new Error(`submission answered ${res.statusCode}: ${res.body.slice(0, 300)}`)
  const body = res.json()
  return { id: body.id, sender: 'TR-MOJ', recipient, submitted: body }
}

async function post (authority: string, id: string, step: string, body?: Body, roles = 'agency'): Promise<InjectResponse> {
  return await app.inject({ method: 'POST', url: `/v1/requests/${id}/${step}`, headers: bearer(token(authority, roles)), ...(body === undefined ? {} : { payload: body }) })
}

/** A step that must succeed: the request as it now stands. */
async function ok (authority: string, id: string, step: string, body: Body = {}): Promise<Body> {
  const res = await post(authority, id, step, body)
  if (res.statusCode !== 200) throw new Error(`${step} by ${authority} answered ${res.statusCode}: ${res.body.slice(0, 400)}`)
  return res.json()
}

async function read (authority: string, id: string): Promise<Body> {
  const res = await get(app, token(authority), `/v1/requests/${id}`)
  if (res.statusCode !== 200) throw new Error(`GET ${id} as ${authority} answered ${res.statusCode}`)
  return res.json()
}

async function events (authority: string, id: string): Promise<Body[]> {
  const res = await get(app, token(authority), `/v1/requests/${id}/events`)
  if (res.statusCode !== 200) throw new Error(`GET ${id}/events as ${authority} answered ${res.statusCode}`)
  return res.json().items
}

const types = (items: Body[]): string[] => items.map((e) => e.type)

async function inbox (authority: string, query = ''): Promise<string[]> {
  const res = await get(app, token(authority, 'liaison'), `/v1/requests?box=inbox&limit=100&${query}`)
  if (res.statusCode !== 200) throw new Error(`inbox answered ${res.statusCode}: ${res.body}`)
  return res.json().items.map((item: Body) => item.id)
}

/** Everything a refusal must leave alone: the record in Redis, the audit stream's length, the request's history. */
async function state (req: Req): Promise<Body> {
  const [hash, auditLength] = await Promise.all([db.hgetall(keys.request(req.id)), db.xlen(keys.auditStream)])
  return { hash, auditLength, history: await events(req.sender, req.id) }
}

/**
 * Runs a request that must be refused with `status`, and checks that nothing
 * changed: the record (Redis hash and the sender's GET), XLEN of the audit
 * stream and the request's events.
 */
async function refused (t: Test, req: Req, status: number, what: string, attempt: () => Promise<InjectResponse>): Promise<ProblemBody> {
  const seen = await read(req.sender, req.id) // a disclosure: logged, so taken before the snapshot
  const before = await state(req)
  const problem = expectProblem(t, await attempt(), status, what)
  t.same(await state(req), before, `${what}: record, audit log and history unchanged`)
  t.same(await read(req.sender, req.id), seen, `${what}: the sender reads the same request`)
  return problem
}

/** Drives a fresh TR-MOJ → DE-BFJ request to `status` through the API. */
async function reach (status: RequestStatus): Promise<Req> {
  const req = await submitMla()
  const R = req.recipient
  const S = req.sender
  switch (status) {
    case 'submitted': break
    case 'delivered': await read(R, req.id); break
    case 'acknowledged': await ok(R, req.id, 'acknowledgement'); break
    case 'clarification_requested': await ok(R, req.id, 'acknowledgement'); await ok(R, req.id, 'clarification-request', { questions: 'Which account numbers?' }); break
    case 'partially_executed': await ok(R, req.id, 'acknowledgement'); await ok(R, req.id, 'responses', { outcome: 'partially_executed' }); break
    case 'executed': await ok(R, req.id, 'acknowledgement'); await ok(R, req.id, 'responses', { outcome: 'executed' }); break
    case 'refused': await ok(R, req.id, 'responses', { outcome: 'refused', grounds: ['fiscal_offence'] }); break
    case 'withdrawn': await ok(S, req.id, 'withdrawal', {}); break
    default: throw new Error(`cannot reach ${status} through the API`)
  }
  const current = await read(S, req.id)
  if (current.status !== status) throw new Error(`wanted ${status}, got ${current.status}`)
  return req
}

t.test('a pull-only recipient\'s first GET delivers the request, recorded as request.retrieved', async (t) => {
  const req = await submitMla()
  t.equal((await read('TR-MOJ', req.id)).status, 'submitted', 'the sender\'s own reads deliver nothing')
  const first = await read('DE-BFJ', req.id)
  t.equal(first.status, 'delivered', 'the recipient\'s first fetch delivers it')
  t.type(first.deliveredAt, 'string', 'with the time of delivery')
  t.equal(first.content.persons[0].familyName, 'Karaosmanlı', 'and hands over the content')
  const second = await read('DE-BFJ', req.id)
  t.equal(second.deliveredAt, first.deliveredAt, 'a second fetch changes nothing')
  const history = await events('TR-MOJ', req.id)
  t.same(types(history), ['request.submitted', 'request.retrieved'], 'one request.retrieved in the history')
  t.equal(history[1].actor.authority, 'DE-BFJ', 'by the recipient')
})

t.test('acknowledgement: acknowledgedAt, the recipient\'s reference and estimated answer date; the boxes then order by the response deadline', async (t) => {
  const x = await submitMla('NL-AIRS')
  const y = await submitMla('NL-AIRS')
  t.same(await inbox('NL-AIRS'), [x.id, y.id], 'before acknowledgement: ordered by the acknowledgement deadline')

  const res = await post('NL-AIRS', x.id, 'acknowledgement', { recipientReference: 'AIRS 2026/771', estimatedAnswerDate: '2027-01-31' })
  t.equal(res.statusCode, 200, 'acknowledged (200)')
  const acked = res.json()
  t.equal(acked.status, 'acknowledged', 'status acknowledged')
  t.type(acked.acknowledgedAt, 'string', 'acknowledgedAt set')
  t.equal(acked.recipientReference, 'AIRS 2026/771', 'the recipient\'s own reference kept')
  t.equal(acked.estimatedAnswerDate, '2027-01-31', 'the estimated answer date kept')
  t.match(await read('TR-MOJ', x.id), { status: 'acknowledged', acknowledgedAt: acked.acknowledgedAt, recipientReference: 'AIRS 2026/771', estimatedAnswerDate: '2027-01-31' }, 'the sender sees all of it')
  const history = await events('TR-MOJ', x.id)
  t.same(types(history), ['request.submitted', 'request.acknowledged'], 'request.acknowledged in the history')
  t.match(history[1], { actor: { authority: 'NL-AIRS' }, data: { status: 'acknowledged', estimatedAnswerDate: '2027-01-31' } }, 'with who and the estimated date')

  t.ok(Date.parse(y.submitted.deadlines.acknowledgement) < Date.parse(x.submitted.deadlines.response), 'y\'s acknowledgement is due before x\'s response')
  t.same(await inbox('NL-AIRS'), [y.id, x.id], 'after it: x is ordered by its response deadline, behind y\'s acknowledgement deadline')
  const outbox = await get(app, token('TR-MOJ'), '/v1/requests?box=outbox&counterpart=NL-AIRS&limit=100')
  t.same(outbox.json().items.map((i: Body) => i.id), [y.id, x.id], 'the sender\'s outbox too')
})

t.test('clarification: the recipient asks, the request waits in clarification_requested, the sender answers, it is acknowledged again', async (t) => {
  const req = await reach('acknowledged')
  const asked = await post('DE-BFJ', req.id, 'clarification-request', { questions: 'Please name the account holder Karaosmanlı\'s second bank.' })
  t.equal(asked.statusCode, 200, 'asked (200)')
  t.equal(asked.json().status, 'clarification_requested', 'status clarification_requested')
  t.equal((await read('TR-MOJ', req.id)).status, 'clarification_requested', 'the sender sees the question pending')
  const answered = await post('TR-MOJ', req.id, 'clarification', { answers: 'Mainufer Bank AG only.' })
  t.equal(answered.statusCode, 200, 'answered (200)')
  t.equal(answered.json().status, 'acknowledged', 'back to acknowledged')
  const history = await events('DE-BFJ', req.id)
  t.same(types(history), ['request.submitted', 'request.acknowledged', 'request.clarification_requested', 'request.clarified'], 'both steps in the history')
  t.same(history.slice(2).map((e) => e.actor.authority), ['DE-BFJ', 'TR-MOJ'], 'asked by the recipient, answered by the sender')
  t.notMatch(JSON.stringify(history), /Karaosmanl|Mainufer/, 'the free text stays out of the history (metadata only)')
})

t.test('a clarification asked for before any acknowledgement leaves a consistent record once answered', async (t) => {
  const req = await reach('delivered')
  await ok('DE-BFJ', req.id, 'clarification-request', { questions: 'Which period?' })
  const answered = await ok('TR-MOJ', req.id, 'clarification', { answers: '2025-2026.' })
  t.equal(answered.status, 'acknowledged', 'the answer puts it in acknowledged')
  t.type(answered.acknowledgedAt, 'string', 'so it has an acknowledgement time (status acknowledged ⇒ acknowledgedAt)')
})

t.test('extension: within the cap (original response deadline + P30D under the 1959 agreement) it moves the deadline; beyond it, or backwards, 422', async (t) => {
  const req = await reach('acknowledged')
  const original = Date.parse(req.submitted.deadlines.response)
  t.equal(req.submitted.deadlines.responseOriginal, req.submitted.deadlines.response, 'at submission the original is the deadline')
  t.equal(original - Date.parse(req.submitted.submittedAt), 90 * DAY_MS, 'the 1959 agreement\'s 90 days')

  const first = new Date(original + 10 * DAY_MS).toISOString()
  const extended = await post('DE-BFJ', req.id, 'extension', { responseDeadline: first, reason: 'Bank records take longer.' })
  t.equal(extended.statusCode, 200, 'an extension by 10 days is granted')
  t.equal(extended.json().deadlines.response, first, 'the response deadline moved')
  t.equal(extended.json().deadlines.responseOriginal, new Date(original).toISOString(), 'the original deadline is kept')
  t.equal(extended.json().status, 'acknowledged', 'the status stays')

  const cap = new Date(original + 30 * DAY_MS).toISOString()
  const second = await post('DE-BFJ', req.id, 'extension', { responseDeadline: cap, reason: 'The witness is ill.' })
  t.equal(second.statusCode, 200, 'a second extension up to exactly original + 30 days is granted (the cap counts from the original)')
  t.equal(second.json().deadlines.response, cap, 'moved to the cap')
  const history = await events('TR-MOJ', req.id)
  t.same(history.filter((e) => e.type === 'request.extended').map((e) => e.data.responseDue), [first, cap], 'each extension is an audited event with the new deadline')
  t.notMatch(JSON.stringify(history), /witness is ill|take longer/, 'the reasons (free text) stay out of the history')

  const beyond = await refused(t, req, 422, 'one millisecond beyond the cap', () => post('DE-BFJ', req.id, 'extension', { responseDeadline: new Date(original + 30 * DAY_MS + 1).toISOString(), reason: 'More time.' }))
  t.same(pointersOf(beyond), ['/responseDeadline'], 'the problem names /responseDeadline')
  const earlier = await refused(t, req, 422, 'earlier than the current deadline', () => post('DE-BFJ', req.id, 'extension', { responseDeadline: first, reason: 'Less time.' }))
  t.same(pointersOf(earlier), ['/responseDeadline'], 'the problem names /responseDeadline')
  const same = await refused(t, req, 422, 'the current deadline itself', () => post('DE-BFJ', req.id, 'extension', { responseDeadline: cap, reason: 'No change.' }))
  t.same(pointersOf(same), ['/responseDeadline'], 'the problem names /responseDeadline')

  const fresh = await reach('delivered')
  const tooFar = new Date(Date.parse(fresh.submitted.deadlines.response) + 31 * DAY_MS).toISOString()
  const p = await refused(t, fresh, 422, 'a first extension beyond the cap', () => post('DE-BFJ', fresh.id, 'extension', { responseDeadline: tooFar, reason: 'More time.' }))
  t.same(pointersOf(p), ['/responseDeadline'], 'names /responseDeadline')
})

t.test('responses: partially_executed keeps the request open, executed closes it', async (t) => {
  const req = await reach('acknowledged')
  const partial = await post('DE-BFJ', req.id, 'responses', { outcome: 'partially_executed', text: 'Statements for 2025 enclosed.' })
  t.equal(partial.statusCode, 200, 'a partial answer (200)')
  t.equal(partial.json().status, 'partially_executed', 'status partially_executed')
  t.equal(partial.json().closedAt, undefined, 'not closed')
  t.ok((await inbox('DE-BFJ')).includes(req.id), 'still in the recipient\'s inbox')
  t.ok((await inbox('DE-BFJ', 'status=partially_executed')).includes(req.id), 'listed with status=partially_executed')

  const done = await post('DE-BFJ', req.id, 'responses', { outcome: 'executed' })
  t.equal(done.statusCode, 200, 'the final answer (200)')
  t.equal(done.json().status, 'executed', 'status executed')
  t.type(done.json().closedAt, 'string', 'closed')
  t.type(done.json().respondedAt, 'string', 'with the time of the answer')
  t.notOk((await inbox('DE-BFJ')).includes(req.id), 'gone from the recipient\'s inbox')
  t.ok((await inbox('DE-BFJ', 'status=executed')).includes(req.id), 'listed with status=executed')
  t.same(types(await events('TR-MOJ', req.id)), ['request.submitted', 'request.acknowledged', 'request.partially_executed', 'request.executed'], 'both answers in the history')
})

t.test('refusals name grounds from the catalogue of the request\'s instrument', async (t) => {
  const req = await reach('delivered')
  const eio = await refused(t, req, 422, 'an EIO ground on a 1959 Convention request', () => post('DE-BFJ', req.id, 'responses', { outcome: 'refused', grounds: ['immunity_or_privilege'] }))
  t.same(pointersOf(eio), ['/grounds'], 'names /grounds')
  t.match(eio.detail, /political_offence/, 'and lists the grounds the 1959 Convention allows')
  const none = await refused(t, req, 422, 'a refusal without grounds', () => post('DE-BFJ', req.id, 'responses', { outcome: 'refused' }))
  t.same(pointersOf(none), ['/grounds'], 'names /grounds')
  const unknown = await refused(t, req, 400, 'a ground in no catalogue', () => post('DE-BFJ', req.id, 'responses', { outcome: 'refused', grounds: ['we_are_busy'] }))
  t.same(pointersOf(unknown), ['/grounds/0'], 'names /grounds/0')

  const res = await post('DE-BFJ', req.id, 'responses', { outcome: 'refused', grounds: ['political_offence'], text: 'The offence is regarded as political.' })
  t.equal(res.statusCode, 200, 'a refusal on political_offence (1959 Convention, Art. 2(a)) is accepted')
  t.equal(res.json().status, 'refused', 'status refused')
  t.type(res.json().closedAt, 'string', 'closed')
  const last = (await events('TR-MOJ', req.id)).at(-1)
  t.match(last, { type: 'request.refused', data: { outcome: 'refused', grounds: ['political_offence'] } }, 'the grounds are in the history')
  t.notOk((await inbox('DE-BFJ')).includes(req.id), 'gone from the inbox')
})

t.test('withdrawal by the sender while the request is open', async (t) => {
  for (const status of ['submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed'] as const) {
    const req = await reach(status)
    const res = await post('TR-MOJ', req.id, 'withdrawal', status === 'submitted' ? {} : { reason: 'The suspect has been arrested.' })
    t.equal(res.statusCode, 200, `withdrawn from ${status} (200)`)
    t.equal(res.json().status, 'withdrawn', 'status withdrawn')
    t.type(res.json().closedAt, 'string', 'closed')
    t.match((await events('DE-BFJ', req.id)).at(-1), { type: 'request.withdrawn', actor: { authority: 'TR-MOJ' }, data: { from: status } }, 'the recipient sees the withdrawal in the history')
    t.notOk((await inbox('DE-BFJ')).includes(req.id), 'gone from the recipient\'s inbox')
  }
})

t.test('a withdrawal needs no body: the reason is optional', async (t) => {
  const req = await reach('delivered')
  const res = await post('TR-MOJ', req.id, 'withdrawal')
  t.equal(res.statusCode, 200, 'POST .../withdrawal without a body is accepted', { body: res.body.slice(0, 300) })
  t.equal((await read('TR-MOJ', req.id)).status, 'withdrawn', 'and withdraws the request')
})

// Which (step, side) pairs the design allows from each status; everything else is illegal.
const steps: Array<{ step: string, side: 'sender' | 'recipient', body: (req: Req) => Body, from: RequestStatus[] }> = [
  { step: 'acknowledgement', side: 'recipient', body: () => ({}), from: ['submitted', 'delivered'] },
  { step: 'clarification-request', side: 'recipient', body: () => ({ questions: 'More?' }), from: ['submitted', 'delivered', 'acknowledged', 'partially_executed'] },
  { step: 'clarification', side: 'sender', body: () => ({ answers: 'Here.' }), from: ['clarification_requested'] },
  { step: 'extension', side: 'recipient', body: (req) => ({ responseDeadline: new Date(Date.parse(req.submitted.deadlines.response) + DAY_MS).toISOString(), reason: 'Time.' }), from: ['submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed'] },
  { step: 'responses', side: 'recipient', body: () => ({ outcome: 'partially_executed' }), from: ['submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed'] },
  { step: 'responses', side: 'recipient', body: () => ({ outcome: 'executed' }), from: ['submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed'] },
  { step: 'responses', side: 'recipient', body: () => ({ outcome: 'refused', grounds: ['essential_interests'] }), from: ['submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed'] },
  { step: 'withdrawal', side: 'sender', body: () => ({}), from: ['submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed'] }
]
const reachable: RequestStatus[] = ['submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed', 'executed', 'refused', 'withdrawn']

t.test('every illegal step is 409 naming the current status, and changes nothing', async (t) => {
  let tried = 0
  for (const status of reachable) {
    const req = await reach(status)
    for (const { step, side, body, from } of steps) {
      for (const who of ['sender', 'recipient'] as const) {
        if (who === side && from.includes(status)) continue
        const authority = who === 'sender' ? req.sender : req.recipient
        const payload = body(req)
        const what = `${who} POST ${step}${payload.outcome === undefined ? '' : ` (${payload.outcome as string})`} on ${status}`
        const problem = await refused(t, req, 409, what, () => post(authority, req.id, step, payload))
        t.equal(problem.currentStatus, status, `${what}: currentStatus ${status}`)
        t.type(problem.detail, 'string', `${what}: with a detail`)
        tried++
      }
    }
  }
  t.comment(`${tried} illegal steps tried`)
})

t.test('the illegal steps the design names', async (t) => {
  const acked = await reach('acknowledged')
  let p = await refused(t, acked, 409, 'acknowledging twice', () => post('DE-BFJ', acked.id, 'acknowledgement', {}))
  t.equal(p.currentStatus, 'acknowledged', 'currentStatus acknowledged')
  t.match(p.detail, /acknowledged/, 'the detail names the status')

  const withdrawn = await reach('withdrawn')
  p = await refused(t, withdrawn, 409, 'acknowledging a withdrawn request', () => post('DE-BFJ', withdrawn.id, 'acknowledgement', {}))
  t.equal(p.currentStatus, 'withdrawn', 'currentStatus withdrawn')

  const delivered = await reach('delivered')
  p = await refused(t, delivered, 409, 'the sender acknowledging', () => post('TR-MOJ', delivered.id, 'acknowledgement', {}))
  t.match(p.detail, /recipient/, 'the detail says only the recipient may')
  p = await refused(t, delivered, 409, 'the recipient withdrawing', () => post('DE-BFJ', delivered.id, 'withdrawal', {}))
  t.match(p.detail, /sender/, 'the detail says only the sender may')
  p = await refused(t, delivered, 409, 'the sender answering its own request', () => post('TR-MOJ', delivered.id, 'responses', { outcome: 'executed' }))
  t.match(p.detail, /recipient/, 'the detail says only the recipient may')

  p = await refused(t, acked, 409, 'a clarification nobody asked for', () => post('TR-MOJ', acked.id, 'clarification', { answers: 'Unasked.' }))
  t.equal(p.currentStatus, 'acknowledged', 'currentStatus acknowledged')

  const executed = await reach('executed')
  for (const outcome of ['partially_executed', 'executed'] as const) {
    p = await refused(t, executed, 409, `answering a closed request (${outcome})`, () => post('DE-BFJ', executed.id, 'responses', { outcome }))
    t.equal(p.currentStatus, 'executed', 'currentStatus executed')
  }
  p = await refused(t, executed, 409, 'refusing a closed request, even without grounds', () => post('DE-BFJ', executed.id, 'responses', { outcome: 'refused' }))
  t.equal(p.currentStatus, 'executed', 'the lifecycle is checked before the grounds')
  p = await refused(t, withdrawn, 409, 'withdrawing twice', () => post('TR-MOJ', withdrawn.id, 'withdrawal', {}))
  t.equal(p.currentStatus, 'withdrawn', 'currentStatus withdrawn')
  p = await refused(t, withdrawn, 409, 'extending a withdrawn request, even beyond the cap', () => post('DE-BFJ', withdrawn.id, 'extension', { responseDeadline: '2099-01-01T00:00:00Z', reason: 'x' }))
  t.equal(p.currentStatus, 'withdrawn', 'the lifecycle is checked before the cap')
})

t.test('an authority that is not a party gets 404 for every step; a request that does not exist is 404 too', async (t) => {
  const req = await reach('delivered')
  for (const { step, body } of steps) {
    const payload = body(req)
    await refused(t, req, 404, `FR-BEPI POST ${step}${payload.outcome === undefined ? '' : ` (${payload.outcome as string})`}`, () => post('FR-BEPI', req.id, step, payload))
  }
  const missing = await post('DE-BFJ', '01900000-0000-7000-8000-000000000000', 'acknowledgement', {})
  expectProblem(t, missing, 404, 'an unknown request')
})

t.test('auditors and liaison officers do not act on requests: 403', async (t) => {
  const req = await reach('delivered')
  for (const roles of ['auditor', 'liaison', 'auditor,liaison']) {
    await refused(t, req, 403, `the recipient's ${roles} acknowledging`, () => post('DE-BFJ', req.id, 'acknowledgement', {}, roles))
    await refused(t, req, 403, `the recipient's ${roles} answering`, () => post('DE-BFJ', req.id, 'responses', { outcome: 'executed' }, roles))
    await refused(t, req, 403, `the sender's ${roles} withdrawing`, () => post('TR-MOJ', req.id, 'withdrawal', {}, roles))
  }
  t.equal((await read('DE-BFJ', req.id)).status, 'delivered', 'still delivered')
})

t.test('bad bodies are 400 naming the offending field, and change nothing', async (t) => {
  const req = await reach('delivered')
  const cases: Array<{ step: string, body: Body, pointer: string }> = [
    { step: 'acknowledgement', body: { estimatedAnswerDate: 'next spring' }, pointer: '/estimatedAnswerDate' },
    { step: 'acknowledgement', body: { recipientReference: '' }, pointer: '/recipientReference' },
    { step: 'acknowledgement', body: { recipientReference: 'R-1', handledBy: 'someone' }, pointer: '/handledBy' },
    { step: 'clarification-request', body: {}, pointer: '/questions' },
    { step: 'clarification-request', body: { questions: 42 }, pointer: '/questions' },
    { step: 'clarification', body: { answers: '' }, pointer: '/answers' },
    { step: 'extension', body: { responseDeadline: 'in two weeks', reason: 'Time.' }, pointer: '/responseDeadline' },
    { step: 'extension', body: { responseDeadline: '2027-03-20T00:00:00Z' }, pointer: '/reason' },
    { step: 'responses', body: {}, pointer: '/outcome' },
    { step: 'responses', body: { outcome: 'done' }, pointer: '/outcome' },
    { step: 'responses', body: { outcome: 'refused', grounds: [] }, pointer: '/grounds' },
    { step: 'responses', body: { outcome: 'refused', grounds: ['political_offence', 42] }, pointer: '/grounds/1' },
    { step: 'withdrawal', body: { reason: 42 }, pointer: '/reason' }
  ]
  for (const { step, body, pointer } of cases) {
    const p = await refused(t, req, 400, `POST ${step} ${JSON.stringify(body)}`, () => post(step === 'withdrawal' || step === 'clarification' ? 'TR-MOJ' : 'DE-BFJ', req.id, step, body))
    t.ok(pointersOf(p).includes(pointer), `names ${pointer}`, { errors: p.errors })
  }
})
