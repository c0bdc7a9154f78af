import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import app, { serverOptions } from './app.js'
import { loadEnv } from './config/env.js'
import { loadGatewayConfig } from './config/gateway-config.js'
import { resolveRedis } from './store/redis-bootstrap.js'
import { loadPayloadKey } from './store/payload-cipher.js'

const shutdownGraceMs = 10_000

/** Boots the gateway: checks config, brings up Redis (own or external), serves the API. */
async function main (): Promise<void> {
  const env = loadEnv()
  const gatewayConfig = loadGatewayConfig(env.gatewayConfigPath)
  const fastify = Fastify(serverOptions(env))
  const redis = await resolveRedis(env, fastify.log)
  const payloadKey = loadPayloadKey(env.dataDir, env.payloadKeyBase64)
  await fastify.register(app, {
    gatewayConfig,
    redisUrl: redis.url,
    payloadKey,
    authDevSecret: env.authDevSecret,
    idempotencyTtlSeconds: env.idempotencyTtlSeconds
  })
  fastify.addHook('onClose', async () => { await redis.stop() })
  if (env.authDevSecret !== undefined) fastify.log.warn('AUTH_DEV_SECRET is set: HS256 development tokens are accepted')

  closeWithGrace({ delay: shutdownGraceMs }, async ({ signal, err }) => {
    if (err !== undefined) fastify.log.error({ err }, 'shutting down after an error')
    else fastify.log.info({ signal }, 'shutting down')
    await fastify.close()
  })
  await fastify.listen({ port: env.port, host: env.host })
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error)
  process.stderr.write(`rogatory: cannot start: ${message}\n`)
  process.exit(1)
})
