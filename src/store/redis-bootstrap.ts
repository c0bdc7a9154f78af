import type { FastifyBaseLogger } from 'fastify'
import { join } from 'node:path'
import type { Env } from '../config/env.js'
import { checkExternalRedis, EmbeddedRedis } from './embedded-redis.js'

export interface ResolvedRedis {
  url: string
  /** Stops the embedded server; nothing for an external one. */
  stop: () => Promise<void>
}

/** REDIS_URL when set (checked for noeviction), else our own supervised redis-server under DATA_DIR. */
export async function resolveRedis (env: Pick<Env, 'redisUrl' | 'dataDir' | 'redisAppendfsync'>, logger: FastifyBaseLogger): Promise<ResolvedRedis> {
  if (env.redisUrl !== undefined) {
    await checkExternalRedis(env.redisUrl, { logger })
    return { url: env.redisUrl, stop: async () => {} }
  }
  const embedded = new EmbeddedRedis({
    dataDir: join(env.dataDir),
    logger,
    appendfsync: env.redisAppendfsync,
    // Serving without a store helps nobody: exit and let the supervisor of this process restart it.
    onFatal: (err: Error) => {
      logger.fatal({ err }, 'embedded redis-server keeps dying; exiting')
      process.exit(1)
    }
  })
  const url = await embedded.start()
  logger.info({ dataDir: env.dataDir }, 'embedded redis-server started')
  return { url, stop: async () => { await embedded.stop() } }
}
