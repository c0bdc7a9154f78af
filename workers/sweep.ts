import type { Queue } from 'bullmq'
import type { GatewayConfig } from '../src/domain/types.js'
import type { RequestStore } from '../src/store/request-store.js'
import { scheduleDeadlines } from './dispatcher.js'
import type { DeadlineJob } from './queues.js'

const pageSize = 500

/**
 * Re-creates the deadline jobs of every open request. Jobs lost to a crash, a
 * flushed queue or a failed enqueue come back; existing ones are untouched
 * (deterministic ids), and a job that already fired finds itself stale.
 */
export async function sweepDeadlines (store: RequestStore, deadlines: Queue<DeadlineJob>, config: GatewayConfig): Promise<{ requests: number, jobs: number }> {
  let requests = 0
  let jobs = 0
  for (const authority of config.authorities) {
    const key = store.keys.box('outbox', authority.id)
    for (let offset = 0; ; offset += pageSize) {
      const ids = await store.redis.zrange(key, offset, offset + pageSize - 1)
      if (ids.length === 0) break
      const open = await store.getMany(ids)
      requests += open.length
      jobs += await scheduleDeadlines(deadlines, open, config)
      if (ids.length < pageSize) break
    }
  }
  return { requests, jobs }
}
