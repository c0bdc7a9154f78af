// The visibility matrix: every request route × every role × {the request's
// sender, its recipient, an unrelated authority}, each cell with the status it
// must answer. A request exists only for its two parties (anyone else: 404,
// exactly as for an id that does not exist); agencies and liaison officers of
// a party see the content, auditors of a party see metadata only; roles that
// never read requests are refused with 403 whatever the id.
import t, { type Test } from 'tap'
import { buildApp, example } from '../../helpers/app.js'
import { expectProblem, get, redisClient, snapshot, submit, type InjectResponse } from '../../helpers/fixtures.js'
import type { Role } from '../../../src/domain/types.js'

type Party = 'sender' | 'recipient' | 'unrelated'
type Route = 'POST /v1/requests' | 'GET /v1/requests/{id}' | 'GET /v1/requests?box=inbox' | 'GET /v1/requests?box=outbox' | 'GET /v1/requests/{id}/events'

const authorityOf: Record<Party, string> = { sender: 'TR-MOJ', recipient: 'DE-BFJ', unrelated: 'FR-BEPI' }
/** Whom each authority addresses its own POST to (each pair has a 1959-Convention MLA agreement). */
const postRecipientOf: Record<Party, string> = { sender: 'DE-BFJ', recipient: 'TR-MOJ', unrelated: 'TR-MOJ' }

const roles: Role[] = ['agency', 'liaison', 'auditor', 'admin']
const parties: Party[] = ['sender', 'recipient', 'unrelated']

const all = (status: number): Record<Party, number> => ({ sender: status, recipient: status, unrelated: status })
const partiesOnly = (status: number): Record<Party, number> => ({ sender: status, recipient: status, unrelated: 404 })

/** Expected status of every cell. */
const matrix: Record<Route, Record<Role, Record<Party, number>>> = {
  'POST /v1/requests': { agency: all(201), liaison: all(403), auditor: all(403), admin: all(403) },
  'GET /v1/requests/{id}': { agency: partiesOnly(200), liaison: partiesOnly(200), auditor: partiesOnly(200), admin: all(403) },
  'GET /v1/requests?box=inbox': { agency: all(200), liaison: all(200), auditor: all(403), admin: all(403) },
  'GET /v1/requests?box=outbox': { agency: all(200), liaison: all(200), auditor: all(403), admin: all(403) },
  'GET /v1/requests/{id}/events': { agency: partiesOnly(200), liaison: partiesOnly(200), auditor: partiesOnly(200), admin: all(403) }
}

/** Which roles see a request's content (personal data) when they may read it at all. */
const seesContent: Record<Role, boolean> = { agency: true, liaison: true, auditor: false, admin: false }

let refs = 0

t.test('visibility matrix', async (t) => {
  const { app, token, redis } = await buildApp(t)
  const db = await redisClient(t, redis.url)
  const body = example('mla-request', 'VIS-seed')
  const seeded = await submit(app, token('TR-MOJ', ['agency']), body)
  t.equal(seeded.statusCode, 201, 'the request under test is submitted by TR-MOJ to DE-BFJ')
  const id: string = seeded.json().id

  async function call (route: Route, role: Role, party: Party): Promise<InjectResponse> {
    const bearer = token(authorityOf[party], [role])
    switch (route) {
      case 'POST /v1/requests': {
        const fresh = example('mla-request', `VIS-${role}-${party}-${++refs}`)
        fresh.recipient = postRecipientOf[party]
        return await submit(app, bearer, fresh)
      }
      case 'GET /v1/requests/{id}': return await get(app, bearer, `/v1/requests/${id}`)
      case 'GET /v1/requests?box=inbox': return await get(app, bearer, '/v1/requests?box=inbox&limit=100')
      case 'GET /v1/requests?box=outbox': return await get(app, bearer, '/v1/requests?box=outbox&limit=100')
      case 'GET /v1/requests/{id}/events': return await get(app, bearer, `/v1/requests/${id}/events`)
    }
  }

  /** What a 2xx answer must hold beyond its status. */
  function checkBody (t: Test, route: Route, role: Role, party: Party, res: InjectResponse): void {
    const json = res.json()
    switch (route) {
      case 'POST /v1/requests':
        t.match(json, { sender: authorityOf[party], recipient: postRecipientOf[party], status: 'submitted' })
        break
      case 'GET /v1/requests/{id}':
        t.match(json, { id, sender: 'TR-MOJ', recipient: 'DE-BFJ', type: 'mla', senderReference: 'VIS-seed' }, 'metadata')
        t.type(json.deadlines?.response, 'string', 'deadlines')
        if (seesContent[role]) t.same(json.content, body, 'with the content')
        else t.notOk('content' in json, 'WITHOUT the content')
        if (!seesContent[role]) t.notOk(res.body.includes('Karaosmanlı'), 'no personal data anywhere in the answer')
        break
      case 'GET /v1/requests?box=inbox':
      case 'GET /v1/requests?box=outbox': {
        const listed = (json.items as Array<{ id: string }>).some((item) => item.id === id)
        const ownBox = (route.endsWith('inbox') && party === 'recipient') || (route.endsWith('outbox') && party === 'sender')
        t.equal(listed, ownBox, ownBox ? 'lists the request' : 'does not list the request')
        break
      }
      case 'GET /v1/requests/{id}/events':
        t.ok(json.items.length >= 1, 'the history')
        t.ok(json.items.every((event: { requestId: string }) => event.requestId === id), 'of this request only')
        t.notOk(res.body.includes('Karaosmanlı'), 'no personal data')
        break
    }
  }

  for (const route of Object.keys(matrix) as Route[]) {
    for (const role of roles) {
      for (const party of parties) {
        const expected = matrix[route][role][party]
        t.test(`${route} by ${role} of ${party} (${authorityOf[party]}) → ${expected}`, async (t) => {
          const before = await snapshot(db)
          const res = await call(route, role, party)
          if (expected >= 400) {
            expectProblem(t, res, expected)
            if (route === 'POST /v1/requests') t.same(await snapshot(db), before, 'a refused POST writes nothing')
          } else {
            t.equal(res.statusCode, expected, `answers ${expected}`, { body: res.body.slice(0, 300) })
            checkBody(t, route, role, party, res)
          }
        })
      }
    }
  }

  t.test('a hidden request looks exactly like one that does not exist', async (t) => {
    const missing = '01900000-0000-7000-8000-000000000000'
    for (const role of ['agency', 'liaison', 'auditor'] as Role[]) {
      const bearer = token('FR-BEPI', [role])
      for (const suffix of ['', '/events']) {
        const hidden = expectProblem(t, await get(app, bearer, `/v1/requests/${id}${suffix}`), 404, `${role}: hidden${suffix}`)
        const absent = expectProblem(t, await get(app, bearer, `/v1/requests/${missing}${suffix}`), 404, `${role}: absent${suffix}`)
        t.same({ ...hidden, detail: undefined }, { ...absent, detail: undefined }, `${role}${suffix}: same problem apart from the id in detail`)
        t.same(Object.keys(hidden).sort(), Object.keys(absent).sort(), `${role}${suffix}: same fields`)
        t.equal(hidden.detail?.replace(id, '<id>'), absent.detail?.replace(missing, '<id>'), `${role}${suffix}: same detail`)
      }
    }
  })

  t.test('a random well-formed UUID is 404 for a party, 403 for admin', async (t) => {
    const random = crypto.randomUUID()
    for (const party of ['sender', 'recipient'] as Party[]) {
      for (const role of ['agency', 'liaison', 'auditor'] as Role[]) {
        expectProblem(t, await get(app, token(authorityOf[party], [role]), `/v1/requests/${random}`), 404, `${role} of ${party}: GET`)
        expectProblem(t, await get(app, token(authorityOf[party], [role]), `/v1/requests/${random}/events`), 404, `${role} of ${party}: events`)
      }
      expectProblem(t, await get(app, token(authorityOf[party], ['admin']), `/v1/requests/${random}`), 403, `admin of ${party}: GET`)
      expectProblem(t, await get(app, token(authorityOf[party], ['admin']), `/v1/requests/${random}/events`), 403, `admin of ${party}: events`)
    }
  })

  t.test('several roles: the widest one counts', async (t) => {
    const auditorAdmin = await get(app, token('DE-BFJ', ['auditor', 'admin']), `/v1/requests/${id}`)
    t.equal(auditorAdmin.statusCode, 200, 'auditor+admin of a party reads')
    t.notOk('content' in auditorAdmin.json(), 'metadata only')
    const auditorLiaison = await get(app, token('DE-BFJ', ['auditor', 'liaison']), `/v1/requests/${id}`)
    t.same(auditorLiaison.json().content, body, 'auditor+liaison of a party sees the content')
    const adminAgency = await submit(app, token('TR-MOJ', ['admin', 'agency']), example('mla-request', 'VIS-admin-agency'))
    t.equal(adminAgency.statusCode, 201, 'admin+agency may submit')
  })
})
