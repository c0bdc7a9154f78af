// Liveness (/healthz), readiness (/readyz: Redis and the queues) and the
// Prometheus metrics (/metrics, admin only): present, and moving with traffic.
import t, { type Test } from 'tap'
import { Queue } from 'bullmq'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import pino from 'pino'
import app, { serverOptions } from '../../src/app.js'
import type { GatewayConfig, Role } from '../../src/domain/types.js'
import { createMetrics } from '../../src/plugins/metrics.js'
import { startWorkers } from '../../workers/runtime.js'
import { queueNames, queuePrefix } from '../../workers/queues.js'
import { bearer, buildApp, demoConfig, devSecret, example, payloadKey } from '../helpers/app.js'
import { eventually, expectProblem, get, submit } from '../helpers/fixtures.js'
import { Receiver } from '../helpers/receiver.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { mintDevToken } from '../../src/auth/dev-token.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

let refs = 0
function mla (recipient = 'DE-BFJ'): Record<string, any> {
  const body = example('mla-request', `HEALTH-${process.pid}-${++refs}`)
  body.urgency.requestedBy = '2099-12-31'
  body.recipient = recipient
  return body
}

/** The value of one series (name and labels exactly as exported), or undefined. */
function series (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels)
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const have = new Map([...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]))
    if (have.size === wanted.length && wanted.every(([k, v]) => have.get(k) === v)) return Number(match[3])
  }
  return undefined
}

async function scrape (t: Test, server: FastifyInstance, adminToken: string): Promise<string> {
  const res = await get(server, adminToken, '/metrics')
  t.equal(res.statusCode, 200, 'metrics answered', { body: res.body.slice(0, 300) })
  return res.body
}

t.test('/healthz: the process is up', async (t) => {
  const { app: server } = await buildApp(t)
  const res = await server.inject({ method: 'GET', url: '/healthz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('/readyz: 503 problem+json while Redis is down, 200 once it is back; /healthz stays 200', async (t) => {
  const { app: server, redis } = await buildApp(t)
  t.same((await server.inject({ method: 'GET', url: '/readyz' })).json(), { status: 'ready' })
  await redis.stop()
  const down = await eventually('readyz to answer 503', async () => {
    const res = await server.inject({ method: 'GET', url: '/readyz' })
    return res.statusCode === 503 ? res : undefined
  }, 10_000)
  const body = expectProblem(t, down, 503, 'Redis stopped')
  t.match(String(body.detail), /Redis|queues/)
  t.ok(Number(down.headers['retry-after']) >= 1, 'with Retry-After')
  t.equal((await server.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'liveness does not depend on Redis')
  await redis.restart()
  await eventually('readyz to answer 200 again', async () => {
    const res = await server.inject({ method: 'GET', url: '/readyz' })
    return res.statusCode === 200 ? res : undefined
  }, 15_000)
  t.pass('ready again after the restart')
})

t.test('/metrics is for the admin role', async (t) => {
  const { app: server, token } = await buildApp(t)
  expectProblem(t, await server.inject({ method: 'GET', url: '/metrics' }), 401, 'no token')
  for (const role of ['agency', 'liaison', 'auditor'] satisfies Role[]) expectProblem(t, await get(server, token('TR-MOJ', [role]), '/metrics'), 403, role)
  const res = await get(server, token('TR-MOJ', ['admin']), '/metrics')
  t.equal(res.statusCode, 200)
  t.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/, 'Prometheus text format')
})

t.test('metrics are present and move with traffic', async (t) => {
  const { app: server, token, redis } = await buildApp(t)
  const admin = token('EU-OVERSIGHT', ['admin'])
  const before = await scrape(t, server, admin)
  t.ok(series(before, 'process_cpu_user_seconds_total') !== undefined, 'the default process metrics')
  t.equal(series(before, 'rogatory_store_up'), 1, 'the store gauges could be read')
  for (const queue of ['delivery']) {
    for (const state of ['waiting', 'active', 'delayed', 'failed']) t.equal(series(before, 'rogatory_queue_jobs', { queue, state }), 0, `${queue} ${state}`)
  }
  const openBefore = series(before, 'rogatory_requests_open', { sender: 'TR-MOJ', recipient: 'DE-BFJ', type: 'mla' }) ?? 0
  const postsBefore = series(before, 'rogatory_http_request_duration_seconds_count', { method: 'POST', route: '/v1/requests', status_code: '201' }) ?? 0

  const tr = token('TR-MOJ')
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const res = await submit(server, tr, mla())
    t.equal(res.statusCode, 201)
    ids.push(res.json().id as string)
  }
  t.equal((await get(server, tr, `/v1/requests/${ids[0]}`)).statusCode, 200)
  t.equal((await get(server, tr, '/v1/requests/no-such-id')).statusCode, 400)
  // A job in a queue, as the dispatcher would add one.
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null })
  const delivery = new Queue(queueNames.delivery, { connection, prefix: queuePrefix })
  t.teardown(async () => { await delivery.close(); connection.disconnect() })
  await delivery.add('probe', { requestId: ids[0] }, { delay: 3_600_000, jobId: `probe_${process.pid}` })
  // No worker runs here: one request's next deadline has come and nobody fired it.
  await connection.zadd('rog:deadlines', Date.now() - 1000, ids[1])

  await sleep(1100) // the store gauges are cached for a second
  const after = await scrape(t, server, admin)
  t.equal(series(after, 'rogatory_http_request_duration_seconds_count', { method: 'POST', route: '/v1/requests', status_code: '201' }), postsBefore + 3, 'the latency histogram counted the submissions')
  t.ok((series(after, 'rogatory_http_request_duration_seconds_bucket', { method: 'POST', route: '/v1/requests', status_code: '201', le: '+Inf' }) ?? 0) >= 3, 'with buckets')
  t.equal(series(after, 'rogatory_http_request_duration_seconds_count', { method: 'GET', route: '/v1/requests/:id', status_code: '200' }), 1, 'labelled by the route pattern')
  t.equal(series(after, 'rogatory_http_request_duration_seconds_count', { method: 'GET', route: '/v1/requests/:id', status_code: '400' }), 1, 'and by status')
  t.notOk(after.includes(ids[0]) || after.includes('no-such-id'), 'never by the raw URL')
  t.equal(series(after, 'rogatory_requests_open', { sender: 'TR-MOJ', recipient: 'DE-BFJ', type: 'mla' }), openBefore + 3, 'open requests per direction and type')
  t.equal(series(after, 'rogatory_requests_overdue', { sender: 'TR-MOJ', recipient: 'DE-BFJ', type: 'mla' }), 0, 'none overdue')
  t.equal(series(after, 'rogatory_queue_jobs', { queue: 'delivery', state: 'delayed' }), 1, 'queue depths')
  t.equal(series(after, 'rogatory_deadlines', { state: 'scheduled' }), 3, 'every open request is in the deadline set')
  t.equal(series(after, 'rogatory_deadlines', { state: 'due' }), 1, 'and the one whose deadline has come and was not fired is counted as due')
})

t.test('a scrape while Redis is down still answers, saying the store gauges are missing', async (t) => {
  const { app: server, token, redis } = await buildApp(t)
  await redis.stop()
  await sleep(1100)
  const text = await scrape(t, server, token('TR-MOJ', ['admin']))
  t.equal(series(text, 'rogatory_store_up'), 0)
  t.equal(series(text, 'rogatory_queue_jobs', { queue: 'delivery', state: 'waiting' }), undefined, 'no stale queue figures')
  await redis.restart()
})

async function gatewayWithWorkers (t: Test, config: GatewayConfig, redis: TestRedis): Promise<{ server: FastifyInstance }> {
  const metrics = createMetrics()
  const server = Fastify(serverOptions({ logLevel: process.env.TEST_LOG_LEVEL ?? 'silent', bodyLimitBytes: 1024 * 1024 }))
  await server.register(app, { gatewayConfig: config, redisUrl: redis.url, payloadKey, authDevSecret: devSecret, idempotencyTtlSeconds: 86400, metrics })
  await server.ready()
  t.teardown(() => server.close())
  const workers = await startWorkers({ redisUrl: redis.url, gatewayConfig: config, payloadKey, logger: pino({ level: 'silent' }), closeTimeoutMs: 1000, observer: metrics.workerObserver })
  t.teardown(() => workers.close())
  return { server }
}

t.test('with the workers in the process: delivery attempts and failures per authority, failed jobs per queue', async (t) => {
  const receiver = await Receiver.start(t)
  const config = demoConfig()
  const de = config.authorities.find((a) => a.id === 'DE-BFJ')
  const fr = config.authorities.find((a) => a.id === 'FR-BEPI')
  if (de === undefined || fr === undefined) throw new Error('demo config changed')
  de.webhook = receiver.webhook('/hooks/de', { retryScheduleSeconds: [0], timeoutMs: 2000 })
  // Its first attempt is the dispatcher's; the second runs in the delivery queue, and fails there too.
  fr.webhook = receiver.webhook('/hooks/fr', { retryScheduleSeconds: [0, 1], timeoutMs: 2000 })
  receiver.answer((delivery) => (delivery.path === '/hooks/fr' ? 500 : 204))
  const redis = await startRedis(t)
  const { server } = await gatewayWithWorkers(t, config, redis)
  const token = (authority: string, roles = ['agency']): string => mintDevToken(devSecret, { authority, roles, sub: `clerk@${authority}` }, 3600)

  t.equal((await submit(server, token('TR-MOJ'), mla('DE-BFJ'))).statusCode, 201)
  t.equal((await submit(server, token('TR-MOJ'), mla('FR-BEPI'))).statusCode, 201)
  const admin = token('TR-MOJ', ['admin'])
  const text = await eventually('the delivery counters', async () => {
    const res = await server.inject({ method: 'GET', url: '/metrics', headers: bearer(admin) })
    return (series(res.body, 'rogatory_delivery_attempts_total', { authority: 'DE-BFJ' }) ?? 0) >= 1 &&
      (series(res.body, 'rogatory_delivery_failures_total', { authority: 'FR-BEPI' }) ?? 0) >= 2 &&
      (series(res.body, 'rogatory_queue_job_failures_total', { queue: 'delivery' }) ?? 0) >= 1
      ? res.body
      : undefined
  }, 20_000)
  t.ok((series(text, 'rogatory_delivery_attempts_total', { authority: 'DE-BFJ' }) ?? 0) >= 1, 'DE-BFJ: attempts')
  t.equal(series(text, 'rogatory_delivery_failures_total', { authority: 'DE-BFJ' }) ?? 0, 0, 'DE-BFJ: no failure (its receiver answers 204)')
  t.ok((series(text, 'rogatory_delivery_attempts_total', { authority: 'FR-BEPI' }) ?? 0) >= 1, 'FR-BEPI: attempts')
  t.equal(series(text, 'rogatory_delivery_failures_total', { authority: 'FR-BEPI' }), 2, 'FR-BEPI: both attempts failed (its receiver answers 500), the immediate one and the queued one')
  t.ok((series(text, 'rogatory_queue_job_failures_total', { queue: 'delivery' }) ?? 0) >= 1, 'failed jobs of the delivery queue')
})
