// Durability and recovery: an accepted request (201) survives the gateway's
// restart and a crash of Redis itself (SIGKILL; AOF with appendfsync always),
// and while Redis is down the gateway answers 503 quickly instead of hanging,
// then recovers by itself once Redis is back.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, example } from '../helpers/app.js'
import { eventually, expectProblem, get, submit } from '../helpers/fixtures.js'
import { startRedis } from '../helpers/redis.js'

const N = 50

/** Submits n MLA requests TR-MOJ → DE-BFJ, each answered 201; returns their ids. */
async function submitMany (t: Test, app: FastifyInstance, token: string, label: string, n = N): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const res = await submit(app, token, example('mla-request', `${label}-${i}`))
    if (res.statusCode !== 201) t.fail(`request ${i} answered ${res.statusCode}`, { body: res.body.slice(0, 300) })
    else ids.push(res.json().id)
  }
  t.equal(ids.length, n, `${n} requests answered 201`)
  return ids
}

/** Reads each id as the sender and checks it is the request that was submitted. */
async function expectAllReadable (t: Test, app: FastifyInstance, token: string, ids: string[], label: string): Promise<void> {
  let readable = 0
  for (const [i, id] of ids.entries()) {
    const res = await get(app, token, `/v1/requests/${id}`)
    if (res.statusCode === 200 && res.json().senderReference === `${label}-${i}` && res.json().content?.facts === example('mla-request').facts) readable++
    else t.fail(`request ${id} (${label}-${i}) is not readable`, { status: res.statusCode, body: res.body.slice(0, 300) })
  }
  t.equal(readable, ids.length, `all ${ids.length} requests readable with their content`)
}

async function outboxIds (app: FastifyInstance, token: string): Promise<string[]> {
  const res = await get(app, token, '/v1/requests?box=outbox&limit=100')
  if (res.statusCode !== 200) throw new Error(`outbox answered ${res.statusCode}: ${res.body}`)
  return res.json().items.map((item: { id: string }) => item.id)
}

t.test('every accepted request survives closing the gateway and starting a new one', async (t) => {
  const first = await buildApp(t)
  const sender = first.token('TR-MOJ', ['agency'])
  const ids = await submitMany(t, first.app, sender, 'RESTART-A')
  await first.app.close()

  const second = await buildApp(t, { redis: first.redis })
  await expectAllReadable(t, second.app, sender, ids, 'RESTART-A')
  t.same((await outboxIds(second.app, sender)).sort(), [...ids].sort(), 'the sender\'s outbox lists all of them')
})

t.test('every accepted request survives a SIGKILL of redis-server', async (t) => {
  const redis = await startRedis(t, { appendfsync: 'always' })
  const first = await buildApp(t, { redis })
  const sender = first.token('TR-MOJ', ['agency'])
  const ids = await submitMany(t, first.app, sender, 'CRASH-B')

  const pid = redis.pid
  await redis.kill()
  t.equal(redis.pid, undefined, `redis-server (pid ${String(pid)}) is dead`)
  await redis.restart()
  t.not(redis.pid, pid, 'and a new one runs on the same data')

  const fresh = await buildApp(t, { redis })
  await expectAllReadable(t, fresh.app, sender, ids, 'CRASH-B')
  t.same((await outboxIds(fresh.app, sender)).sort(), [...ids].sort(), `the sender's outbox lists all ${N}`)
  const inbox = await get(fresh.app, fresh.token('DE-BFJ', ['liaison']), '/v1/requests?box=inbox&limit=100')
  t.equal(inbox.json().items.length, N, `the recipient's inbox lists all ${N}`)
})

t.test('while Redis is down the gateway answers 503 quickly, and recovers when it is back', async (t) => {
  const { app, redis, token } = await buildApp(t)
  const sender = token('TR-MOJ', ['agency'])
  const before = await submit(app, sender, example('mla-request', 'OUTAGE-before'))
  t.equal(before.statusCode, 201, 'a request accepted before the outage')
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'ready before the outage')

  await redis.kill()

  const body = example('mla-request', 'OUTAGE-during')
  const started = Date.now()
  const during = await submit(app, sender, body, { 'idempotency-key': 'outage-1' })
  const elapsed = Date.now() - started
  expectProblem(t, during, 503, 'POST /v1/requests while Redis is down')
  t.ok(elapsed < 6000, `answered in ${elapsed} ms (< 6000 ms; the command timeout is 5 s)`)
  t.ok(during.headers['retry-after'] !== undefined, 'with Retry-After')

  const readStarted = Date.now()
  expectProblem(t, await get(app, sender, `/v1/requests/${before.json().id as string}`), 503, 'GET /v1/requests/{id} while Redis is down')
  t.ok(Date.now() - readStarted < 6000, 'quickly')

  const readyStarted = Date.now()
  expectProblem(t, await app.inject({ method: 'GET', url: '/readyz' }), 503, 'GET /readyz while Redis is down')
  t.ok(Date.now() - readyStarted < 6000, 'quickly')
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'the process itself stays alive (/healthz 200)')

  await redis.restart()

  const recoveredAt = Date.now()
  const retried = await eventually('POST /v1/requests to answer 201 after the restart', async () => {
    const res = await submit(app, sender, body, { 'idempotency-key': 'outage-1' })
    return res.statusCode === 201 ? res : undefined
  }, 15_000, 200)
  t.pass(`the same gateway accepted the retried request ${Date.now() - recoveredAt} ms after Redis came back`)
  t.equal(retried.json().senderReference, 'OUTAGE-during')
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'ready again')
  const read = await get(app, sender, `/v1/requests/${before.json().id as string}`)
  t.equal(read.statusCode, 200, 'the request accepted before the outage is still there')
  t.same((await outboxIds(app, sender)).sort(), [before.json().id, retried.json().id].sort(), 'exactly the two accepted requests: the refused attempt left nothing behind')
})
