// The gateway as the benchmarks run it: its configuration, tokens, request
// bodies, the real server in a child process (`rogatory serve`, what `npm start`
// runs), and the request service in this process for fast fills through the
// same store Lua as the API.
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { mintDevToken } from '../../src/auth/dev-token.js'
import { packageRoot } from '../../src/config/env.js'
import { parseGatewayConfig } from '../../src/config/gateway-config.js'
import type { Principal } from '../../src/domain/permissions.js'
import type { GatewayConfig, Role } from '../../src/domain/types.js'
import { RequestService, type SubmittedBody } from '../../src/services/request-service.js'
import { PayloadCipher } from '../../src/store/payload-cipher.js'
import { RequestStore } from '../../src/store/request-store.js'
import { findFreePort } from '../../src/store/embedded-redis.js'
import { spawnNode } from '../../tests/helpers/children.js'
import { demoConfig, liftRateLimits, writeConfigFile } from '../../tests/helpers/config.js'
import { cpuSeconds } from './proc.js'
import { sleep } from './stats.js'

export const root = packageRoot()
export const devSecret = 'bench-dev-secret-0123456789abcdef'
export const payloadKey = Buffer.alloc(32, 9)

/**
 * The demo configuration (config/demo.json), adjusted, then validated like
 * GATEWAY_CONFIG is. Every authority gets the highest per-authority rate limit
 * the config allows (1,000,000 per minute): the gateway default (600 per
 * minute) would answer 429 to any benchmark. The limiter itself still runs
 * (one counter update per API request, in Redis), as in production.
 */
export function benchConfig (adjust: (config: GatewayConfig) => void = () => {}): GatewayConfig {
  const config = structuredClone(demoConfig())
  liftRateLimits(config)
  adjust(config)
  return parseGatewayConfig(config, 'bench config')
}

// Shared with the tests (tests/helpers/), re-exported for the benchmarks.
export { agreementOf, authorityOf } from '../../tests/helpers/config.js'
export { spawnNode }

export function token (authority: string, roles: Role[] = ['agency', 'liaison']): string {
  return mintDevToken(devSecret, { authority, roles, sub: `bench@${authority}` }, 12 * 3600)
}

export const principal = (authority: string): Principal => ({ authority, roles: ['agency', 'liaison'], subject: `bench@${authority}` })

const mlaExampleText = readFileSync(join(root, 'schemas', 'examples', 'mla-request.json'), 'utf8')

/**
 * The complete MLA example of schemas/examples (TR-MOJ → DE-BFJ under the 1959
 * Convention, about 3 kB), with its own senderReference; its urgent date is
 * moved far out so that the agreement's clocks govern the deadlines.
 */
export function mlaBody (senderReference: string, recipient = 'DE-BFJ'): SubmittedBody {
  // JSON.parse of the file's text: a fresh deep copy, several times cheaper than structuredClone.
  const body = JSON.parse(mlaExampleText) as SubmittedBody
  body.senderReference = senderReference
  body.recipient = recipient
  ;(body.urgency as { requestedBy: string }).requestedBy = '2099-12-31'
  return body
}

// ---------------------------------------------------------------------------
// The real server in a child process.

export interface SpawnedGateway {
  origin: string
  port: number
  pid: number
  child: ChildProcess
  /** Last lines the server wrote (its pino log), for error messages. */
  output: () => string
  stop: () => Promise<void>
}

export interface SpawnGatewayOptions {
  dataDir: string
  config: GatewayConfig
  /** External Redis (socket path or URL); unset: the server runs its own under dataDir, as `npm start` does. */
  redisUrl?: string
  runWorkers: boolean
  logLevel?: string
  /** Run dist/src/cli/rogatory.js (needs a fresh `npm run build`) instead of the sources through tsx. */
  dist?: boolean
  env?: Record<string, string>
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  nodeArgs?: string[]
}

export async function waitForHttp (url: string, timeoutMs: number, child?: ChildProcess, output?: () => string): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`${url}: the server exited (${String(child.exitCode ?? child.signalCode)}) before answering:\n${output?.() ?? ''}`)
    }
    try {
      const res = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 })
      await res.body.dump()
      if (res.statusCode === 200) return
    } catch {}
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms:\n${output?.() ?? ''}`)
    await sleep(100)
  }
}

export async function stopChild (child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => { try { child.kill('SIGKILL') } catch {} }, timeoutMs)
  await exited
  clearTimeout(timer)
}

/** `rogatory serve` with this configuration, production settings otherwise (appendfsync always). */
export async function spawnGateway (opts: SpawnGatewayOptions): Promise<SpawnedGateway> {
  const port = await findFreePort()
  const configPath = writeConfigFile(opts.dataDir, opts.config)
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: opts.dataDir,
    GATEWAY_CONFIG: configPath,
    AUTH_DEV_SECRET: devSecret,
    PAYLOAD_KEY: payloadKey.toString('base64'),
    // The production default (one pino line per request, on stdout).
    LOG_LEVEL: opts.logLevel ?? 'info',
    RUN_WORKERS: opts.runWorkers ? 'true' : 'false',
    REDIS_APPENDFSYNC: 'always',
    ...(opts.redisUrl === undefined ? {} : { REDIS_URL: opts.redisUrl }),
    ...opts.env
  }
  const args = [...(opts.nodeArgs ?? []), ...(opts.dist === true ? ['dist/src/cli/rogatory.js', 'serve'] : ['--import', 'tsx', 'src/cli/rogatory.ts', 'serve'])]
  const { child, output } = spawnNode(args, env, { unset: opts.redisUrl === undefined ? ['REDIS_URL'] : [] })
  const origin = `http://127.0.0.1:${port}`
  try {
    await waitForHttp(`${origin}/readyz`, 60_000, child, output)
  } catch (error) {
    await stopChild(child, 5000)
    throw error
  }
  return { origin, port, pid: child.pid ?? -1, child, output, stop: () => stopChild(child) }
}

// ---------------------------------------------------------------------------
// Fills through the request service (the API's own code path below HTTP).

export interface FillService {
  service: RequestService
  redis: Redis
  close: () => void
}

/** The request service on its own connection; `now` is the service's clock (submission times). */
export function fillService (redisUrl: string, config: GatewayConfig, now: () => number = Date.now, idempotencyTtlSeconds = 48 * 3600): FillService {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null })
  redis.on('error', () => {})
  const store = new RequestStore(redis)
  const service = new RequestService(store, new PayloadCipher(payloadKey), config, idempotencyTtlSeconds, now)
  return { service, redis, close: () => redis.disconnect() }
}

export interface FillOptions {
  service: RequestService
  count: number
  concurrency: number
  sender: string
  body: (i: number) => SubmittedBody
  idempotencyKey?: (i: number) => string
  onCreated?: (i: number, request: { id: string, ackDue?: number, respDue: number, submittedAt: number }) => void
  /** Called about every 5% with (done, elapsed seconds). */
  progress?: (done: number, seconds: number) => void
  /** redis-server's pid, to report its CPU per request. */
  redisPid?: number
}

export interface FillResult {
  count: number
  seconds: number
  rate: number
  /** CPU of this process (the service: validation-free submit, encryption, hashing) per request, ms. */
  clientCpuMs: number
  /** CPU of redis-server per request (the Lua commit, AOF write and fsync), ms. */
  redisCpuMs: number
}

/** Submits `count` requests, `concurrency` at a time; every one must be created. */
export async function fill (opts: FillOptions): Promise<FillResult> {
  const who = principal(opts.sender)
  const started = performance.now()
  const cpu0 = process.cpuUsage()
  const redisCpu0 = opts.redisPid === undefined ? Number.NaN : cpuSeconds(opts.redisPid)
  let next = 0
  let done = 0
  const step = Math.max(1, Math.floor(opts.count / 20))
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++
      if (i >= opts.count) return
      const result = await opts.service.submit(who, opts.body(i), opts.idempotencyKey?.(i))
      if (result.kind !== 'created') throw new Error(`fill: request ${i} was ${result.kind}, not created`)
      opts.onCreated?.(i, result.request)
      done++
      if (done % step === 0) opts.progress?.(done, (performance.now() - started) / 1000)
    }
  }
  await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.count) }, worker))
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpu0)
  return {
    count: opts.count,
    seconds,
    rate: opts.count / seconds,
    clientCpuMs: (cpu.user + cpu.system) / 1000 / opts.count,
    redisCpuMs: opts.redisPid === undefined ? Number.NaN : ((cpuSeconds(opts.redisPid) - redisCpu0) * 1000) / opts.count
  }
}

export const log = (message: string): void => { process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${message}\n`) }
