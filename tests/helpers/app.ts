// Builds the real gateway (app plugin, real Redis, real JWT) for a tap test and
// tears it down afterwards.
import Fastify, { type FastifyInstance } from 'fastify'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import app, { serverOptions } from '../../src/app.js'
import { mintDevToken } from '../../src/auth/dev-token.js'
import { packageRoot } from '../../src/config/env.js'
import type { GatewayConfig, Role } from '../../src/domain/types.js'
import { demoConfig } from './config.js'
import { startRedis, type TestRedis } from './redis.js'

export { demoConfig }

export const devSecret = 'test-dev-secret-0123456789abcdef'
export const payloadKey = Buffer.alloc(32, 7)

interface Teardownable { teardown: (fn: () => unknown) => void }

export interface TestApp {
  app: FastifyInstance
  redis: TestRedis
  config: GatewayConfig
  token: (authority: string, roles?: Role[] | string, sub?: string) => string
}

/** A complete valid POST body from schemas/examples (a fresh copy each call). */
export function example (name: 'mla-request' | 'repatriation-request', senderReference?: string): Record<string, any> {
  const body = JSON.parse(readFileSync(join(packageRoot(), 'schemas', 'examples', `${name}.json`), 'utf8')) as Record<string, any>
  if (senderReference !== undefined) body.senderReference = senderReference
  return body
}

export async function buildApp (t: Teardownable, opts: { config?: GatewayConfig, redis?: TestRedis, bodyLimitBytes?: number } = {}): Promise<TestApp> {
  const redis = opts.redis ?? await startRedis(t)
  const config = opts.config ?? demoConfig()
  const fastify = Fastify(serverOptions({ logLevel: process.env.TEST_LOG_LEVEL ?? 'silent', bodyLimitBytes: opts.bodyLimitBytes ?? 1024 * 1024 }))
  await fastify.register(app, { gatewayConfig: config, redisUrl: redis.url, payloadKey, authDevSecret: devSecret, idempotencyTtlSeconds: 86400 })
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

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
