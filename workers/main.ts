import closeWithGrace from 'close-with-grace'
import pino from 'pino'
import { loadEnv } from '../src/config/env.js'
import { loadGatewayConfig } from '../src/config/gateway-config.js'
import { loggerOptions } from '../src/logging.js'
import { loadPayloadKey } from '../src/store/payload-cipher.js'
import { startWorkers } from './runtime.js'

/** An optional duration in ms from the environment (undefined: the default); a bad value stops the worker. */
function optionalMs (name: string): number | undefined {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return undefined
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 100 || value > 3_600_000) throw new Error(`${name}=${JSON.stringify(raw)} must be an integer between 100 and 3600000 (ms)`)
  return value
}

/** The workers on their own (`npm run worker`): they need REDIS_URL, the API's Redis. */
async function main (): Promise<void> {
  const env = loadEnv()
  if (env.redisUrl === undefined) throw new Error('REDIS_URL must be set for a standalone worker (the one the gateway uses)')
  const logger = pino(loggerOptions(env.logLevel) as pino.LoggerOptions)
  const gatewayConfig = loadGatewayConfig(env.gatewayConfigPath)
  const workers = await startWorkers({
    redisUrl: env.redisUrl,
    gatewayConfig,
    payloadKey: loadPayloadKey(env.dataDir, env.payloadKeyBase64),
    logger,
    // How soon a job held by a dead worker is taken back (BullMQ defaults: 30 s each).
    lockDurationMs: optionalMs('WORKER_LOCK_DURATION_MS'),
    stalledIntervalMs: optionalMs('WORKER_STALLED_INTERVAL_MS'),
    // How long audit entries read by a dead dispatcher stay pending before another takes them over (default 30 s).
    claimIdleMs: optionalMs('WORKER_CLAIM_IDLE_MS'),
    // How soon deadlines claimed by a dead worker are fired by another (default 30 s).
    deadlineLeaseMs: optionalMs('WORKER_DEADLINE_LEASE_MS')
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
