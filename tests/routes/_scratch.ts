import { buildApp, example, bearer } from '../helpers/app.js'
const teardowns: Array<() => unknown> = []
const t = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }
const { app, token } = await buildApp(t, { bodyLimitBytes: 4096 })
const tok = token('TR-MOJ', ['agency'])
const show = (label: string, r: any) => console.log(label, r.statusCode, r.headers['content-type'], r.body.slice(0, 400))
const body = example('mla-request', 'x1')
show('create', await app.inject({ method: 'POST', url: '/v1/requests', headers: bearer(tok), payload: body }))
const small = example('mla-request', 'x2')
show('ok', await app.inject({ method: 'POST', url: '/v1/requests', headers: bearer(tok), payload: small }))
show('text', await app.inject({ method: 'POST', url: '/v1/requests', headers: { ...bearer(tok), 'content-type': 'text/plain' }, payload: 'hello' }))
show('badjson', await app.inject({ method: 'POST', url: '/v1/requests', headers: { ...bearer(tok), 'content-type': 'application/json' }, payload: '{"a":' }))
show('big', await app.inject({ method: 'POST', url: '/v1/requests', headers: { ...bearer(tok), 'content-type': 'application/json' }, payload: JSON.stringify({ ...example('mla-request'), facts: 'x'.repeat(5000) }) }))
const nt = example('mla-request', 'x3'); delete nt.type
show('notype', await app.inject({ method: 'POST', url: '/v1/requests', headers: bearer(tok), payload: nt }))
show('Bearer empty', await app.inject({ method: 'GET', url: '/v1/requests', headers: { authorization: 'Bearer ' } }))
show('Bearer abc.def', await app.inject({ method: 'GET', url: '/v1/requests', headers: { authorization: 'Bearer abc.def' } }))
show('none', await app.inject({ method: 'GET', url: '/v1/requests' }))
show('empty body', await app.inject({ method: 'POST', url: '/v1/requests', headers: { ...bearer(tok), 'content-type': 'application/json' } }))
show('array', await app.inject({ method: 'POST', url: '/v1/requests', headers: { ...bearer(tok), 'content-type': 'application/json' }, payload: '[]' }))
show('null', await app.inject({ method: 'POST', url: '/v1/requests', headers: { ...bearer(tok), 'content-type': 'application/json' }, payload: 'null' }))
show('proto', await app.inject({ method: 'POST', url: '/v1/requests', headers: { ...bearer(tok), 'content-type': 'application/json' }, payload: '{"__proto__":{"a":1}}' }))
show('nocontenttype', await app.inject({ method: 'POST', url: '/v1/requests', headers: { ...bearer(tok) }, payload: Buffer.from('{}') }))
for (const fn of teardowns.reverse()) await fn()
