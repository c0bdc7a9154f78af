// Security headers (@fastify/helmet), the CORS origin header, and load
// shedding (@fastify/under-pressure) answering 503 problem+json.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import app, { serverOptions, type AppOptions } from '../../src/app.js'
import { buildApp, demoConfig, devSecret, payloadKey } from '../helpers/app.js'
import { expectProblem, type InjectResponse } from '../helpers/fixtures.js'
import { startRedis } from '../helpers/redis.js'

function expectSecurityHeaders (t: Test, res: InjectResponse, what: string): void {
  t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  t.match(String(res.headers['strict-transport-security']), /max-age=\d+/, `${what}: HSTS`)
  t.equal(res.headers['x-frame-options'], 'SAMEORIGIN', `${what}: no framing by others`)
  t.equal(res.headers['referrer-policy'], 'no-referrer', `${what}: no referrer`)
  t.equal(res.headers['cross-origin-resource-policy'], 'same-origin', `${what}: CORP`)
  t.equal(res.headers['access-control-allow-origin'], '*', `${what}: CORS origin`)
  t.notOk(res.headers['x-powered-by'], `${what}: no x-powered-by`)
}

t.test('security headers on every answer, errors included', async (t) => {
  const { app: server, token } = await buildApp(t)
  const answers: Array<[string, InjectResponse]> = [
    ['200', await server.inject({ method: 'GET', url: '/healthz' })],
    ['401', await server.inject({ method: 'GET', url: '/v1/requests?box=inbox' })],
    ['400', await server.inject({ method: 'GET', url: '/v1/requests?box=nope', headers: { authorization: `Bearer ${token('TR-MOJ')}` } })],
    ['404', await server.inject({ method: 'GET', url: '/no/such/route' })]
  ]
  for (const [what, res] of answers) {
    expectSecurityHeaders(t, res, what)
    t.equal(res.headers['content-security-policy'], "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'", `${what}: an API answer allows nothing`)
  }
  const dashboard = await server.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: `Bearer ${token('TR-MOJ', ['admin'])}` } })
  t.equal(dashboard.statusCode, 200)
  expectSecurityHeaders(t, dashboard, 'dashboard')
  t.match(String(dashboard.headers['content-security-policy']), /script-src 'self'/, 'the dashboard runs its own scripts only')
  t.notMatch(String(dashboard.headers['content-security-policy']), /script-src[^;]*unsafe/, 'no inline or evaluated script')
})

const busyWait = (ms: number): void => {
  const until = Date.now() + ms
  while (Date.now() < until) { /* the event loop is blocked on purpose */ }
}
const tick = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function gateway (t: Test, extra: Partial<AppOptions>): Promise<FastifyInstance> {
  const redis = await startRedis(t)
  const fastify = Fastify(serverOptions({ logLevel: process.env.TEST_LOG_LEVEL ?? 'silent', bodyLimitBytes: 1024 * 1024 }))
  await fastify.register(app, { gatewayConfig: demoConfig(), redisUrl: redis.url, payloadKey, authDevSecret: devSecret, idempotencyTtlSeconds: 86400, ...extra })
  await fastify.ready()
  t.teardown(() => fastify.close())
  return fastify
}

t.test('load shedding: past the event-loop delay threshold, 503 problem+json with Retry-After; liveness still answers', async (t) => {
  const server = await gateway(t, { underPressure: { maxEventLoopDelayMs: 50, sampleIntervalMs: 100, retryAfterSeconds: 7 } })
  t.equal((await server.inject({ method: 'GET', url: '/v1/schemas' })).statusCode, 200, 'served while the loop is idle')

  let shed: InjectResponse | undefined
  let live: InjectResponse | undefined
  for (let attempt = 0; attempt < 10 && shed === undefined; attempt++) {
    busyWait(400)
    // The sampler is overdue: it runs first, records the delay, and the next requests see it.
    await tick(1)
    const [schemas, healthz] = await Promise.all([
      server.inject({ method: 'GET', url: '/v1/schemas' }),
      server.inject({ method: 'GET', url: '/healthz' })
    ])
    if (schemas.statusCode === 503) { shed = schemas; live = healthz }
  }
  if (shed === undefined || live === undefined) {
    t.fail('no request was shed while the event loop was blocked')
    return
  }
  const body = expectProblem(t, shed, 503, 'shed')
  t.match(String(body.detail), /overloaded/)
  t.equal(shed.headers['retry-after'], '7', 'Retry-After as configured')
  t.equal(live.statusCode, 200, '/healthz is exempt: a busy process is not a dead one')

  await tick(350)
  t.equal((await server.inject({ method: 'GET', url: '/v1/schemas' })).statusCode, 200, 'served again once the loop is idle')
})

t.test('load shedding can be switched off (threshold 0)', async (t) => {
  const server = await gateway(t, { underPressure: { maxEventLoopDelayMs: 0, sampleIntervalMs: 100 } })
  busyWait(400)
  await tick(1)
  t.equal((await server.inject({ method: 'GET', url: '/v1/schemas' })).statusCode, 200)
})
