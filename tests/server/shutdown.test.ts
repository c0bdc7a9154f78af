// Graceful shutdown of the real server (src/server.ts, as `npm start` runs it:
// API and workers in one process): on SIGTERM it stops accepting, finishes
// every request in flight, the workers finish or release their jobs, and the
// process exits 0 within its bound (10 s). No request in flight is cut off:
// each gets a complete 201, slow uploads included; one that reaches the server
// after the close began gets 503 problem+json. "In flight" is made exact with
// Expect: 100-continue: the server's 100 Continue says it has the request (a
// request still in the kernel's queue when the listener closes is refused by
// TCP, which no server can answer).
import t from 'tap'
import { spawn } from 'node:child_process'
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packageRoot } from '../../src/config/env.js'
import { findFreePort } from '../../src/store/embedded-redis.js'
import { mintDevToken } from '../../src/auth/dev-token.js'
import { devSecret, example } from '../helpers/app.js'
import { redisClient } from '../helpers/fixtures.js'
import { startRedis } from '../helpers/redis.js'
import { createKeys } from '../../src/store/keys.js'

const boundMs = 10_000
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

interface Answer { status?: number, contentType?: string, body?: string, error?: string, continued: boolean }

let refs = 0
function body (): string {
  const b = example('mla-request', `SHUTDOWN-${process.pid}-${++refs}`)
  b.urgency.requestedBy = '2099-12-31'
  return JSON.stringify(b)
}

/**
 * Sends a POST on a connection of its own, with Expect: 100-continue: the
 * server's "100 Continue" says it has the request (it is in flight from then
 * on). The body goes out at once after it, or when the caller writes it.
 * `answer` resolves with the complete answer, or the error that cut it.
 */
function post (port: number, token: string, payload: string, opts: { holdBody?: boolean } = {}): { req: ClientRequest, answer: Promise<Answer>, continued: Promise<boolean> } {
  const req = httpRequest({
    host: '127.0.0.1',
    port,
    path: '/v1/requests',
    method: 'POST',
    agent: false,
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
      expect: '100-continue'
    }
  })
  let continued = false
  const onContinue = new Promise<boolean>((resolve) => {
    req.once('continue', () => {
      continued = true
      if (opts.holdBody !== true) req.end(payload)
      resolve(true)
    })
    req.once('close', () => resolve(continued))
  })
  const answer = new Promise<Answer>((resolve) => {
    req.once('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message, continued }))
    req.once('response', (res: IncomingMessage) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.once('end', () => resolve({ status: res.statusCode, contentType: String(res.headers['content-type']), body: text, continued }))
      res.once('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message, continued }))
      res.once('aborted', () => resolve({ error: 'aborted', continued }))
    })
  })
  return { req, answer, continued: onContinue }
}

t.test('SIGTERM: requests in flight are answered, the process exits 0 within its bound', async (t) => {
  const redis = await startRedis(t)
  const db = await redisClient(t, redis.url)
  const dataDir = await mkdtemp(join(tmpdir(), 'rogatory-shutdown-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const port = await findFreePort()
  const child = spawn(process.execPath, ['--import', 'tsx', join('src', 'server.ts')], {
    cwd: packageRoot(),
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      AUTH_DEV_SECRET: devSecret,
      DATA_DIR: dataDir,
      RUN_WORKERS: 'true',
      LOG_LEVEL: 'info',
      GATEWAY_CONFIG: ''
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }))
  })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  })

  // Up: /healthz answers (tsx compiles on the way in, so allow for a slow start).
  const started = Date.now()
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((res) => res.ok, () => false)
    if (ok) break
    if (child.exitCode !== null || Date.now() - started > 60_000) {
      t.fail('the server did not come up', { output })
      return
    }
    await sleep(200)
  }

  const token = mintDevToken(devSecret, { authority: 'TR-MOJ', roles: ['agency'], sub: 'clerk@tr-moj' }, 3600)
  // In flight when the signal comes: slow uploads (the server has their
  // headers, their bodies come after the signal, in two parts) and complete
  // requests still being handled.
  const slow = Array.from({ length: 15 }, () => {
    const payload = body()
    return { payload, ...post(port, token, payload, { holdBody: true }) }
  })
  const full = Array.from({ length: 30 }, () => post(port, token, body()))
  await Promise.all([...slow, ...full].map(async (r) => await r.continued))

  const signalledAt = Date.now()
  child.kill('SIGTERM')
  // Late ones: sent once the server says it is closing. A request sent right
  // after kill() may still reach it before the signal does, and be served.
  const closingSaid = /closing: requests arriving from now on are answered 503/
  while (!closingSaid.test(output)) {
    if (child.exitCode !== null || Date.now() - signalledAt > boundMs) {
      t.fail('the server never said it was closing', { output })
      return
    }
    await sleep(5)
  }
  const late = Array.from({ length: 5 }, () => post(port, token, body()))
  await sleep(150)
  late.push(...Array.from({ length: 5 }, () => post(port, token, body())))
  await sleep(150)
  for (const s of slow) s.req.write(s.payload.slice(0, 200))
  await sleep(200)
  for (const s of slow) s.req.end(s.payload.slice(200))

  const inFlight = await Promise.all([...slow, ...full].map(async (r) => await r.answer))
  const lateAnswers = await Promise.all(late.map(async (r) => await r.answer))
  const exit = await exited
  const tookMs = exit.at - signalledAt

  t.same(inFlight.filter((a) => a.error !== undefined).map((a) => a.error), [], 'no request in flight was cut off')
  t.same(inFlight.map((a) => a.status), Array(inFlight.length).fill(201), 'every request in flight was completed: 201 (slow uploads included)')
  for (const a of inFlight) t.ok(typeof JSON.parse(a.body ?? '{}').id === 'string', 'a complete 201 body')

  // A late request the server received (it said 100 Continue) gets a complete
  // 503 problem+json; one it never read (the listener closed) is refused.
  const received = lateAnswers.filter((a) => a.continued)
  t.same(received.filter((a) => a.error !== undefined).map((a) => a.error), [], 'no late request the server received was cut off')
  for (const a of received) {
    t.equal(a.status, 503, 'a late request: 503')
    t.match(a.contentType ?? '', /^application\/problem\+json/, 'as problem+json')
  }
  t.comment(`late requests: ${received.length} answered 503, ${lateAnswers.length - received.length} not accepted (${lateAnswers.filter((a) => !a.continued).map((a) => a.error ?? a.status).join(', ')})`)
  t.ok(received.length >= 1, 'the server answered late arrivals while it drained')

  t.equal(exit.signal, null, 'exited by itself')
  t.equal(exit.code, 0, 'exit code 0', { output })
  t.ok(tookMs < boundMs + 1000, `within the bound (${tookMs} ms after SIGTERM)`)

  const answers = [...inFlight, ...lateAnswers]
  const created = answers.filter((a) => a.status === 201).length
  t.equal(await db.llen('rogq:delivery:active'), 0, 'no delivery job left active by the process')
  t.equal(await db.zcard(createKeys().box('outbox', 'TR-MOJ')), created, 'every 201 is a stored request, and only those')
  const refused = await fetch(`http://127.0.0.1:${port}/healthz`).then(() => 'answered', (error: { cause?: { code?: string } }) => error.cause?.code ?? 'error')
  t.equal(refused, 'ECONNREFUSED', 'nothing listens any more')
})
