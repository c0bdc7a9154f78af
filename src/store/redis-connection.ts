import { Redis, type RedisOptions } from 'ioredis'

/**
 * A connection for request handling: no offline queue and a command timeout, so
 * that while Redis is down callers get a fast error (answered 503), never a hang.
 */
export function createRedis (url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 5000,
    connectTimeout: 5000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    lazyConnect: true,
    ...options
  })
}

/** Connects, waiting at most `timeoutMs` for the server to answer. */
export async function connectRedis (redis: Redis, timeoutMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs) })
    ])
  } finally {
    clearTimeout(timer)
  }
}
