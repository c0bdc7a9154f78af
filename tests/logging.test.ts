import Fastify from 'fastify'
import pino from 'pino'
import { Writable } from 'node:stream'
import t from 'tap'
import app, { serverOptions } from '../src/app.js'
import { loggerOptions } from '../src/logging.js'
import { bearer, demoConfig, devSecret, example, payloadKey } from './helpers/app.js'
import { mintDevToken } from '../src/auth/dev-token.js'
import { startRedis } from './helpers/redis.js'

function capture (): { lines: string[], stream: Writable } {
  const lines: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean))
      done()
    }
  })
  return { lines, stream }
}

const personalValues = (body: Record<string, any>): string[] => [
  ...body.persons.flatMap((person: any) => [person.familyName, person.givenNames, person.dateOfBirth, ...(person.identityDocuments ?? []).map((d: any) => d.number)]),
  body.facts.slice(0, 40)
].filter((value) => typeof value === 'string' && value.length > 3)

t.test('one log line per request, with its id, and no personal data', async (t) => {
  const redis = await startRedis(t)
  const { lines, stream } = capture()
  const fastify = Fastify({ ...serverOptions({ logLevel: 'info', bodyLimitBytes: 1024 * 1024 }), logger: { ...(loggerOptions('info') as object), stream } })
  await fastify.register(app, { gatewayConfig: demoConfig(), redisUrl: redis.url, payloadKey, authDevSecret: devSecret, idempotencyTtlSeconds: 86400 })
  t.teardown(() => fastify.close())
  const token = mintDevToken(devSecret, { authority: 'TR-MOJ', roles: ['agency'], sub: 'clerk' }, 600)
  const body = example('mla-request')
  const invalid = { ...body, persons: [{ ...body.persons[0], dateOfBirth: 'not a date' }] }
  const answers = [
    await fastify.inject({ method: 'POST', url: '/v1/requests', headers: bearer(token), payload: body }),
    await fastify.inject({ method: 'POST', url: '/v1/requests', headers: bearer(token), payload: invalid }),
    await fastify.inject({ method: 'POST', url: '/v1/requests', headers: { ...bearer(token), 'content-type': 'application/json' }, payload: '{"facts": "unterminated' })
  ]
  t.same(answers.map((res) => res.statusCode), [201, 400, 400])
  const completed = lines.map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'request completed')
  t.equal(completed.length, 3, 'exactly one line per request')
  t.equal(new Set(completed.map((entry) => entry.reqId)).size, 3, 'each with its own request id')
  t.same(completed.map((entry) => entry.res.statusCode), [201, 400, 400])
  const all = lines.join('\n')
  for (const value of personalValues(body)) t.notOk(all.includes(value), `no "${value}" in the log`)
})

t.test('the redaction paths censor personal fields wherever a body is logged', async (t) => {
  const { lines, stream } = capture()
  const log = pino({ ...(loggerOptions('info') as object) }, stream)
  const body = example('mla-request')
  const repatriation = example('repatriation-request')
  const secrets = [
    ...personalValues(body),
    ...[repatriation.person.familyName, repatriation.person.dateOfBirth, ...repatriation.nationalityEvidence.map((e: any) => e.number)].filter((v) => typeof v === 'string')
  ]
  log.info({ body }, 'a body')
  log.info({ content: repatriation }, 'a stored request')
  const all = lines.join('\n')
  for (const value of secrets) t.notOk(all.includes(value), `"${value}" redacted`)
  t.match(all, /\[redacted\]/)
  t.same(body, example('mla-request'), 'the logged object itself is left as it was')
})
