import type { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { directoryOf } from '../src/config/gateway-config.js'
import type { AuditEvent } from '../src/domain/events.js'
import { audienceOf } from '../src/domain/notifications.js'
import type { GatewayConfig } from '../src/domain/types.js'
import { decodeStreamEntry, type RequestStore } from '../src/store/request-store.js'
import { deliveryJobId, type DeliveryJob } from './queues.js'

export const dispatchGroup = 'dispatch'
const readCount = 200
const blockMs = 1000
/** Entries another dispatcher read but did not acknowledge for this long are taken over (it died). */
export const defaultClaimIdleMs = 30_000

type StreamReply = Array<[string, Array<[string, string[]]>]> | null

/**
 * Turns committed events into delivery jobs. It reads the audit stream through a
 * consumer group and acknowledges an entry only after its jobs exist, so a crash
 * between a commit and its jobs leaves the entry pending, and it is dispatched
 * again (job ids make the second time a no-op). Deadlines need no dispatching:
 * each commit moves its request's entry in the deadline set itself.
 */
export class Dispatcher {
  #running = false
  #loop: Promise<void> | undefined

  constructor (
    private readonly blocking: Redis,
    private readonly store: RequestStore,
    private readonly delivery: Queue<DeliveryJob>,
    private readonly config: GatewayConfig,
    private readonly log: FastifyBaseLogger,
    private readonly consumer: string,
    private readonly claimIdleMs = defaultClaimIdleMs
  ) {}

  async start (): Promise<void> {
    try {
      await this.store.redis.xgroup('CREATE', this.store.keys.auditStream, dispatchGroup, '0', 'MKSTREAM')
    } catch (error) {
      if (!(error instanceof Error) || !error.message.includes('BUSYGROUP')) throw error
    }
    this.#running = true
    this.#loop = this.#run()
  }

  async stop (): Promise<void> {
    this.#running = false
    await this.#loop
  }

  async #run (): Promise<void> {
    let recovering = true
    let lastRecoveryAt = 0
    while (this.#running) {
      try {
        // At start, after an error, and periodically: a dispatcher that died leaves entries pending.
        if (recovering || Date.now() - lastRecoveryAt >= this.claimIdleMs) {
          await this.#recoverPending()
          recovering = false
          lastRecoveryAt = Date.now()
        }
        const reply = await this.blocking.xreadgroup(
          'GROUP', dispatchGroup, this.consumer, 'COUNT', readCount, 'BLOCK', blockMs, 'STREAMS', this.store.keys.auditStream, '>'
        ) as StreamReply
        if (reply !== null) await this.#dispatch(reply[0][1])
      } catch (error) {
        if (!this.#running) break
        this.log.error({ err: error }, 'dispatcher: reading the event stream failed; retrying')
        recovering = true
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    }
  }

  /** Our own unacknowledged entries (from before a crash), then those of dispatchers that died. */
  async #recoverPending (): Promise<void> {
    const key = this.store.keys.auditStream
    for (;;) {
      const reply = await this.blocking.xreadgroup('GROUP', dispatchGroup, this.consumer, 'COUNT', readCount, 'STREAMS', key, '0') as StreamReply
      const entries = reply?.[0][1].filter(([, fields]) => fields !== null) ?? []
      if (entries.length === 0) break
      await this.#dispatch(entries)
    }
    let cursor = '0-0'
    do {
      const [next, entries] = await this.blocking.xautoclaim(key, dispatchGroup, this.consumer, this.claimIdleMs, cursor, 'COUNT', readCount) as [string, Array<[string, string[]]>]
      await this.#dispatch(entries.filter(([, fields]) => fields !== null))
      cursor = next
    } while (cursor !== '0-0')
  }

  async #dispatch (entries: Array<[string, string[]]>): Promise<void> {
    if (entries.length === 0) return
    const directory = directoryOf(this.config)
    const deliveries: Parameters<Queue<DeliveryJob>['addBulk']>[0] = []
    for (const [id, fields] of entries) {
      const event: AuditEvent = decodeStreamEntry(id, fields)
      for (const audience of audienceOf(event.type)) {
        const authority = event[audience]
        const webhook = directory.authority(authority)?.webhook
        if (webhook === undefined) continue
        const scheduleMs = webhook.retryScheduleSeconds.map((seconds) => seconds * 1000)
        deliveries.push({
          name: event.type,
          data: { eventId: id, authority, event: JSON.stringify(event), scheduleMs, timeoutMs: webhook.timeoutMs },
          opts: {
            jobId: deliveryJobId(id, authority),
            delay: scheduleMs[0] ?? 0,
            attempts: scheduleMs.length,
            backoff: { type: 'schedule' },
            removeOnComplete: { age: 86400 },
            removeOnFail: { age: 30 * 86400 }
          }
        })
      }
    }
    if (deliveries.length > 0) await this.delivery.addBulk(deliveries)
    await this.store.redis.xack(this.store.keys.auditStream, dispatchGroup, ...entries.map(([id]) => id))
  }
}
