import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { GatewayConfig } from '../domain/types.js'
import { RequestService } from '../services/request-service.js'
import { PayloadCipher } from '../store/payload-cipher.js'
import { connectRedis, createRedis } from '../store/redis-connection.js'
import { AuditLog } from '../store/audit-log.js'
import { ReportStore } from '../store/report-store.js'
import { RequestStore } from '../store/request-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis
    requestStore: RequestStore
    requests: RequestService
    gatewayConfig: GatewayConfig
    auditLog: AuditLog
    reports: ReportStore
  }
}

export interface StoreOptions {
  redisUrl: string
  payloadKey: Buffer
  gatewayConfig: GatewayConfig
  idempotencyTtlSeconds: number
  keyPrefix?: string
}

async function storePlugin (fastify: FastifyInstance, opts: StoreOptions): Promise<void> {
  const redis = createRedis(opts.redisUrl)
  redis.on('error', (err) => fastify.log.warn({ err }, 'redis connection error'))
  await connectRedis(redis)
  const store = new RequestStore(redis, opts.keyPrefix)
  fastify.decorate('redis', redis)
  fastify.decorate('requestStore', store)
  fastify.decorate('gatewayConfig', opts.gatewayConfig)
  fastify.decorate('auditLog', new AuditLog(redis, store.keys))
  fastify.decorate('reports', new ReportStore(redis, store.keys))
  fastify.decorate('requests', new RequestService(store, new PayloadCipher(opts.payloadKey), opts.gatewayConfig, opts.idempotencyTtlSeconds))
  fastify.addHook('onClose', async () => {
    await redis.quit().catch(() => redis.disconnect())
  })
}

export default fp(storePlugin, { name: 'store', fastify: '5.x' })
