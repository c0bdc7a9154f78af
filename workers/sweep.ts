import type { GatewayConfig } from '../src/domain/types.js'
import type { RequestService } from '../src/services/request-service.js'

const pageSize = 500

/**
 * Gives every open request that lacks one its entry in the deadline set (lost
 * to a restore from an older backup, a hand-edited keyspace, a bug). Existing
 * entries are left alone: each commit keeps its own request's entry right.
 */
export async function sweepDeadlines (service: RequestService, config: GatewayConfig): Promise<{ requests: number, scheduled: number }> {
  const store = service.store
  let requests = 0
  let scheduled = 0
  for (const authority of config.authorities) {
    const key = store.keys.box('outbox', authority.id)
    for (let offset = 0; ; offset += pageSize) {
      const ids = await store.redis.zrange(key, offset, offset + pageSize - 1)
      if (ids.length === 0) break
      requests += ids.length
      // Only the requests without an entry are read: a sweep of a million open requests stays a few hundred round trips.
      const scores = await store.redis.zmscore(store.keys.deadlines, ...ids)
      const open = await store.getMany(ids.filter((_, index) => scores[index] === null), { payload: false })
      const written = await Promise.all(open.map(async (request) => {
        const next = service.nextDeadline(request)
        return next !== null && await store.rescheduleDeadline(request.id, request.version, next, true)
      }))
      scheduled += written.filter(Boolean).length
      if (ids.length < pageSize) break
    }
  }
  return { requests, scheduled }
}
