// The whole gateway for the worker tests: a fresh redis-server, the API (driven
// through inject), the workers of workers/runtime.ts in this process, and a real
// webhook receiver. Each test gets its own, so that tests can run side by side
// and a queue or an inbox never holds another test's requests.
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import pino from 'pino'
import type { Test } from 'tap'
import { packageRoot } from '../../src/config/env.js'
import { parseGatewayConfig } from '../../src/config/gateway-config.js'
import type { GatewayConfig } from '../../src/domain/types.js'
import { startWorkers, type RunningWorkers, type WorkerOptions } from '../../workers/runtime.js'
import Fastify from 'fastify'
import app, { serverOptions } from '../../src/app.js'
import { mintDevToken } from '../../src/auth/dev-token.js'
import { bearer, demoConfig, devSecret, example, payloadKey, type TestApp } from '../helpers/app.js'
import { authorityOf, liftRateLimits } from '../helpers/config.js'
import { eventually, redisClient } from '../helpers/fixtures.js'
import { startRedis, type TestRedis } from '../helpers/redis.js'
import { Receiver } from '../helpers/receiver.js'
import type { WorkerProcessSpec } from '../helpers/worker-process.js'

type Body = Record<string, any>

export interface Api extends TestApp {
  /** The test's own connection to the gateway's Redis. */
  db: Redis
  receiver: Receiver
}

export interface Gateway extends Api {
  workers: RunningWorkers
  /** Each time the deadline worker fired a request's due deadlines: what it recorded (often nothing) and when. */
  firings: Map<string, Array<{ recorded: string[], at: number }>>
}

export interface GatewayOptions {
  /** Adjusts the demo config (webhooks, clocks) before anything starts; it is validated afterwards. */
  configure?: (config: GatewayConfig, receiver: Receiver) => void
  workers?: Partial<WorkerOptions>
}

/** Paths of the receiver, one per authority. */
export const hookPath = (authority: string): string => `/hooks/${authority.toLowerCase()}`

/** Registers a webhook at the receiver (path hookPath(id)) for each of these authorities. */
export function withWebhooks (config: GatewayConfig, receiver: Receiver, ids: string[], opts: { retryScheduleSeconds?: number[], timeoutMs?: number } = {}): void {
  for (const id of ids) authorityOf(config, id).webhook = receiver.webhook(hookPath(id), opts)
}

/** The API on a fresh Redis and the receiver; no workers. */
export async function startApi (t: Test, opts: Pick<GatewayOptions, 'configure'> = {}): Promise<Api> {
  const receiver = await Receiver.start(t)
  const config = demoConfig()
  // The tests poll the API far faster than a partner would.
  liftRateLimits(config)
  opts.configure?.(config, receiver)
  parseGatewayConfig(config, 'test config')
  const redis = await startRedis(t)

  const built = await buildGatewayApp(t, config, redis)
  const db = await redisClient(t, redis.url)
  return { ...built, db, receiver }
}

/**
 * The app as tests/helpers/app.ts builds it, but without load shedding: these
 * tests run several gateways and workers in one process, and a busy event loop
 * must not turn a submission into a 503. And with a generous plugin timeout, for
 * a loaded machine.
 */
async function buildGatewayApp (t: Test, config: GatewayConfig, redis: TestRedis): Promise<TestApp> {
  const fastify = Fastify({ ...serverOptions({ logLevel: process.env.TEST_LOG_LEVEL ?? 'silent', bodyLimitBytes: 1024 * 1024 }), pluginTimeout: 60_000 })
  await fastify.register(app, { gatewayConfig: config, redisUrl: redis.url, payloadKey, authDevSecret: devSecret, idempotencyTtlSeconds: 86400, underPressure: { maxEventLoopDelayMs: 0 } })
  await fastify.ready()
  t.teardown(() => fastify.close())
  return {
    app: fastify,
    redis,
    config,
    token: (authority, roles = ['agency'], sub = `clerk@${authority}`) =>
      mintDevToken(devSecret, { authority, roles: typeof roles === 'string' ? roles.split(',') : roles, sub }, 3600)
  }
}

/** The API plus the workers of workers/runtime.ts in this process. */
export async function startGateway (t: Test, opts: GatewayOptions = {}): Promise<Gateway> {
  const api = await startApi(t, opts)
  const firings = new Map<string, Array<{ recorded: string[], at: number }>>()
  const workers = await startWorkers({
    redisUrl: api.redis.url,
    gatewayConfig: api.config,
    payloadKey,
    logger: pino({ level: 'silent' }),
    closeTimeoutMs: 1000,
    ...opts.workers,
    observer: {
      ...opts.workers?.observer,
      deadlinesFired: (requestId, recorded, at) => {
        firings.set(requestId, [...(firings.get(requestId) ?? []), { recorded, at }])
        opts.workers?.observer?.deadlinesFired?.(requestId, recorded, at)
      }
    }
  })
  // Registered after buildApp's own teardown: teardowns run last-in first-out, so the workers close before the app.
  t.teardown(() => workers.close())
  return { ...api, workers, firings }
}

export interface WorkerChild {
  pid: number
  /** SIGKILL, and wait for the process to be gone. */
  kill: () => Promise<void>
  exited: Promise<number | null>
}

const workerEntry = fileURLToPath(new URL('../helpers/worker-process.ts', import.meta.url))

/**
 * Starts the workers in a child process (tests/helpers/worker-process.ts) against
 * the API's Redis; resolves once it says it is ready. Stopped at teardown.
 */
export async function spawnWorkerProcess (t: Test, api: Api, extra: Omit<WorkerProcessSpec, 'gatewayConfig' | 'payloadKeyBase64' | 'redisUrl'> = {}): Promise<WorkerChild> {
  const dir = await mkdtemp(join(tmpdir(), 'rogatory-worker-'))
  const specPath = join(dir, 'spec.json')
  const spec: WorkerProcessSpec = { gatewayConfig: api.config, payloadKeyBase64: payloadKey.toString('base64'), ...extra }
  await writeFile(specPath, JSON.stringify(spec))
  const child = spawn(process.execPath, ['--import', 'tsx', workerEntry], {
    cwd: packageRoot(),
    env: { ...process.env, REDIS_URL: api.redis.url, ROG_WORKER_SPEC: specPath },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    }
    await rm(dir, { recursive: true, force: true })
  })
  await new Promise<void>((resolve, reject) => {
    let stdout = ''
    const timer = setTimeout(() => reject(new Error(`worker process not ready after 20 s; stderr: ${stderr}`)), 20_000)
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      if (/^ready \d+$/m.test(stdout)) { clearTimeout(timer); resolve() }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`worker process exited (${String(code)}) before it was ready; stderr: ${stderr}`)) })
  })
  return { pid: child.pid ?? -1, kill, exited }
}

let refCounter = 0
/** A senderReference no other request of this process uses. */
export const freshRef = (label: string): string => `W-${label}-${process.pid}-${++refCounter}`

/** The MLA example (TR-MOJ → DE-BFJ, 1959 Convention), its urgency date far out so that the agreement's clock governs. */
export function mlaBody (ref = freshRef('mla')): Body {
  const body = example('mla-request', ref)
  body.urgency.requestedBy = '2099-12-31'
  return body
}

/** The repatriation example (TR-PMM → FR-BEPI), its release date far out so that custody does not pull the deadline. */
export function repatriationBody (ref = freshRef('rep')): Body {
  const body = example('repatriation-request', ref)
  body.custody.releaseDate = '2099-12-31'
  return body
}

/** Personal data of the examples that must never leave in a webhook. */
export const personalMarkers = ['Karaosmanlı', 'Burak Selim', 'U00000000', 'Sabine', 'Brandt', 'Moreau', 'Julien', '00XX00000', 'Type 1 diabetes', '1981-06-04']

export async function submitAs (gw: Api, authority: string, body: Body): Promise<Body> {
  const res = await gw.app.inject({ method: 'POST', url: '/v1/requests', headers: bearer(gw.token(authority)), payload: body })
  if (res.statusCode !== 201) throw new Error(`submission answered ${res.statusCode}: ${res.body.slice(0, 500)}`)
  return res.json()
}

/** POST /v1/requests/{id}/{step} as an agency of `authority`; returns the response. */
export async function act (gw: Api, authority: string, id: string, step: string, body: Body = {}): Promise<Awaited<ReturnType<TestApp['app']['inject']>>> {
  return await gw.app.inject({ method: 'POST', url: `/v1/requests/${id}/${step}`, headers: bearer(gw.token(authority)), payload: body })
}

/** Like act, but the step must succeed (200). */
export async function must (gw: Api, authority: string, id: string, step: string, body: Body = {}): Promise<Body> {
  const res = await act(gw, authority, id, step, body)
  if (res.statusCode !== 200) throw new Error(`${step} by ${authority} answered ${res.statusCode}: ${res.body.slice(0, 500)}`)
  return res.json()
}

/** The request as an agency of `authority` reads it (a disclosure). */
export async function view (gw: Api, authority: string, id: string): Promise<Body> {
  const res = await gw.app.inject({ method: 'GET', url: `/v1/requests/${id}`, headers: bearer(gw.token(authority)) })
  if (res.statusCode !== 200) throw new Error(`GET ${id} as ${authority} answered ${res.statusCode}: ${res.body.slice(0, 300)}`)
  return res.json()
}

export interface HistoryEvent { id: string, type: string, at: string, actor: { authority: string }, data: Record<string, any> }

/** GET /v1/requests/{id}/events as `authority` (agency unless roles say otherwise). */
export async function history (gw: Api, authority: string, id: string, roles = 'agency'): Promise<HistoryEvent[]> {
  const res = await gw.app.inject({ method: 'GET', url: `/v1/requests/${id}/events`, headers: bearer(gw.token(authority, roles)) })
  if (res.statusCode !== 200) throw new Error(`GET ${id}/events as ${authority} answered ${res.statusCode}: ${res.body.slice(0, 300)}`)
  return res.json().items
}

/** Waits until the request's history holds an event of this type; returns the history then. */
export async function waitForEvent (gw: Api, id: string, type: string, timeoutMs: number, authority = 'TR-MOJ'): Promise<HistoryEvent[]> {
  return await eventually(`${type} on ${id}`, async () => {
    const items = await history(gw, authority, id)
    return items.some((e) => e.type === type) ? items : undefined
  }, timeoutMs, 50)
}

/** When the request next needs the deadline worker (its entry in the deadline set), if at all. */
export async function nextDeadline (gw: Api, id: string): Promise<number | undefined> {
  const score = await gw.db.zscore('rog:deadlines', id)
  return score === null ? undefined : Number(score)
}

export const count = (items: HistoryEvent[], type: string): number => items.filter((e) => e.type === type).length

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Lateness (at − dueAt, ms) of every deadline event the tests saw fire; reported at the end of the file. */
export const lateness: number[] = []

export function reportLateness (t: Test): void {
  t.teardown(() => {
    if (lateness.length === 0) return
    const sorted = [...lateness].sort((a, b) => a - b)
    const median = sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2
    t.comment(`deadline lateness over ${sorted.length} fired events: min ${sorted[0]} ms, median ${median} ms, max ${sorted[sorted.length - 1]} ms`)
  })
}
