import closeWithGrace from 'close-with-grace'
import Fastify, { type FastifyInstance } from 'fastify'
import app, { serverOptions } from './app.js'
import { loadEnv, type Env } from './config/env.js'
import { loadGatewayConfig } from './config/gateway-config.js'
import type { GatewayConfig } from './domain/types.js'
import { createMetrics } from './plugins/metrics.js'
import { resolveRedis, type ResolvedRedis } from './store/redis-bootstrap.js'
import { loadPayloadKey } from './store/payload-cipher.js'

/**
 * SIGTERM/SIGINT: the process exits within this bound, 0 when everything
 * closed in time, 1 otherwise (close-with-grace). Within it: the API stops
 * accepting connections and finishes the requests in flight (answering 503 to
 * any that arrive on an open connection meanwhile), for at most httpDrainMs,
 * after which the remaining connections are cut; then the workers finish their
 * active jobs, for at most workerDrainMs, after which those jobs are released
 * (their locks lapse and another worker retries them); then Redis, which
 * everyone writes to, stops last.
 */
const shutdownGraceMs = 10_000
const httpDrainMs = 4_000
const workerDrainMs = 4_000

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
  // One metrics registry for the process: in-process workers count into it too.
  const metrics = createMetrics()
  await fastify.register(app, {
    gatewayConfig,
    redisUrl: redis.url,
    payloadKey,
    authDevSecret: env.authDevSecret,
    idempotencyTtlSeconds: env.idempotencyTtlSeconds,
    metrics
  })
  let closeWorkers = async (): Promise<void> => {}
  if (env.runWorkers) {
    const { startWorkers } = await import('../workers/runtime.js')
    const workers = await startWorkers({ redisUrl: redis.url, gatewayConfig, payloadKey, logger: fastify.log, observer: metrics.workerObserver, closeTimeoutMs: workerDrainMs })
    closeWorkers = workers.close
  }
  if (env.authDevSecret !== undefined) fastify.log.warn('AUTH_DEV_SECRET is set: HS256 development tokens are accepted')

  closeWithGrace({ delay: shutdownGraceMs }, async ({ signal, err }) => {
    if (err !== undefined) fastify.log.error({ err }, 'shutting down after an error')
    else fastify.log.info({ signal }, 'shutting down')
    // The API drains first (what it commits, the dispatcher still hands to the
    // queues), then the workers, and Redis goes last: everyone writes to it.
    const cut = setTimeout(() => {
      fastify.log.warn({ boundMs: httpDrainMs }, 'requests still in flight after the drain bound; closing their connections')
      fastify.server.closeAllConnections()
    }, httpDrainMs)
    try {
      await fastify.close()
    } finally {
      clearTimeout(cut)
    }
    await closeWorkers()
    await redis.stop()
    fastify.log.info('shut down')
  })
  await fastify.listen({ port: env.port, host: env.host })
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error)
  process.stderr.write(`rogatory: cannot start: ${message}\n`)
  process.exit(1)
})
