import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Redis, Result } from 'ioredis'
import fp from 'fastify-plugin'
import type { GatewayConfig } from '../domain/types.js'
import { connectRedis, createRedis } from '../store/redis-connection.js'
import { sendProblem } from './security.js'

export interface Limit {
  max: number
  timeWindowSeconds: number
}

export interface RateLimitSettings {
  /** Per authority without a rateLimit block in the config (default 600 per 60 s). */
  authorityDefault?: Limit
  /** Per client address, for requests without a valid token (default 600 per 60 s). */
  anonymous?: Limit
  /**
   * Logical Redis database of the counters (default 1): they are ephemeral and
   * kept apart from the records, so that a refused request leaves the records'
   * database exactly as it was. A REDIS_URL that names a database (…/2) wins:
   * the counters then share it (under the rog:rl: prefix).
   */
  db?: number
}

export interface RateLimitOptions extends RateLimitSettings {
  gatewayConfig: GatewayConfig
  redisUrl: string
  keyPrefix?: string
}

export const defaultLimit: Limit = { max: 600, timeWindowSeconds: 60 }

const authorityKey = 'authority:'

/** Share of a limit one process takes from Redis at a time (at most maxLease); limits under 100 are counted one by one. */
const leaseShare = 100
const maxLease = 1000

/**
 * Takes `n` numbers from a window's counter: INCRBY, and the window's time left
 * (a new counter gets the window as its TTL).
 * KEYS: counter. ARGV: n, window ms. Returns { last number taken, ms left }.
 */
const takeLua = `
local n, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = redis.call('INCRBY', KEYS[1], n)
local ttl = -1
if last ~= n then ttl = redis.call('PTTL', KEYS[1]) end
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], window)
  ttl = window
end
return { last, ttl }
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rogTakeCount(key: string, n: number, windowMs: number): Result<[number, number], Context>
  }
}

export interface Count {
  /** This request's number in the window (over max: refused). */
  number: number
  /** When the window ends (local clock, ms). */
  resetAt: number
}

interface Window {
  /** Numbers taken from Redis and not used yet: next..last. */
  next: number
  last: number
  /** Local time by which the window has ended in Redis (taken before asking, so never late). */
  endsAt: number
  taking?: Promise<void>
}

/**
 * Fixed-window counters in Redis, shared by every API process, taken in leases:
 * a process takes max/100 numbers at once (one INCRBY) and hands them out
 * locally, so a busy authority costs one Redis round trip per lease instead of
 * one per request. Each number is handed out once across all processes, so no
 * more than `max` requests pass per window; the tolerance is the other way: up
 * to (processes − 1) × lease numbers may sit unused in other processes while one
 * refuses (1% of the limit per process). Limits under 100 are counted one
 * request at a time, exactly. Once a window is spent, refusals are local until
 * it ends. Leases never outlive their window.
 */
export class LeasedCounters {
  readonly #windows = new Map<string, Window>()
  constructor (private readonly redis: Redis, private readonly prefix: string) {
    redis.defineCommand('rogTakeCount', { numberOfKeys: 1, lua: takeLua })
  }

  /** A number for one request: synchronously when the lease has one left, else after one Redis round trip. */
  count (key: string, limit: Limit): Count | Promise<Count> {
    const now = Date.now()
    let window = this.#windows.get(key)
    if (window !== undefined && now >= window.endsAt && window.taking === undefined) {
      this.#windows.delete(key)
      window = undefined
    }
    if (window !== undefined && window.next <= window.last) return { number: window.next++, resetAt: window.endsAt }
    // A spent window refuses locally: its counter only grows until it ends.
    if (window !== undefined && window.last > limit.max && window.taking === undefined) return { number: window.last + 1, resetAt: window.endsAt }
    return this.#take(key, limit, window)
  }

  async #take (key: string, limit: Limit, current: Window | undefined): Promise<Count> {
    for (;;) {
      let window = current ?? this.#windows.get(key)
      if (window === undefined) {
        window = { next: 1, last: 0, endsAt: 0 }
        this.#windows.set(key, window)
      }
      if (window.taking === undefined) {
        const target = window
        const lease = Math.min(maxLease, Math.max(1, Math.floor(limit.max / leaseShare)))
        const askedAt = Date.now()
        target.taking = this.redis.rogTakeCount(`${this.prefix}${key}`, lease, limit.timeWindowSeconds * 1000).then(([last, ttl]) => {
          target.next = Number(last) - lease + 1
          target.last = Number(last)
          target.endsAt = askedAt + Number(ttl)
        }).finally(() => { target.taking = undefined })
      }
      await window.taking
      current = undefined
      if (window.next <= window.last) return { number: window.next++, resetAt: window.endsAt }
      if (window.last > limit.max) return { number: window.last + 1, resetAt: window.endsAt }
    }
  }
}

/**
 * Per-authority rate limits, counted in Redis so that every API process shares
 * them (LeasedCounters above).
 *
 * The limiter is an onRequest hook of the app, so it runs before the route
 * plugins' authentication and before any body is read: a flood is refused
 * early and cheaply. Its key is the authority of a *verified* token (the same
 * verification the routes do, done once per request: see verifiedClaims). A
 * token that does not verify cannot spend another authority's budget: such
 * requests, and requests without a token, are counted per client address
 * under the anonymous limit.
 *
 * Every answer carries X-RateLimit-Limit, -Remaining and -Reset; past the limit
 * the answer is 429 problem+json with Retry-After. If the counters cannot be
 * reached, requests are let through (the routes answer 503 themselves when the
 * store is down; liveness must not depend on Redis).
 */
async function rateLimitPlugin (fastify: FastifyInstance, opts: RateLimitOptions): Promise<void> {
  const limits = new Map<string, Limit>()
  const registered = new Set(opts.gatewayConfig.authorities.map((authority) => authority.id))
  for (const authority of opts.gatewayConfig.authorities) {
    if (authority.rateLimit !== undefined) limits.set(authority.id, { max: authority.rateLimit.max, timeWindowSeconds: authority.rateLimit.timeWindowSeconds ?? 60 })
  }
  const authorityDefault = opts.authorityDefault ?? defaultLimit
  const anonymous = opts.anonymous ?? defaultLimit

  const redis = createRedis(opts.redisUrl, { db: opts.db ?? 1 })
  redis.on('error', (err) => fastify.log.debug({ err }, 'rate-limit counter connection error'))
  await connectRedis(redis)
  fastify.addHook('onClose', async () => {
    await redis.quit().catch(() => redis.disconnect())
  })
  const counters = new LeasedCounters(redis, `${opts.keyPrefix ?? 'rog:'}rl:`)

  interface Keyed { key: string, limit: Limit, client: string }
  const bearer = /^Bearer\s/i
  const byAddress = (request: FastifyRequest): Keyed => ({ key: `ip:${request.ip}`, limit: anonymous, client: 'anonymous' })
  // One per authority, made once: the hook runs for every request.
  const byAuthority = new Map<string, Keyed>()
  for (const authority of registered) byAuthority.set(authority, { key: `${authorityKey}${authority}`, limit: limits.get(authority) ?? authorityDefault, client: authority })
  const keyedBy = (request: FastifyRequest, authority: unknown): Keyed => (typeof authority === 'string' ? byAuthority.get(authority) : undefined) ?? byAddress(request)
  function keyOf (request: FastifyRequest): Keyed | Promise<Keyed> {
    const header = request.headers.authorization
    if (typeof header !== 'string' || !bearer.test(header)) return byAddress(request)
    const claims = fastify.cachedClaims(request)
    if (claims !== undefined) return keyedBy(request, claims.authority)
    return fastify.verifiedClaims(request).then((verified) => keyedBy(request, verified.authority), () => byAddress(request))
  }

  function answer (reply: FastifyReply, counted: { limit: Limit, client: string }, count: Count): FastifyReply | undefined {
    const { max, timeWindowSeconds } = counted.limit
    const resetSeconds = Math.max(0, Math.ceil((count.resetAt - Date.now()) / 1000))
    reply.header('x-ratelimit-limit', String(max))
    reply.header('x-ratelimit-remaining', String(Math.max(0, max - count.number)))
    reply.header('x-ratelimit-reset', String(resetSeconds))
    if (count.number <= max) return undefined
    fastify.metrics.rateLimited.inc({ client: counted.client })
    const retryAfter = Math.max(1, resetSeconds)
    return sendProblem(reply, 429, `Rate limit of ${max} requests per ${timeWindowSeconds} s exceeded${counted.client === 'anonymous' ? ' for this client address' : ` for ${counted.client}`}; retry in ${retryAfter} s.`, {
      'retry-after': String(retryAfter)
    })
  }

  function finish (request: FastifyRequest, reply: FastifyReply, keyed: Keyed, done: (err?: Error) => void): void {
    const count = counters.count(keyed.key, keyed.limit)
    if (!(count instanceof Promise)) {
      if (answer(reply, keyed, count) === undefined) done()
      return
    }
    count.then((counted) => { if (answer(reply, keyed, counted) === undefined) done() }, (err: unknown) => {
      request.log.debug({ err }, 'rate-limit counters unreachable: request let through')
      done()
    })
  }

  // Synchronous when the token is cached and the lease has numbers left (the common case).
  fastify.addHook('onRequest', (request, reply, done) => {
    const keyed = keyOf(request)
    if (keyed instanceof Promise) keyed.then((resolved) => finish(request, reply, resolved, done), done)
    else finish(request, reply, keyed, done)
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', fastify: '5.x', dependencies: ['auth', 'metrics'] })
