import t from 'tap'
import { illFormedStringPointer } from '../../src/http/well-formed.js'
import { bearer, buildApp, example } from '../helpers/app.js'

t.test('a lone surrogate is found wherever it is, and named by its pointer', async (t) => {
  t.equal(illFormedStringPointer({ a: 'fine', b: ['ok', { c: 'x\ud800' }] }), '/b/1/c')
  t.equal(illFormedStringPointer({ ['k\udfff']: 1 }), '/k\udfff')
  t.equal(illFormedStringPointer('\udc00'), '/')
  t.equal(illFormedStringPointer({ a: 'emoji 😀 and accents çğış' }), undefined)
})

t.test('two references that differ only in lone surrogates cannot collide: both are refused', async (t) => {
  const { app, token } = await buildApp(t)
  for (const senderReference of ['X\ud800', 'X\udfff']) {
    const res = await app.inject({ method: 'POST', url: '/v1/requests', headers: bearer(token('TR-MOJ')), payload: example('mla-request', senderReference) })
    t.equal(res.statusCode, 400)
    t.same(res.json().errors, [{ pointer: '/senderReference', detail: 'is not well-formed Unicode' }])
  }
  const step = await app.inject({
    method: 'POST',
    url: '/v1/requests/01a23382-0eca-7feb-b6fe-d1c01961dd1b/clarification-request',
    headers: bearer(token('DE-BFJ')),
    payload: { questions: 'Which account?\ud800' }
  })
  t.equal(step.statusCode, 400, 'lifecycle steps too')
})

t.test('an upper-case id reaches the request in lifecycle steps as in reads', async (t) => {
  const { app, token } = await buildApp(t)
  const created = await app.inject({ method: 'POST', url: '/v1/requests', headers: bearer(token('TR-MOJ')), payload: example('mla-request') })
  const id = created.json().id as string
  const ack = await app.inject({ method: 'POST', url: `/v1/requests/${id.toUpperCase()}/acknowledgement`, headers: bearer(token('DE-BFJ')), payload: {} })
  t.equal(ack.statusCode, 200)
  t.equal(ack.json().status, 'acknowledged')
})
