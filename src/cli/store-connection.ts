import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { Env } from '../config/env.js'
import { EmbeddedRedis } from '../store/embedded-redis.js'

export interface CliRedis {
  redis: Redis
  close: () => Promise<void>
}

/**
 * For command-line tools: REDIS_URL when set; else the running gateway's own
 * redis-server (its socket under DATA_DIR); else that data, opened by starting
 * the embedded server for the duration of the command.
 */
export async function connectForCli (env: Pick<Env, 'redisUrl' | 'dataDir' | 'redisAppendfsync'>): Promise<CliRedis> {
  const open = async (url: string, stop: () => Promise<void> = async () => {}): Promise<CliRedis> => {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
    await redis.connect()
    return { redis, close: async () => { redis.disconnect(); await stop() } }
  }
  if (env.redisUrl !== undefined) return open(env.redisUrl)
  const socket = join(env.dataDir, 'redis', 'redis.sock')
  if (existsSync(socket)) {
    try {
      return await open(socket)
    } catch {
      // A socket left by a stopped gateway: start the server on its data below.
    }
  }
  const embedded = new EmbeddedRedis({ dataDir: env.dataDir, appendfsync: env.redisAppendfsync })
  const url = await embedded.start()
  return open(url, () => embedded.stop())
}
