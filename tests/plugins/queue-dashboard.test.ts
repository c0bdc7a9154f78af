// The bull-board queue dashboard at /admin/queues: admin role only (401
// without a valid token, 403 with another role, both problem+json), over the
// app's own Queue objects for the queues, whether or not workers run.
import t from 'tap'
import { buildApp } from '../helpers/app.js'
import { expectProblem, submit } from '../helpers/fixtures.js'
import { example } from '../helpers/app.js'

t.test('/admin/queues is for the admin role only', async (t) => {
  const { app, token } = await buildApp(t)
  const paths = ['/admin/queues', '/admin/queues/api/queues', '/admin/queues/static/favicon-32x32.png']
  for (const url of paths) {
    expectProblem(t, await app.inject({ method: 'GET', url }), 401, `${url} without a token`)
    expectProblem(t, await app.inject({ method: 'GET', url, headers: { authorization: 'Bearer not.a.token' } }), 401, `${url} with a bad token`)
    for (const role of ['agency', 'liaison', 'auditor'] as const) {
      expectProblem(t, await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token('TR-MOJ', [role])}` } }), 403, `${url} as ${role}`)
    }
  }
  expectProblem(t, await app.inject({ method: 'PUT', url: '/admin/queues/api/queues/delivery/pause', headers: { authorization: `Bearer ${token('TR-MOJ', ['agency', 'liaison', 'auditor'])}` } }), 403, 'an action, as a non-admin')

  const admin = { authorization: `Bearer ${token('EU-OVERSIGHT', ['admin'])}` }
  const page = await app.inject({ method: 'GET', url: '/admin/queues', headers: admin })
  t.equal(page.statusCode, 200, 'the page, for an admin')
  t.match(String(page.headers['content-type']), /^text\/html/)
  t.match(page.body, /<base href="\/admin\/queues\/"/, 'assets resolve under /admin/queues')
  const asset = await app.inject({ method: 'GET', url: '/admin/queues/static/favicon-32x32.png', headers: admin })
  t.equal(asset.statusCode, 200, 'its assets, for an admin')
})

t.test('the dashboard reads the delivery queue, with no worker in this process', async (t) => {
  const { app, token } = await buildApp(t)
  const body = example('mla-request', `DASH-${process.pid}`)
  body.urgency.requestedBy = '2099-12-31'
  t.equal((await submit(app, token('TR-MOJ'), body)).statusCode, 201)
  const admin = { authorization: `Bearer ${token('TR-MOJ', ['admin'])}` }
  const res = await app.inject({ method: 'GET', url: '/admin/queues/api/queues?activeQueue=delivery&status=latest&page=1', headers: admin })
  t.equal(res.statusCode, 200, { body: res.body.slice(0, 300) })
  const queues = (res.json() as { queues: Array<{ name: string, counts: Record<string, number> }> }).queues
  t.same(queues.map((q) => q.name).sort(), ['delivery'], 'the queue of workers/queues.ts (deadlines live in a sorted set of their own)')
})
