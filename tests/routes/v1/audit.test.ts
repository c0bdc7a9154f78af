// GET /v1/audit, /v1/audit/disclosures and /v1/audit/verification on a real
// gateway: filters and cursor paging return each event exactly once; every full
// fetch of a request is in the disclosure log; the chain verifies; auditors see
// the events of their own authority's pairs (an oversight auditor every pair),
// every other role is refused. And nothing personal ever reaches the audit log,
// the aggregates, the reports or the audit API.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { bearer, buildApp, example, type TestApp } from '../../helpers/app.js'
import { expectProblem, get, keys, redisClient, submit } from '../../helpers/fixtures.js'
import type { AuditEvent } from '../../../src/domain/events.js'
import type { Role } from '../../../src/domain/types.js'
import { decodeStreamEntry } from '../../../src/store/request-store.js'

type Logged = AuditEvent & { id: string, seq: number, hash: string }

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const authorities = ['TR-MOJ', 'TR-PMM', 'DE-BFJ', 'FR-BEPI', 'NL-AIRS', 'EU-OVERSIGHT']
const roles: Role[] = ['agency', 'liaison', 'auditor', 'admin']

/** Every entry of the stream, decoded, in order. */
async function wholeLog (db: Redis): Promise<Logged[]> {
  const entries = await db.xrange(keys.auditStream, '-', '+') as Array<[string, string[]]>
  return entries.map(([id, fields]) => {
    const { body: _body, ...event } = decodeStreamEntry(id, fields)
    return event as Logged
  })
}

/** Follows nextCursor to the end, asserting no page is larger than the limit. */
async function allPages (t: Test, app: FastifyInstance, token: string, path: string, query: string, limit: number): Promise<Logged[]> {
  const items: Logged[] = []
  let cursor: string | undefined
  for (let page = 0; page < 1000; page++) {
    const url = `${path}?${query}${query === '' ? '' : '&'}limit=${limit}${cursor === undefined ? '' : `&cursor=${cursor}`}`
    const res = await get(app, token, url)
    if (res.statusCode !== 200) {
      t.fail(`GET ${url} answered ${res.statusCode}`, { body: res.body.slice(0, 300) })
      return items
    }
    const body = res.json() as { items: Logged[], nextCursor?: string }
    if (body.items.length > limit) t.fail(`a page of ${body.items.length} items for limit ${limit}`)
    items.push(...body.items)
    if (body.nextCursor === undefined) return items
    cursor = body.nextCursor
  }
  t.fail('paging did not end')
  return items
}

const ids = (events: Array<{ id: string }>): string[] => events.map((event) => event.id)
const involves = (event: AuditEvent, authority: string): boolean => event.sender === authority || event.recipient === authority || event.actor.authority === authority

interface World extends TestApp {
  db: Redis
  r1: string
  r2: string
  r3: string
  r4: string
  /** Stream ids written in each phase of the story (for time-range filters). */
  phases: { before: number, afterFirst: number, afterSecond: number }
}

/**
 * Four requests over four pairs, in two phases 50 ms apart:
 *  r1 TR-MOJ → DE-BFJ (mla): fetched by the recipient's clerk and a liaison officer and by the sender, acknowledged, executed;
 *  r2 DE-BFJ → FR-BEPI (mla, EIO): acknowledged, refused;
 *  r3 TR-PMM → NL-AIRS (repatriation): fetched, acknowledged;
 *  r4 FR-BEPI → NL-AIRS (mla, EIO): withdrawn.
 */
async function world (t: Test): Promise<World> {
  const gateway = await buildApp(t)
  const { app, token } = gateway
  const db = await redisClient(t, gateway.redis.url)
  const agency = (authority: string): string => token(authority, ['agency'], `clerk@${authority}`)
  let n = 0
  const mla = (recipient: string, legalBasis = 'coe-1959-convention'): Record<string, any> => {
    const body = example('mla-request', `AUDIT-API-${process.pid}-${++n}`)
    body.recipient = recipient
    body.legalBasis = legalBasis
    body.urgency.requestedBy = '2099-12-31'
    return body
  }
  const created = async (res: Awaited<ReturnType<typeof submit>>): Promise<string> => {
    t.equal(res.statusCode, 201, 'submitted', { body: res.body.slice(0, 300) })
    return res.json().id as string
  }
  const step = async (authority: string, id: string, path: string, payload: Record<string, unknown>): Promise<void> => {
    const res = await app.inject({ method: 'POST', url: `/v1/requests/${id}/${path}`, headers: bearer(agency(authority)), payload })
    t.equal(res.statusCode, 200, `${authority} POST ${path}`, { body: res.body.slice(0, 300) })
  }
  const fetch = async (tokenOf: string, id: string): Promise<void> => {
    t.equal((await get(app, tokenOf, `/v1/requests/${id}`)).statusCode, 200)
  }

  const before = Date.now()
  await sleep(30)
  const r1 = await created(await submit(app, agency('TR-MOJ'), mla('DE-BFJ')))
  const r2 = await created(await submit(app, agency('DE-BFJ'), mla('FR-BEPI', 'eio-directive-2014-41')))
  await fetch(agency('DE-BFJ'), r1)
  await fetch(token('DE-BFJ', ['liaison'], 'liaison@DE-BFJ'), r1)
  await fetch(token('DE-BFJ', ['auditor'], 'auditor@DE-BFJ'), r1) // metadata only: not a disclosure
  await step('DE-BFJ', r1, 'acknowledgement', { recipientReference: 'BfJ-II-1' })
  await sleep(50)
  const afterFirst = Date.now()
  await sleep(50)
  const r3 = await created(await submit(app, agency('TR-PMM'), { ...example('repatriation-request', `AUDIT-API-REP-${process.pid}`), recipient: 'NL-AIRS' }))
  const r4 = await created(await submit(app, agency('FR-BEPI'), mla('NL-AIRS', 'eio-directive-2014-41')))
  await fetch(agency('NL-AIRS'), r3)
  await step('NL-AIRS', r3, 'acknowledgement', {})
  await step('FR-BEPI', r2, 'acknowledgement', {})
  await step('FR-BEPI', r2, 'responses', { outcome: 'refused', grounds: ['double_criminality'] })
  await step('FR-BEPI', r4, 'withdrawal', {})
  await fetch(agency('TR-MOJ'), r1)
  await step('DE-BFJ', r1, 'responses', { outcome: 'executed' })
  await sleep(50)
  const afterSecond = Date.now()
  return { ...gateway, db, r1, r2, r3, r4, phases: { before, afterFirst, afterSecond } }
}

t.test('the audit API', async (t) => {
  const w = await world(t)
  const { app, token, db } = w
  const log = await wholeLog(db)
  const oversight = token('EU-OVERSIGHT', ['auditor'])
  const auditor = (authority: string): string => token(authority, ['auditor'])

  t.test('an oversight auditor pages through the whole log: each event once, in order', async (t) => {
    for (const limit of [1, 3, 7, 500]) {
      const items = await allPages(t, app, oversight, '/v1/audit', '', limit)
      t.same(ids(items), ids(log), `limit ${limit}: every entry, once, in log order`)
    }
    const [first] = (await get(app, oversight, '/v1/audit?limit=1')).json().items as Logged[]
    t.same(first, log[0], 'metadata, seq and hash of each entry')
    t.notOk('body' in first, 'not the raw body')
  })

  t.test('filters', async (t) => {
    const cases: Array<[string, string, (event: Logged) => boolean]> = [
      ['one request', `requestId=${w.r1}`, (event) => event.requestId === w.r1],
      ['one event type', 'type=request.acknowledged', (event) => event.type === 'request.acknowledged'],
      ['one authority', 'authority=NL-AIRS', (event) => involves(event, 'NL-AIRS')],
      ['an authority and a type', 'authority=DE-BFJ&type=request.disclosed', (event) => involves(event, 'DE-BFJ') && event.type === 'request.disclosed'],
      ['a type nothing has', 'type=request.deemed_accepted', () => false],
      ['a request of another pair and an authority not party to it', `requestId=${w.r1}&authority=NL-AIRS`, () => false]
    ]
    for (const [label, query, keep] of cases) {
      const expected = log.filter(keep)
      for (const limit of [2, 100]) {
        const items = await allPages(t, app, oversight, '/v1/audit', query, limit)
        t.same(ids(items), ids(expected), `${label} (limit ${limit}): ${expected.length} events, each once`)
      }
    }
  })

  t.test('time range: from and to select by the time the event was logged', async (t) => {
    const iso = (ms: number): string => new Date(ms).toISOString()
    const ms = (event: Logged): number => Number(event.id.split('-')[0])
    const first = log.filter((event) => ms(event) >= w.phases.before && ms(event) <= w.phases.afterFirst)
    const second = log.filter((event) => ms(event) > w.phases.afterFirst && ms(event) <= w.phases.afterSecond)
    t.ok(first.length > 0 && second.length > 0 && first.length + second.length === log.length, 'two phases, every event in one of them')
    t.ok(second.every((event) => Date.parse(event.at) > w.phases.afterFirst), 'event times agree with the log times')

    t.same(ids(await allPages(t, app, oversight, '/v1/audit', `from=${iso(w.phases.before)}&to=${iso(w.phases.afterFirst)}`, 2)), ids(first), 'the first phase')
    t.same(ids(await allPages(t, app, oversight, '/v1/audit', `from=${iso(w.phases.afterFirst)}`, 2)), ids(second), 'from the middle on')
    t.same(ids(await allPages(t, app, oversight, '/v1/audit', `to=${iso(w.phases.afterFirst)}`, 3)), ids(first), 'up to the middle')
    t.same(ids(await allPages(t, app, oversight, '/v1/audit', `from=${iso(w.phases.afterFirst)}&authority=TR-MOJ`, 1)),
      ids(second.filter((event) => involves(event, 'TR-MOJ'))), 'a range and an authority')
    t.same(ids(await allPages(t, app, oversight, '/v1/audit', `from=${iso(w.phases.afterSecond + 60_000)}`, 5)), [], 'after the last event: nothing')
    const onlyEvent = log[3]
    t.same(ids(await allPages(t, app, oversight, '/v1/audit', `from=${iso(ms(onlyEvent))}&to=${iso(ms(onlyEvent))}`, 5)),
      ids(log.filter((event) => ms(event) === ms(onlyEvent))), 'both ends are inclusive')
  })

  t.test('disclosures: every full fetch, who, which authority, which request, when', async (t) => {
    const fetches = log.filter((event) => event.type === 'request.disclosed')
    const ofR1 = fetches.filter((event) => event.requestId === w.r1)
    t.same(ofR1.map((event) => [event.actor.authority, event.actor.subject, event.data.to]), [
      ['DE-BFJ', 'clerk@DE-BFJ', 'DE-BFJ'],
      ['DE-BFJ', 'liaison@DE-BFJ', 'DE-BFJ'],
      ['TR-MOJ', 'clerk@TR-MOJ', 'TR-MOJ']
    ], 'the recipient\'s clerk, its liaison officer and the sender\'s clerk; the auditor\'s metadata read is not a disclosure')

    const seen = await allPages(t, app, auditor('TR-MOJ'), '/v1/audit/disclosures', '', 2)
    t.same(ids(seen), ids(fetches.filter((event) => involves(event, 'TR-MOJ'))), 'the sending authority\'s auditor sees every fetch of its requests')
    const r1Seen = seen.filter((event) => event.requestId === w.r1)
    t.equal(r1Seen.length, 3)
    for (const event of r1Seen) {
      t.match(event, { type: 'request.disclosed', requestId: w.r1, sender: 'TR-MOJ', recipient: 'DE-BFJ', actor: { authority: String, subject: String }, data: { to: String } })
      t.ok(Date.parse(event.at) >= w.phases.before && Date.parse(event.at) <= w.phases.afterSecond, 'with the time of the fetch')
    }
    t.same(ids(await allPages(t, app, auditor('TR-MOJ'), '/v1/audit/disclosures', `requestId=${w.r1}`, 10)), ids(ofR1), 'filtered to one request')
    t.same(ids(await allPages(t, app, auditor('DE-BFJ'), '/v1/audit/disclosures', `requestId=${w.r1}`, 10)), ids(ofR1), 'the recipient\'s auditor sees them too')
    t.same(await allPages(t, app, auditor('FR-BEPI'), '/v1/audit/disclosures', `requestId=${w.r1}`, 10), [], 'an unrelated authority\'s auditor sees none')
    t.same(ids(await allPages(t, app, oversight, '/v1/audit/disclosures', '', 100)), ids(fetches), 'oversight: all of them')
    const asked = await allPages(t, app, oversight, '/v1/audit/disclosures', 'type=request.acknowledged', 100)
    t.ok(asked.every((event) => event.type === 'request.disclosed'), 'only disclosures, whatever type is asked')
  })

  t.test('verification: ok, with the count and the head', async (t) => {
    const res = await get(app, auditor('NL-AIRS'), '/v1/audit/verification')
    t.equal(res.statusCode, 200)
    t.same(res.json(), { ok: true, checked: log.length, tipSeq: log.length, tipHash: log[log.length - 1].hash })
    t.same((await get(app, oversight, '/v1/audit/verification')).json(), res.json(), 'the same for an oversight auditor')
  })

  t.test('visibility for each role and authority', async (t) => {
    for (const authority of authorities) {
      for (const role of roles) {
        const who = token(authority, [role])
        const label = `${role} of ${authority}`
        if (role !== 'auditor') {
          for (const path of ['/v1/audit', '/v1/audit/disclosures', '/v1/audit/verification']) expectProblem(t, await get(app, who, path), 403, `${label}: ${path}`)
          continue
        }
        const expected = authority === 'EU-OVERSIGHT' ? log : log.filter((event) => involves(event, authority))
        t.same(ids(await allPages(t, app, who, '/v1/audit', '', 100)), ids(expected), `${label}: ${authority === 'EU-OVERSIGHT' ? 'every event' : 'the events of its pairs'}`)
      }
    }
    const pairOf: Record<string, [string, string]> = { [w.r1]: ['TR-MOJ', 'DE-BFJ'], [w.r2]: ['DE-BFJ', 'FR-BEPI'], [w.r3]: ['TR-PMM', 'NL-AIRS'], [w.r4]: ['FR-BEPI', 'NL-AIRS'] }
    for (const [id, parties] of Object.entries(pairOf)) {
      const events = log.filter((event) => event.requestId === id)
      t.ok(events.length > 0)
      for (const authority of authorities.filter((a) => a !== 'EU-OVERSIGHT')) {
        const visible = await allPages(t, app, auditor(authority), '/v1/audit', `requestId=${id}`, 100)
        if (parties.includes(authority)) t.same(ids(visible), ids(events), `${authority} (a party) sees all of ${parties.join('–')}'s events`)
        else t.same(visible, [], `${authority} (unrelated) sees none of ${parties.join('–')}'s events`)
      }
    }
    // An auditor asking for another authority's events sees only those that also involve its own.
    t.same(ids(await allPages(t, app, auditor('FR-BEPI'), '/v1/audit', 'authority=NL-AIRS', 100)),
      ids(log.filter((event) => involves(event, 'FR-BEPI') && involves(event, 'NL-AIRS'))), 'authority= narrows, never widens')
    expectProblem(t, await app.inject({ method: 'GET', url: '/v1/audit' }), 401, 'no token')
  })

  t.test('bad queries are refused with 400', async (t) => {
    const cases: Array<[string, string]> = [
      ['from=yesterday', 'from not a date-time'],
      ['to=2026-13-01T00:00:00Z', 'to not a date-time'],
      ['from=2026-10-01', 'a date without a time'],
      ['limit=0', 'limit 0'],
      ['limit=501', 'limit above 500'],
      ['limit=ten', 'limit not a number'],
      ['cursor=abc', 'cursor not a stream id'],
      ['requestId=42', 'requestId not a uuid'],
      ['authority=tr-moj', 'authority not an id'],
      ['type=acknowledged', 'type not an event type'],
      ['colour=blue', 'unknown parameter']
    ]
    for (const [query, what] of cases) {
      expectProblem(t, await get(app, oversight, `/v1/audit?${query}`), 400, `/v1/audit: ${what}`)
      expectProblem(t, await get(app, oversight, `/v1/audit/disclosures?${query}`), 400, `/v1/audit/disclosures: ${what}`)
    }
  })
})

// ---------------------------------------------------------------------------
// No personal data outside the sealed payload

/** Every person name (and its parts), birth date and document number in a request body. */
function personalData (body: unknown): string[] {
  const found = new Set<string>()
  const nameKeys = new Set(['familyName', 'givenNames', 'fatherName', 'motherName', 'aliases'])
  const walk = (value: unknown, key: string, parent: string): void => {
    if (Array.isArray(value)) {
      for (const item of value) walk(item, key, parent)
      return
    }
    if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, k, key)
      return
    }
    if (typeof value !== 'string') return
    const isName = nameKeys.has(key) || (key === 'name' && parent === 'contactPerson')
    if (isName) {
      found.add(value)
      for (const part of value.split(/\s+/)) if (part.length >= 4) found.add(part)
    }
    if (key === 'dateOfBirth' || key === 'number') found.add(value)
  }
  walk(body, '', '')
  return [...found]
}

t.test('no personal data in the audit log, the aggregates, the reports or the audit API', async (t) => {
  const { app, token, redis } = await buildApp(t)
  const db = await redisClient(t, redis.url)
  const agency = (authority: string): string => token(authority, ['agency'])
  const post = async (authority: string, id: string, path: string, payload: Record<string, unknown>): Promise<void> => {
    const res = await app.inject({ method: 'POST', url: `/v1/requests/${id}/${path}`, headers: bearer(agency(authority)), payload })
    t.equal(res.statusCode, 200, `${authority} ${path}`, { body: res.body.slice(0, 300) })
  }

  const mla = example('mla-request', 'PII-MLA-1')
  mla.urgency.requestedBy = '2099-12-31'
  const repatriation = example('repatriation-request', 'PII-REP-1')
  const needles = [...new Set([...personalData(mla), ...personalData(repatriation), 'Sabine Brandt'])]
  t.ok(needles.length >= 15, `${needles.length} personal data items to look for`)
  for (const expected of ['Karaosmanlı', 'Burak Selim', 'Elif Demirtaş', 'Moreau', 'Julien Morel', 'Léa', '1981-06-04', '1992-11-23', '2016-04-09', 'U00000000', '00XX00000']) {
    t.ok(needles.includes(expected), `looking for ${expected}`)
  }

  const mlaId = (await submit(app, agency('TR-MOJ'), mla)).json().id as string
  const repId = (await submit(app, agency('TR-PMM'), repatriation)).json().id as string
  const fetched = await get(app, agency('DE-BFJ'), `/v1/requests/${mlaId}`)
  t.ok(fetched.body.includes('Karaosmanlı'), 'the recipient does get the personal data (so the needles are real)')
  await get(app, agency('FR-BEPI'), `/v1/requests/${repId}`)
  // Free text is where personal data slips in: questions, answers, reasons, answers' text.
  await post('DE-BFJ', mlaId, 'acknowledgement', { recipientReference: 'BfJ II-2026-881', estimatedAnswerDate: '2099-01-31' })
  await post('DE-BFJ', mlaId, 'clarification-request', { questions: 'Is Sabine Brandt (born 1981-06-04?) the account holder? Passport U00000000?' })
  await post('TR-MOJ', mlaId, 'clarification', { answers: 'Burak Selim Karaosmanlı, born 1981-06-04, passport U00000000; the witness is Sabine Brandt.' })
  const due = (await get(app, agency('DE-BFJ'), `/v1/requests/${mlaId}`)).json().deadlines.response as string
  await post('DE-BFJ', mlaId, 'extension', { responseDeadline: new Date(Date.parse(due) + 86_400_000).toISOString(), reason: 'Sabine Brandt is abroad until next month.' })
  await post('DE-BFJ', mlaId, 'responses', { outcome: 'partially_executed', text: 'Statements of Karaosmanlı\'s account enclosed.' })
  await post('DE-BFJ', mlaId, 'responses', { outcome: 'executed', text: 'Hearing of Sabine Brandt held; record enclosed.' })
  await post('FR-BEPI', repId, 'acknowledgement', { recipientReference: 'BEPI-R-2027-17' })
  await post('FR-BEPI', repId, 'responses', { outcome: 'refused', grounds: ['nationality_not_established'], text: 'Julien Marc Moreau (1992-11-23, 00XX00000) and Léa Moreau (2016-04-09) are not known to the civil registry of Lyon.' })
  const withdrawn = example('mla-request', 'PII-MLA-2')
  withdrawn.urgency.requestedBy = '2099-12-31'
  const withdrawnId = (await submit(app, agency('TR-MOJ'), withdrawn)).json().id as string
  await post('TR-MOJ', withdrawnId, 'withdrawal', { reason: 'Karaosmanlı was arrested in Türkiye.' })

  // Everything an auditor or the operator can read besides the sealed records.
  const surfaces: Array<[string, string]> = []
  const stream = await db.xrange(keys.auditStream, '-', '+') as Array<[string, string[]]>
  t.ok(stream.length >= 14, `${stream.length} audit entries`)
  surfaces.push(['the audit stream', JSON.stringify(stream)])
  surfaces.push(['the audit tip', JSON.stringify(await db.hgetall(keys.auditTip))])
  for (const pattern of ['rog:agg:*', 'rog:live:*']) {
    const found = await db.keys(pattern)
    t.ok(found.length > 0, `${pattern}: ${found.length} keys`)
    for (const key of found) {
      const type = await db.type(key)
      const content = type === 'hash' ? await db.hgetall(key) : type === 'set' ? await db.smembers(key) : await db.dump(key)
      surfaces.push([key, `${key} ${JSON.stringify(content)}`])
    }
  }
  const today = new Date().toISOString().slice(0, 10)
  const reportUrl = `/v1/reports/turnaround?from=${today}&to=${today}`
  for (const who of [token('EU-OVERSIGHT', ['auditor']), token('TR-MOJ', ['auditor']), token('DE-BFJ', ['liaison']), token('FR-BEPI', ['auditor'])]) {
    const json = await get(app, who, reportUrl)
    t.equal(json.statusCode, 200)
    surfaces.push(['the report (JSON)', json.body])
    surfaces.push(['the report (CSV)', (await get(app, who, `${reportUrl}&format=csv`)).body])
  }
  for (const who of [token('EU-OVERSIGHT', ['auditor']), token('TR-MOJ', ['auditor']), token('FR-BEPI', ['auditor'])]) {
    for (const path of ['/v1/audit?limit=500', '/v1/audit/disclosures?limit=500', '/v1/audit/verification', `/v1/requests/${mlaId}/events`, `/v1/requests/${repId}/events`, `/v1/requests/${mlaId}`, `/v1/requests/${repId}`]) {
      const res = await get(app, who, path)
      surfaces.push([`${path} for an auditor`, res.body])
    }
  }
  const auditPage = surfaces.find(([name]) => name.startsWith('/v1/audit?'))?.[1] ?? ''
  t.ok(auditPage.includes(mlaId) && auditPage.includes('request.clarified'), 'the audit API does show the requests\' history')

  const ascii = (text: string): string => JSON.stringify(text).slice(1, -1).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  let leaks = 0
  for (const [where, text] of surfaces) {
    const haystack = text.toLowerCase()
    for (const needle of needles) {
      if (haystack.includes(needle.toLowerCase()) || haystack.includes(ascii(needle).toLowerCase())) {
        leaks++
        t.fail(`${JSON.stringify(needle)} appears in ${where}`)
      }
    }
  }
  t.equal(leaks, 0, `none of ${needles.length} personal data items in ${surfaces.length} places`)
})
