// Real processes for the fault drills (tests/faults): the gateway as `npm start`
// runs it (node --import tsx src/server.ts), the standalone worker
// (node --import tsx workers/main.ts), and redis-server (tests/helpers/redis.ts),
// each of which a drill can SIGKILL and start again on the same port / data.
// Plus what every drill needs around them: a gateway config file, dev tokens,
// an HTTP client that retries a submission until it is answered, and a reader
// of what the store and the audit log hold afterwards.
//
// Nothing is left behind: every child is stopped at teardown (SIGTERM, then
// SIGKILL), SIGKILLed on this process's exit, and watched by a one-line
// /bin/sh watchdog that SIGKILLs it within a second if this process dies
// without either (a tap timeout, a SIGKILL).
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { Agent, request } from 'undici'
import { mintDevToken } from '../../src/auth/dev-token.js'
import { parseGatewayConfig } from '../../src/config/gateway-config.js'
import type { VerificationResult } from '../../src/domain/audit-chain.js'
import type { EventType } from '../../src/domain/events.js'
import { audienceOf } from '../../src/domain/notifications.js'
import type { GatewayConfig } from '../../src/domain/types.js'
import { AuditLog } from '../../src/store/audit-log.js'
import { findFreePort } from '../../src/store/embedded-redis.js'
import { createKeys } from '../../src/store/keys.js'
import { decodeMeta, decodeStreamEntry } from '../../src/store/request-store.js'
import { queueNames, queuePrefix } from '../../workers/queues.js'
import { spawnNode } from './children.js'
import { demoConfig, liftRateLimits, writeConfigFile } from './config.js'
import type { Delivery } from './receiver.js'

export { eventually } from './fixtures.js'
export { startRedis, type TestRedis } from './redis.js'

interface Teardownable { teardown: (fn: () => unknown) => void }

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** The dev-token secret every drill process shares. */
export const drillSecret = 'drill-dev-secret-0123456789abcdef'

/** An HS256 dev token (AUTH_DEV_SECRET = drillSecret), valid for an hour. */
export const drillToken = (authority: string, roles: string[] = ['agency']): string =>
  mintDevToken(drillSecret, { authority, roles, sub: `drill@${authority}` }, 3600)

// ---------------------------------------------------------------------------
// Children

/** SIGKILLs `pid` within a second of this process's death; exits by itself when `pid` is gone. */
function watchdog (pid: number): ChildProcess | undefined {
  if (!existsSync('/bin/sh')) return undefined
  const script = 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done\n' +
    'if ! kill -0 "$1" 2>/dev/null; then kill -s KILL "$2" 2>/dev/null; fi\n'
  const w = spawn('/bin/sh', ['-c', script, 'rogatory-drill-watchdog', String(process.pid), String(pid)], { stdio: 'ignore', detached: true })
  w.on('error', () => {})
  w.unref()
  return w
}

function killWatchdog (w: ChildProcess | undefined): void {
  if (w?.pid === undefined || w.exitCode !== null || w.signalCode !== null) return
  // Its own process group (detached): its `sleep` goes with it.
  try { process.kill(-w.pid, 'SIGKILL') } catch { try { w.kill('SIGKILL') } catch {} }
}

/** One run of a node entry point: its pid, its output (tail), how it ended. */
export class Child {
  readonly child: ChildProcess
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  readonly #output: () => string
  #watchdog: ChildProcess | undefined

  constructor (readonly name: string, entry: string, env: Record<string, string>) {
    const { child, output } = spawnNode(['--import', 'tsx', entry], env, { keep: 64 * 1024 })
    this.child = child
    this.#output = output
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => {
      killWatchdog(this.#watchdog)
      resolve({ code, signal })
    }))
    if (this.child.pid !== undefined) this.#watchdog = watchdog(this.child.pid)
  }

  get pid (): number | undefined { return this.child.pid }
  get running (): boolean { return this.child.exitCode === null && this.child.signalCode === null }
  /** The last 64 KiB of stdout and stderr together. */
  get output (): string { return this.#output() }

  /** Sends `signal` (SIGKILL: a crash) and waits for the process to be gone. */
  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) this.child.kill(signal)
    await this.exited
  }

  /** SIGTERM (a graceful stop), SIGKILL after `graceMs`. */
  async stop (graceMs = 5000): Promise<void> {
    if (!this.running) { await this.exited; return }
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => { if (this.running) this.child.kill('SIGKILL') }, graceMs)
    await this.exited
    clearTimeout(timer)
  }
}

async function waitUntil (what: string, child: Child, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < until) {
    if (!child.running) throw new Error(`${child.name} exited (${JSON.stringify(await child.exited)}) before ${what}; output:\n${child.output}`)
    try {
      if (await check()) return
    } catch (error) {
      last = error
    }
    await sleep(100)
  }
  await child.kill()
  throw new Error(`${child.name}: ${what} did not happen within ${timeoutMs} ms${last === undefined ? '' : ` (${String(last)})`}; output:\n${child.output}`)
}

// ---------------------------------------------------------------------------
// Gateway and worker

export interface DrillEnv {
  redisUrl: string
  /** GATEWAY_CONFIG: a file written by writeGatewayConfig (default: the demo config). */
  configPath?: string
  /** PAYLOAD_KEY, base64 of 32 bytes: gateway and worker must share it. */
  payloadKeyBase64: string
  /** DATA_DIR (nothing is written there when REDIS_URL and PAYLOAD_KEY are set). */
  dataDir: string
  /** Anything else (LOG_LEVEL, WORKER_LOCK_DURATION_MS, ...). */
  extra?: Record<string, string>
}

function baseEnv (env: DrillEnv): Record<string, string> {
  return {
    REDIS_URL: env.redisUrl,
    PAYLOAD_KEY: env.payloadKeyBase64,
    DATA_DIR: env.dataDir,
    AUTH_DEV_SECRET: drillSecret,
    LOG_LEVEL: 'warn',
    ...(env.configPath === undefined ? {} : { GATEWAY_CONFIG: env.configPath }),
    ...env.extra
  }
}

/** A scratch directory (DATA_DIR, config files), removed at teardown. */
export async function scratchDir (t: Teardownable, label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `rogatory-${label}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

export const newPayloadKey = (): string => randomBytes(32).toString('base64')

/** Writes a gateway config (validated first) to `dir`; returns its path for GATEWAY_CONFIG. */
export async function writeGatewayConfig (dir: string, config: GatewayConfig, name = 'gateway-config.json'): Promise<string> {
  parseGatewayConfig(config, 'drill config')
  return writeConfigFile(dir, config, name)
}

/**
 * The demo config with the per-authority rate limits lifted: a drill's burst
 * is thousands of requests a minute from one authority, and a 429 is not the
 * fault under test.
 */
export function drillConfig (): GatewayConfig {
  const config = demoConfig()
  liftRateLimits(config)
  return config
}

export class GatewayProcess {
  #current: Child | undefined
  /** How many times the process was started. */
  starts = 0

  constructor (readonly port: number, readonly env: DrillEnv & { runWorkers: boolean }) {}

  get origin (): string { return `http://127.0.0.1:${this.port}` }
  get process (): Child | undefined { return this.#current }
  get pid (): number | undefined { return this.#current?.pid }

  /** Starts src/server.ts on the same port; resolves once GET /readyz answers 200. */
  async start (timeoutMs = 30_000): Promise<void> {
    if (this.#current?.running === true) throw new Error('the gateway is already running')
    const child = new Child('gateway', 'src/server.ts', {
      ...baseEnv(this.env),
      PORT: String(this.port),
      HOST: '127.0.0.1',
      RUN_WORKERS: String(this.env.runWorkers)
    })
    this.#current = child
    this.starts++
    await waitUntil('GET /readyz answering 200', child, async () => {
      const res = await request(`${this.origin}/readyz`, { headersTimeout: 2000, bodyTimeout: 2000 })
      await res.body.dump()
      return res.statusCode === 200
    }, timeoutMs)
  }

  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> { await this.#current?.kill(signal) }
  async stop (): Promise<void> { await this.#current?.stop() }
}

/** The gateway (src/server.ts) on a free port, started; stopped at teardown. */
export async function startGatewayProcess (t: Teardownable, env: DrillEnv & { runWorkers?: boolean }): Promise<GatewayProcess> {
  const gateway = new GatewayProcess(await findFreePort(), { runWorkers: false, ...env })
  t.teardown(() => gateway.stop())
  await gateway.start()
  return gateway
}

export class WorkerProcess {
  #current: Child | undefined
  starts = 0

  constructor (readonly env: DrillEnv) {}

  get process (): Child | undefined { return this.#current }
  get pid (): number | undefined { return this.#current?.pid }

  /**
   * Starts workers/main.ts; resolves once its dispatcher has joined the audit
   * stream's consumer group (its consumer is named <host>-<pid>), i.e. it runs.
   */
  async start (timeoutMs = 30_000): Promise<void> {
    if (this.#current?.running === true) throw new Error('the worker is already running')
    const child = new Child('worker', 'workers/main.ts', baseEnv(this.env))
    this.#current = child
    this.starts++
    const redis = new Redis(this.env.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true })
    redis.on('error', () => {})
    try {
      await redis.connect()
      const stream = createKeys().auditStream
      await waitUntil('its dispatcher joining the consumer group', child, async () => {
        const consumers = await redis.xinfo('CONSUMERS', stream, 'dispatch') as unknown[][]
        return consumers.some((fields) => String(fields[1]).endsWith(`-${String(child.pid)}`))
      }, timeoutMs)
    } finally {
      redis.disconnect()
    }
  }

  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> { await this.#current?.kill(signal) }
  async stop (): Promise<void> { await this.#current?.stop() }
}

/** The standalone worker (workers/main.ts), started; stopped at teardown. */
export async function startWorkerProcess (t: Teardownable, env: DrillEnv): Promise<WorkerProcess> {
  const worker = new WorkerProcess(env)
  t.teardown(() => worker.stop())
  await worker.start()
  return worker
}

// ---------------------------------------------------------------------------
// Clients that retry until answered

/** What one attempt came to: an HTTP status, or the client-side error code (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT, ...). */
export interface Attempt {
  startedAt: number
  endedAt: number
  status?: number
  error?: string
  replayed?: boolean
  id?: string
  /** The Retry-After header of a 503. */
  retryAfter?: string
}

export interface Submission {
  key: string
  senderReference: string
  attempts: Attempt[]
  /** The id of the 201, if one came. */
  id?: string
  /** First 201. */
  answeredAt?: number
  /** Set when the retries ran out, or an answer was neither 201 nor retryable. */
  gaveUp?: string
  /** Ids carried by every 201 for this key (a correct gateway gives one). */
  ids: Set<string>
}

export interface BurstOptions {
  origin: string | (() => string)
  token: string
  /** Bodies to submit, each with its own senderReference; keys derived from the reference. */
  bodies: Array<Record<string, unknown>>
  keyOf?: (body: Record<string, unknown>, index: number) => string
  concurrency: number
  /** Per-attempt bound on waiting for an answer: longer counts as a hang (a failed attempt). */
  attemptTimeoutMs?: number
  /** Retries of one submission end after this long. */
  giveUpAfterMs?: number
  onAnswered?: (submission: Submission, answered: number) => void
}

/** Connection errors and 503 are worth retrying (the same key, the same body); anything else is an answer. */
const retryable = (attempt: Attempt): boolean => attempt.error !== undefined || attempt.status === 503

/**
 * Submits every body (POST /v1/requests, Idempotency-Key) with `concurrency`
 * clients; each retries with the same key and body, with backoff, until it is
 * answered 201 or a non-retryable status, or `giveUpAfterMs` runs out.
 */
export async function burst (opts: BurstOptions): Promise<Submission[]> {
  const attemptTimeoutMs = opts.attemptTimeoutMs ?? 10_000
  const giveUpAfterMs = opts.giveUpAfterMs ?? 90_000
  const agent = new Agent({ connections: opts.concurrency, keepAliveTimeout: 10_000, connect: { timeout: 5000 } })
  const origin = typeof opts.origin === 'string' ? () => opts.origin as string : opts.origin
  const submissions: Submission[] = opts.bodies.map((body, index) => ({
    key: opts.keyOf?.(body, index) ?? `drill-${String(body.senderReference)}`,
    senderReference: String(body.senderReference),
    attempts: [],
    ids: new Set<string>()
  }))
  let next = 0
  let answered = 0
  const one = async (index: number): Promise<void> => {
    const submission = submissions[index]
    const payload = JSON.stringify(opts.bodies[index])
    const started = Date.now()
    for (let n = 0; ; n++) {
      const attempt: Attempt = { startedAt: Date.now(), endedAt: 0 }
      try {
        const res = await request(`${origin()}/v1/requests`, {
          method: 'POST',
          dispatcher: agent,
          body: payload,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.token}`, 'idempotency-key': submission.key },
          headersTimeout: attemptTimeoutMs,
          bodyTimeout: attemptTimeoutMs
        })
        const text = await res.body.text()
        attempt.status = res.statusCode
        if (res.statusCode === 503) attempt.retryAfter = String(res.headers['retry-after'] ?? '')
        if (res.statusCode === 201) {
          attempt.id = (JSON.parse(text) as { id: string }).id
          attempt.replayed = res.headers['idempotent-replayed'] === 'true'
        }
      } catch (error) {
        attempt.error = (error as { code?: string }).code ?? (error as Error).message
      }
      attempt.endedAt = Date.now()
      submission.attempts.push(attempt)
      if (attempt.status === 201) {
        submission.id = attempt.id
        submission.ids.add(attempt.id as string)
        submission.answeredAt = attempt.endedAt
        opts.onAnswered?.(submission, ++answered)
        return
      }
      if (!retryable(attempt)) { submission.gaveUp = `answered ${String(attempt.status)}`; return }
      if (Date.now() - started > giveUpAfterMs) { submission.gaveUp = `still ${attempt.error ?? String(attempt.status)} after ${giveUpAfterMs} ms`; return }
      await sleep(Math.min(1000, 25 * 2 ** Math.min(n, 6)) * (0.5 + Math.random()))
    }
  }
  const lanes = Array.from({ length: opts.concurrency }, async () => {
    while (next < submissions.length) await one(next++)
  })
  try {
    await Promise.all(lanes)
  } finally {
    await agent.close()
  }
  return submissions
}

/** Tallies of the attempts of a burst, for the summary lines. */
export function tally (submissions: Submission[]): { attempts: number, created: number, replayed: number, byOutcome: Record<string, number> } {
  const byOutcome: Record<string, number> = {}
  let attempts = 0
  let created = 0
  let replayed = 0
  for (const s of submissions) {
    for (const a of s.attempts) {
      attempts++
      const label = a.error ?? String(a.status)
      byOutcome[label] = (byOutcome[label] ?? 0) + 1
      if (a.status === 201) { if (a.replayed === true) replayed++; else created++ }
    }
  }
  return { attempts, created, replayed, byOutcome }
}

// ---------------------------------------------------------------------------
// What the store and the audit log hold

export interface StoreContents {
  /** Ids in the senders' outboxes (open and closed), per id how many times (over all outboxes). */
  outbox: Map<string, number>
  /** Records rog:req:<id>: id → { senderReference, sender, status }. */
  records: Map<string, { senderReference: string, sender: string, status: string }>
  /** request.submitted entries of the audit stream: requestId → count. */
  submittedEvents: Map<string, number>
  /** Every audit entry: stream id → the event. */
  audit: Array<{ id: string, event: { type: string, requestId: string, sender: string, recipient: string, data: Record<string, unknown> } }>
  chain: VerificationResult
}

/** Reads outboxes, records and the whole audit stream (and verifies its hash chain) over a fresh connection. */
export async function readStore (redisUrl: string, senders: string[]): Promise<StoreContents> {
  const keys = createKeys()
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3, lazyConnect: true })
  redis.on('error', () => {})
  try {
    await redis.connect()
    const outbox = new Map<string, number>()
    for (const sender of senders) {
      for (const key of [keys.box('outbox', sender), keys.box('outbox', sender, true)]) {
        for (const id of await redis.zrange(key, 0, -1)) outbox.set(id, (outbox.get(id) ?? 0) + 1)
      }
    }
    const ids: string[] = []
    let cursor = '0'
    do {
      const [nextCursor, found] = await redis.scan(cursor, 'MATCH', `${keys.prefix}req:*`, 'COUNT', 1000)
      cursor = nextCursor
      ids.push(...found.map((key) => key.slice(`${keys.prefix}req:`.length)))
    } while (cursor !== '0')
    const records = new Map<string, { senderReference: string, sender: string, status: string }>()
    for (let i = 0; i < ids.length; i += 500) {
      const pipeline = redis.pipeline()
      for (const id of ids.slice(i, i + 500)) pipeline.hmget(keys.request(id), 'meta', 'sender', 'status')
      const results = (await pipeline.exec()) ?? []
      results.forEach(([err, fields], j) => {
        if (err) throw err
        const [meta, sender, status] = fields as Array<string | null>
        records.set(ids[i + j], { senderReference: meta === null ? '' : decodeMeta(meta).senderReference, sender: sender ?? '', status: status ?? '' })
      })
    }
    const audit: StoreContents['audit'] = []
    const submittedEvents = new Map<string, number>()
    let start = '-'
    for (;;) {
      const entries = await redis.xrange(keys.auditStream, start, '+', 'COUNT', 5000)
      for (const [id, fields] of entries) {
        const event = JSON.parse(decodeStreamEntry(id, fields).body) as StoreContents['audit'][number]['event']
        audit.push({ id, event })
        if (event.type === 'request.submitted') submittedEvents.set(event.requestId, (submittedEvents.get(event.requestId) ?? 0) + 1)
      }
      if (entries.length < 5000) break
      start = `(${entries[entries.length - 1][0]}`
    }
    const chain = await new AuditLog(redis, keys).verify()
    return { outbox, records, submittedEvents, audit, chain }
  } finally {
    redis.disconnect()
  }
}

export interface Verdict {
  acknowledged: number
  /** 201 ids missing from the outboxes / the records / the audit log. */
  lostFromOutbox: string[]
  lostFromRecords: string[]
  lostFromAudit: string[]
  /** Ids in the store that no client was told about (only allowed for submissions never answered). */
  unacknowledgedInStore: string[]
  /** senderReferences with more than one record, ids with more than one request.submitted or outbox entry. */
  duplicateReferences: string[]
  duplicateSubmittedEvents: string[]
  duplicateOutboxEntries: string[]
  /** Keys answered 201 with different ids on different attempts. */
  inconsistentReplays: string[]
}

/**
 * The Jepsen-style check: what clients were told (201 ids) against what the
 * store and the audit log hold. Only the given submissions' senderReferences
 * are considered (other requests may share the store).
 */
export function judge (submissions: Submission[], store: StoreContents): Verdict {
  const acked = new Set(submissions.flatMap((s) => (s.id === undefined ? [] : [s.id])))
  const references = new Set(submissions.map((s) => s.senderReference))
  const unanswered = new Set(submissions.filter((s) => s.id === undefined).map((s) => s.senderReference))
  const ours = [...store.records].filter(([, record]) => references.has(record.senderReference))
  const perReference = new Map<string, number>()
  for (const [, record] of ours) perReference.set(record.senderReference, (perReference.get(record.senderReference) ?? 0) + 1)
  return {
    acknowledged: acked.size,
    lostFromOutbox: [...acked].filter((id) => !store.outbox.has(id)),
    lostFromRecords: [...acked].filter((id) => !store.records.has(id)),
    lostFromAudit: [...acked].filter((id) => !store.submittedEvents.has(id)),
    unacknowledgedInStore: ours.filter(([id, record]) => !acked.has(id) && !unanswered.has(record.senderReference)).map(([id]) => id),
    duplicateReferences: [...perReference].filter(([, n]) => n > 1).map(([ref]) => ref),
    duplicateSubmittedEvents: ours.filter(([id]) => (store.submittedEvents.get(id) ?? 0) > 1).map(([id]) => id),
    duplicateOutboxEntries: ours.filter(([id]) => (store.outbox.get(id) ?? 0) > 1).map(([id]) => id),
    inconsistentReplays: submissions.filter((s) => s.ids.size > 1).map((s) => s.key)
  }
}


// ---------------------------------------------------------------------------
// Webhook notifications: what the audit log says must arrive, against what did

/** One webhook notification owed: an event, to one authority's path. */
export interface Notification { eventId: string, type: string, requestId: string, authority: string, path: string }

/** Every (event, authority) the gateway owes a webhook for: audit events × their audience × authorities with a webhook path. */
export function expectedNotifications (audit: StoreContents['audit'], pathOf: Map<string, string>): Notification[] {
  const out: Notification[] = []
  for (const { id, event } of audit) {
    for (const side of audienceOf(event.type as EventType)) {
      const authority = event[side]
      const path = pathOf.get(authority)
      if (path !== undefined) out.push({ eventId: id, type: event.type, requestId: event.requestId, authority, path })
    }
  }
  return out
}

export interface DeliveryReport {
  expected: number
  /** Expected notifications that never got a verified 2xx-answered attempt. */
  missing: Notification[]
  attempts: number
  /** Attempts beyond the first for the same notification. */
  repeats: number
  unverified: Delivery[]
  /** Notifications whose attempts carried more than one webhook-id, and webhook-ids shared by different notifications. */
  idMismatches: string[]
  /** Attempts for no expected notification. */
  unexpected: Delivery[]
}

/**
 * Checks the receiver's attempts against the expected notifications. An attempt
 * is matched on what it says it is about (event type, request id) and where it
 * went (path): in a drill each request has at most one event of a type per
 * authority, and this does not depend on how webhook-ids are made.
 */
export function checkDeliveries (deliveries: Delivery[], expected: Notification[]): DeliveryReport {
  const keyOf = (type: string, requestId: string, path: string): string => `${type} ${requestId} ${path}`
  const wanted = new Map<string, Notification>()
  const ambiguous = new Set<string>()
  for (const n of expected) {
    const key = keyOf(n.type, n.requestId, n.path)
    if (wanted.has(key)) ambiguous.add(key)
    wanted.set(key, n)
  }
  if (ambiguous.size > 0) throw new Error(`checkDeliveries: several events of one type for one request and path: ${[...ambiguous].slice(0, 3).join('; ')}`)
  const groups = new Map<string, Delivery[]>()
  const unexpected: Delivery[] = []
  for (const d of deliveries) {
    const key = keyOf(String(d.body?.type), String(d.body?.data?.requestId), d.path)
    if (!wanted.has(key)) { unexpected.push(d); continue }
    groups.set(key, [...(groups.get(key) ?? []), d])
  }
  const idMismatches: string[] = []
  const owners = new Map<string, string>()
  for (const [key, attempts] of groups) {
    const ids = new Set(attempts.map((d) => d.webhookId))
    if (ids.size !== 1) idMismatches.push(`${key}: ${[...ids].join(', ')}`)
    for (const id of ids) {
      const owner = owners.get(id)
      if (owner !== undefined && owner !== key) idMismatches.push(`webhook-id ${id} used by ${owner} and ${key}`)
      owners.set(id, key)
    }
  }
  const ok = (d: Delivery): boolean => d.verified && d.answered && d.status >= 200 && d.status < 300
  return {
    expected: expected.length,
    missing: expected.filter((n) => !(groups.get(keyOf(n.type, n.requestId, n.path)) ?? []).some(ok)),
    attempts: deliveries.length,
    repeats: [...groups.values()].reduce((sum, attempts) => sum + attempts.length - 1, 0),
    unverified: deliveries.filter((d) => !d.verified),
    idMismatches,
    unexpected
  }
}

/** The audit entries of one type about one request. */
export function eventsOf (audit: StoreContents['audit'], requestId: string, type: string): Array<StoreContents['audit'][number]> {
  return audit.filter((entry) => entry.event.requestId === requestId && entry.event.type === type)
}

/** Pending entries of the dispatcher's consumer group (read by some dispatcher, not yet turned into jobs), per consumer. */
export async function dispatchPending (redisUrl: string): Promise<{ count: number, consumers: Array<[string, string]> }> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3, lazyConnect: true })
  redis.on('error', () => {})
  try {
    await redis.connect()
    const [count, , , consumers] = await redis.xpending(createKeys().auditStream, 'dispatch') as [number, string | null, string | null, Array<[string, string]> | null]
    return { count: Number(count), consumers: consumers ?? [] }
  } finally {
    redis.disconnect()
  }
}

/** Job counts of the delivery queue (waiting, active, delayed, completed, failed, ...), and why the failed ones failed. */
export async function deliveryJobCounts (redisUrl: string): Promise<Record<string, number> & { failedReasons?: string[] }> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null })
  connection.on('error', () => {})
  const queue = new Queue(queueNames.delivery, { connection, prefix: queuePrefix })
  try {
    const counts: Record<string, number> & { failedReasons?: string[] } = await queue.getJobCounts()
    if (counts.failed > 0) {
      counts.failedReasons = (await queue.getFailed(0, 9)).map((job) => `${String(job.id)} (attempts ${job.attemptsMade}, stalled ${String((job as unknown as { stalledCounter?: number }).stalledCounter)}): ${job.failedReason}`)
    }
    return counts
  } finally {
    await queue.close()
    connection.disconnect()
  }
}
