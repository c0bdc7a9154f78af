// Per-authority rate limits (src/plugins/rate-limit.ts): counted in Redis per
// authority of a verified token (per client address without one), configured
// per authority in the gateway config; past the limit 429 problem+json with
// Retry-After. A flood from one authority must not slow the others.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { spawn } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import app, { serverOptions, type AppOptions } from '../../src/app.js'
import { mintDevToken } from '../../src/auth/dev-token.js'
import type { GatewayConfig } from '../../src/domain/types.js'
import { demoConfig, devSecret, example, payloadKey } from '../helpers/app.js'
import { expectProblem, get, redisClient, snapshot, submit, type InjectResponse } from '../helpers/fixtures.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'

const token = (authority: string, roles = ['agency', 'liaison']): string => mintDevToken(devSecret, { authority, roles, sub: `clerk@${authority}` }, 3600)

async function gateway (t: Test, redis: TestRedis, config: GatewayConfig, extra: Partial<AppOptions> = {}): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions({ logLevel: process.env.TEST_LOG_LEVEL ?? 'silent', bodyLimitBytes: 1024 * 1024 }))
  await fastify.register(app, { gatewayConfig: config, redisUrl: redis.url, payloadKey, authDevSecret: devSecret, idempotencyTtlSeconds: 86400, ...extra })
  await fastify.ready()
  t.teardown(() => fastify.close())
  return fastify
}

function withLimit (authority: string, max: number, timeWindowSeconds = 60): GatewayConfig {
  const config = demoConfig()
  const entry = config.authorities.find((a) => a.id === authority)
  if (entry === undefined) throw new Error(`no ${authority} in the demo config`)
  entry.rateLimit = { max, timeWindowSeconds }
  return config
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

let refs = 0
const mla = (): Record<string, any> => {
  const body = example('mla-request', `RL-${process.pid}-${++refs}`)
  body.urgency.requestedBy = '2099-12-31'
  return body
}

function expect429 (t: Test, res: InjectResponse, limit: number): void {
  expectProblem(t, res, 429, 'over the limit')
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After in seconds (${String(res.headers['retry-after'])})`)
  t.equal(res.headers['x-ratelimit-limit'], String(limit), 'X-RateLimit-Limit')
  t.equal(res.headers['x-ratelimit-remaining'], '0', 'X-RateLimit-Remaining 0')
}

t.test('the limit of an authority comes from the config; every answer says where the caller stands', async (t) => {
  const redis = await startRedis(t)
  const server = await gateway(t, redis, withLimit('TR-MOJ', 5))
  const tr = token('TR-MOJ')
  const first = await get(server, tr, '/v1/requests?box=outbox')
  t.equal(first.statusCode, 200)
  t.equal(first.headers['x-ratelimit-limit'], '5', 'the configured limit')
  t.equal(first.headers['x-ratelimit-remaining'], '4')
  t.ok(Number(first.headers['x-ratelimit-reset']) > 0 && Number(first.headers['x-ratelimit-reset']) <= 60, 'seconds until the window ends')
  const other = await get(server, token('DE-BFJ'), '/v1/requests?box=outbox')
  t.equal(other.headers['x-ratelimit-limit'], '600', 'an authority without a rateLimit block: the default, 600 per minute')
  for (let i = 0; i < 4; i++) t.equal((await get(server, tr, '/v1/requests?box=outbox')).statusCode, 200)
  expect429(t, await get(server, tr, '/v1/requests?box=outbox'), 5)
  t.test('one budget for all the authority\'s tokens and routes', async (t) => {
    expect429(t, await get(server, token('TR-MOJ', ['auditor']), '/v1/audit'), 5)
    expect429(t, await submit(server, token('TR-MOJ', ['agency']), mla()), 5)
  })
  t.test('a refused request writes nothing to the records\' database (the counters live in their own)', async (t) => {
    const db = await redisClient(t, redis.url)
    const before = await snapshot(db)
    expect429(t, await submit(server, tr, mla()), 5)
    t.same(await snapshot(db), before)
    const counters = new Redis(redis.url, { db: 1, lazyConnect: true })
    t.teardown(() => counters.disconnect())
    await counters.connect()
    t.ok(Number(await counters.get('rog:rl:authority:TR-MOJ')) > 5, 'the counter, in database 1')
  })
})

// The flood comes from another process, as it would: the measurement is of
// what the gateway does with it, not of a load generator sharing its event loop.
// It is paced (floodRatePerSecond, 1,200 times the limit's rate) rather than as
// fast as the machine goes: on two cores an unpaced flooder starves the gateway
// of CPU, and the test would measure the machine, not the limiter.
const floodRatePerSecond = 400
const floodScript = `
const { FLOOD_URL: url, FLOOD_TOKEN: token, FLOOD_BODY: body, FLOOD_RATE: rate } = process.env
const counts = {}
let sample
let stop = false
let answered = 0
let sent = 0
const start = Date.now()
process.on('SIGTERM', () => { stop = true })
async function lane () {
  while (!stop) {
    const wait = start + (sent++ * 1000) / Number(rate) - Date.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    if (stop) break
    try {
      const res = await fetch(url, { method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body })
      const text = await res.text()
      counts[res.status] = (counts[res.status] || 0) + 1
      if (++answered === 50) process.stdout.write('flowing\\n')
      if (res.status === 429 && sample === undefined) sample = { headers: Object.fromEntries(res.headers), body: text }
    } catch (error) {
      counts.error = (counts.error || 0) + 1
    }
  }
}
Promise.all(Array.from({ length: 8 }, lane)).then(() => process.stdout.write(JSON.stringify({ counts, sample }) + '\\n'))
`

interface FloodResult { counts: Record<string, number>, sample?: { headers: Record<string, string>, body: string } }

/** Starts the flood; resolves once it is flowing (50 answers in). */
async function startFlood (url: string, token: string, body: string): Promise<{ stop: () => Promise<FloodResult> }> {
  const child = spawn(process.execPath, ['-e', floodScript], { env: { ...process.env, FLOOD_URL: url, FLOOD_TOKEN: token, FLOOD_BODY: body, FLOOD_RATE: String(floodRatePerSecond) }, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    const check = (): void => { if (out.includes('flowing')) { child.stdout.off('data', check); resolve() } }
    child.stdout.on('data', check)
    child.once('exit', () => reject(new Error('the flood process exited before it was flowing')))
  })
  return {
    stop: async () => {
      child.kill('SIGTERM')
      await exited
      const line = out.split('\n').find((l) => l.startsWith('{'))
      return line === undefined ? { counts: {} } : JSON.parse(line) as FloodResult
    }
  }
}

t.test('a flood from one authority: 429s for it, normal service for the others', async (t) => {
  const redis = await startRedis(t)
  const limit = 20
  const server = await gateway(t, redis, withLimit('TR-MOJ', limit))
  await server.listen({ port: 0, host: '127.0.0.1' })
  const origin = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`
  const flooder = token('TR-MOJ')
  const other = token('DE-BFJ')

  // Spend the flooder's budget on real work first.
  const accepted = await Promise.all(Array.from({ length: limit }, async () => await submit(server, flooder, mla())))
  t.same(accepted.map((r) => r.statusCode), Array(limit).fill(201), 'within the limit: accepted')

  const statuses = new Set<number>()
  async function timedGet (): Promise<number> {
    const started = performance.now()
    const res = await fetch(`${origin}/v1/requests?box=inbox`, { headers: { authorization: `Bearer ${other}` } })
    await res.arrayBuffer()
    statuses.add(res.status)
    return performance.now() - started
  }

  const quiet: number[] = []
  const flooded: number[] = []
  const answers: Record<string, number> = {}
  let sample: FloodResult['sample']
  for (let i = 0; i < 5; i++) await timedGet() // warm up the connection and the code paths
  // Quiet and flooded rounds alternate, so that a change in the machine's load hits both alike.
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 20; i++) quiet.push(await timedGet())
    const flood = await startFlood(`${origin}/v1/requests`, flooder, JSON.stringify(mla()))
    for (let i = 0; i < 20; i++) flooded.push(await timedGet())
    const result = await flood.stop()
    for (const [status, n] of Object.entries(result.counts)) answers[status] = (answers[status] ?? 0) + n
    sample ??= result.sample
  }
  const total = Object.values(answers).reduce((a, b) => a + b, 0)
  t.ok(total >= 100, `the flood was a flood (${total} requests)`)
  t.same(Object.keys(answers), ['429'], 'every request of the flood was refused with 429')
  t.equal(sample?.headers['content-type']?.startsWith('application/problem+json'), true, 'as problem+json')
  t.ok(Number(sample?.headers['retry-after']) >= 1, 'with Retry-After')
  t.equal(sample?.headers['x-ratelimit-remaining'], '0')
  t.same([...statuses], [200], 'the other authority\'s requests all succeeded')
  const quietMedian = median(quiet)
  const floodedMedian = median(flooded)
  t.comment(`median latency of the other authority: ${quietMedian.toFixed(2)} ms quiet, ${floodedMedian.toFixed(2)} ms during the flood`)
  t.ok(floodedMedian <= quietMedian * 5, `normal latency for the other authority during the flood (median ${floodedMedian.toFixed(2)} ms vs ${quietMedian.toFixed(2)} ms)`)
})

t.test('a token that does not verify spends nobody\'s budget: such requests count per client address', async (t) => {
  const redis = await startRedis(t)
  const server = await gateway(t, redis, withLimit('TR-MOJ', 3), { rateLimit: { anonymous: { max: 4, timeWindowSeconds: 60 } } })
  const forged = mintDevToken('not-the-dev-secret-0123456789abcdef', { authority: 'TR-MOJ', roles: ['agency'], sub: 'mallory' }, 3600)
  for (let i = 0; i < 4; i++) expectProblem(t, await get(server, forged, '/v1/requests?box=outbox'), 401, `forged token ${i + 1}`)
  const anonymous = await server.inject({ method: 'GET', url: '/v1/schemas' })
  expect429(t, anonymous, 4)
  t.equal(anonymous.headers['x-ratelimit-limit'], '4', 'the anonymous limit')
  expectProblem(t, await get(server, forged, '/v1/requests?box=outbox'), 429, 'the forger, now over the anonymous limit')
  const genuine = await get(server, token('TR-MOJ'), '/v1/requests?box=outbox')
  t.equal(genuine.statusCode, 200, 'TR-MOJ\'s own budget is untouched')
  t.equal(genuine.headers['x-ratelimit-remaining'], '2')
})

t.test('the counters are in Redis: two API processes share them', async (t) => {
  const redis = await startRedis(t)
  const config = withLimit('NL-AIRS', 4)
  const one = await gateway(t, redis, config)
  const two = await gateway(t, redis, config)
  const nl = token('NL-AIRS')
  t.equal((await get(one, nl, '/v1/requests?box=inbox')).statusCode, 200)
  t.equal((await get(two, nl, '/v1/requests?box=inbox')).statusCode, 200)
  t.equal((await get(one, nl, '/v1/requests?box=inbox')).statusCode, 200)
  t.equal((await get(two, nl, '/v1/requests?box=inbox')).statusCode, 200)
  expect429(t, await get(one, nl, '/v1/requests?box=inbox'), 4)
  expect429(t, await get(two, nl, '/v1/requests?box=inbox'), 4)
})

t.test('limits of 100 or more are taken from Redis in leases of 1%: one round trip per lease, never more than the limit', async (t) => {
  const redis = await startRedis(t)
  const counters = new Redis(redis.url, { db: 1, lazyConnect: true })
  t.teardown(() => counters.disconnect())
  await counters.connect()
  const nl = token('NL-AIRS')

  t.test('one process: the counter moves a lease at a time', async (t) => {
    const server = await gateway(t, redis, withLimit('NL-AIRS', 10_000))
    for (let i = 1; i <= 150; i++) {
      const res = await get(server, nl, '/v1/requests?box=inbox')
      if (res.statusCode !== 200 || res.headers['x-ratelimit-remaining'] !== String(10_000 - i)) {
        t.fail(`request ${i}: ${res.statusCode}, remaining ${String(res.headers['x-ratelimit-remaining'])}`)
        return
      }
    }
    t.equal(await counters.get('rog:rl:authority:NL-AIRS'), '200', '150 requests took two leases of 100')
    await counters.del('rog:rl:authority:NL-AIRS')
  })

  t.test('three processes share the limit: none is exceeded, and every number is used once all are busy', async (t) => {
    const limit = 300
    const config = withLimit('NL-AIRS', limit)
    const servers = [await gateway(t, redis, config), await gateway(t, redis, config), await gateway(t, redis, config)]
    let accepted = 0
    for (let i = 0; i < 2 * limit; i++) {
      const res = await get(servers[i % 3], nl, '/v1/requests?box=inbox')
      if (res.statusCode === 200) accepted++
      else if (res.statusCode !== 429) t.fail(`unexpected ${res.statusCode}`)
    }
    t.equal(accepted, limit, `exactly ${limit} accepted`)
  })

  t.test('a lease ends with its window', async (t) => {
    await counters.del('rog:rl:authority:NL-AIRS')
    const server = await gateway(t, redis, withLimit('NL-AIRS', 300, 1))
    t.equal((await get(server, nl, '/v1/requests?box=inbox')).headers['x-ratelimit-remaining'], '299')
    t.equal((await get(server, nl, '/v1/requests?box=inbox')).headers['x-ratelimit-remaining'], '298', 'from the lease')
    await sleep(1100)
    t.equal(await counters.exists('rog:rl:authority:NL-AIRS'), 0, 'the window has ended in Redis')
    t.equal((await get(server, nl, '/v1/requests?box=inbox')).headers['x-ratelimit-remaining'], '299', 'a new window, a new lease: the old one\'s last number is not used')
  })
})

t.test('the config block is validated', async (t) => {
  const { parseGatewayConfig } = await import('../../src/config/gateway-config.js')
  const config = demoConfig() as unknown as { authorities: Array<Record<string, unknown>> }
  config.authorities[0].rateLimit = { max: 0 }
  t.throws(() => parseGatewayConfig(config), /\/authorities\/0\/rateLimit\/max/)
  config.authorities[0].rateLimit = { max: 100 }
  const parsed = parseGatewayConfig(config)
  t.same(parsed.authorities[0].rateLimit, { max: 100, timeWindowSeconds: 60 }, 'the window defaults to 60 s')
})
