import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { loadEnv } from '../src/config/env.js'
import { loadGatewayConfig } from '../src/config/gateway-config.js'
import { redactPaths } from '../src/logging.js'
import { loadPayloadKey } from '../src/store/payload-cipher.js'
import { startWorkers } from './runtime.js'

/** The workers on their own (`npm run worker`): they need REDIS_URL, the API's Redis. */
async function main (): Promise<void> {
  const env = loadEnv()
  if (env.redisUrl === undefined) throw new Error('REDIS_URL must be set for a standalone worker (the one the gateway uses)')
  const logger = pino({ level: env.logLevel, redact: { paths: redactPaths, censor: '[redacted]' } })
  const gatewayConfig = loadGatewayConfig(env.gatewayConfigPath)
  const workers = await startWorkers({
    redisUrl: env.redisUrl,
    gatewayConfig,
    payloadKey: loadPayloadKey(env.dataDir, env.payloadKeyBase64),
    logger
  })
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err !== undefined) logger.error({ err }, 'worker shutting down after an error')
    else logger.info({ signal }, 'worker shutting down')
    await workers.close()
  })
}

main().catch((error: unknown) => {
  process.stderr.write(`rogatory worker: cannot start: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
