import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
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

/**
 * Per-authority rate limits (@fastify/rate-limit on a Redis store, so that every
 * API process shares the counters).
 *
 * The limiter is an onRequest hook of the app, so it runs before the route
 * plugins' authentication and before any body is read: a flood is refused
 * early and cheaply. Its key is the authority of a *verified* token (the same
 * verification the routes do, done once per request: see verifiedClaims). A token that does not verify cannot spend
 * another authority's budget: such requests, and requests without a token, are
 * counted per client address under the anonymous limit.
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
  const limitOf = (key: string): Limit => key.startsWith(authorityKey)
    ? limits.get(key.slice(authorityKey.length)) ?? authorityDefault
    : anonymous

  const counters = createRedis(opts.redisUrl, { db: opts.db ?? 1 })
  counters.on('error', (err) => fastify.log.debug({ err }, 'rate-limit counter connection error'))
  await connectRedis(counters)
  fastify.addHook('onClose', async () => {
    await counters.quit().catch(() => counters.disconnect())
  })

  async function verifiedAuthority (request: FastifyRequest): Promise<string | undefined> {
    const header = request.headers.authorization
    if (typeof header !== 'string' || !/^Bearer\s/i.test(header)) return undefined
    try {
      const claims = await fastify.verifiedClaims(request)
      return typeof claims.authority === 'string' && registered.has(claims.authority) ? claims.authority : undefined
    } catch {
      return undefined
    }
  }

  await fastify.register(rateLimit, {
    global: false,
    redis: counters,
    nameSpace: `${opts.keyPrefix ?? 'rog:'}rl:`,
    skipOnError: true,
    keyGenerator: async (request: FastifyRequest) => {
      const authority = await verifiedAuthority(request)
      return authority === undefined ? `ip:${request.ip}` : `${authorityKey}${authority}`
    },
    max: async (_request: FastifyRequest, key: string) => limitOf(key).max,
    timeWindow: async (_request: FastifyRequest, key: string) => limitOf(key).timeWindowSeconds * 1000
  })

  const limiter = fastify.createRateLimit()
  fastify.addHook('onRequest', async (request, reply) => {
    const result = await limiter(request)
    if (result.isAllowed) return
    reply.header('x-ratelimit-limit', String(result.max))
    reply.header('x-ratelimit-remaining', String(result.remaining))
    reply.header('x-ratelimit-reset', String(result.ttlInSeconds))
    if (!result.isExceeded) return
    const client = result.key.startsWith(authorityKey) ? result.key.slice(authorityKey.length) : 'anonymous'
    fastify.metrics.rateLimited.inc({ client })
    const retryAfter = Math.max(1, result.ttlInSeconds)
    return sendProblem(reply, 429, `Rate limit of ${result.max} requests per ${Math.round(result.timeWindow / 1000)} s exceeded${client === 'anonymous' ? ' for this client address' : ` for ${client}`}; retry in ${retryAfter} s.`, {
      'retry-after': String(retryAfter)
    })
  })
}

export default fp(rateLimitPlugin, { name: 'rate-limit', fastify: '5.x', dependencies: ['auth', 'metrics'] })
