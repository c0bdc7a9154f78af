import closeWithGrace from 'close-with-grace'
import Fastify, { type FastifyInstance } from 'fastify'
import app, { serverOptions } from './app.js'
import { loadEnv, type Env } from './config/env.js'
import { loadGatewayConfig } from './config/gateway-config.js'
import type { GatewayConfig } from './domain/types.js'
import { resolveRedis, type ResolvedRedis } from './store/redis-bootstrap.js'
import { loadPayloadKey } from './store/payload-cipher.js'

const shutdownGraceMs = 10_000

/** Boots the gateway: checks config, brings up Redis (own or external), serves the API. */
async function main (): Promise<void> {
  const env = loadEnv()
  const gatewayConfig = loadGatewayConfig(env.gatewayConfigPath)
  const fastify = Fastify(serverOptions(env))
  const redis = await resolveRedis(env, fastify.log)
  try {
    await serve(env, gatewayConfig, fastify, redis)
  } catch (error) {
    await redis.stop()
    throw error
  }
}

async function serve (env: Env, gatewayConfig: GatewayConfig, fastify: FastifyInstance, redis: ResolvedRedis): Promise<void> {
  const payloadKey = loadPayloadKey(env.dataDir, env.payloadKeyBase64)
  await fastify.register(app, {
    gatewayConfig,
    redisUrl: redis.url,
    payloadKey,
    authDevSecret: env.authDevSecret,
    idempotencyTtlSeconds: env.idempotencyTtlSeconds
  })
  let closeWorkers = async (): Promise<void> => {}
  if (env.runWorkers) {
    const { startWorkers } = await import('../workers/runtime.js')
    const workers = await startWorkers({ redisUrl: redis.url, gatewayConfig, payloadKey, logger: fastify.log })
    closeWorkers = workers.close
  }
  if (env.authDevSecret !== undefined) fastify.log.warn('AUTH_DEV_SECRET is set: HS256 development tokens are accepted')

  closeWithGrace({ delay: shutdownGraceMs }, async ({ signal, err }) => {
    if (err !== undefined) fastify.log.error({ err }, 'shutting down after an error')
    else fastify.log.info({ signal }, 'shutting down')
    // The API drains first, then the workers, and Redis goes last: everyone writes to it.
    await fastify.close()
    await closeWorkers()
    await redis.stop()
  })
  await fastify.listen({ port: env.port, host: env.host })
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error)
  process.stderr.write(`rogatory: cannot start: ${message}\n`)
  process.exit(1)
})
