import { directoryOf } from '../src/config/gateway-config.js'
import { nextDeadlineAt } from '../src/domain/deadlines.js'
import type { GatewayConfig } from '../src/domain/types.js'
import type { RequestStore } from '../src/store/request-store.js'

const pageSize = 500

/**
 * Gives every open request that lacks one its entry in the deadline set (lost
 * to a restore from an older backup, a hand-edited keyspace, a bug). Existing
 * entries are left alone: each commit keeps its own request's entry right.
 */
export async function sweepDeadlines (store: RequestStore, config: GatewayConfig): Promise<{ requests: number, scheduled: number }> {
  const directory = directoryOf(config)
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
        const next = nextDeadlineAt(request, directory.agreementById(request.agreementId)?.reminderAtFraction)
        return next !== undefined && await store.rescheduleDeadline(request.id, request.version, next, true)
      }))
      scheduled += written.filter(Boolean).length
      if (ids.length < pageSize) break
    }
  }
  return { requests, scheduled }
}
