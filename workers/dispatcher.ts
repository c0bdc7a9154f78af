import type { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { directoryOf } from '../src/config/gateway-config.js'
import { audienceOf } from '../src/domain/notifications.js'
import type { GatewayConfig } from '../src/domain/types.js'
import { decodeStreamEntry, type RequestStore } from '../src/store/request-store.js'
import type { AttemptOutcome, Deliverer } from './delivery.js'
import { deliveryJobId, type DeliveryJob } from './queues.js'

export const dispatchGroup = 'dispatch'
const readCount = 200
const blockMs = 1000
/** Entries another dispatcher read but did not acknowledge for this long are taken over (it died). */
export const defaultClaimIdleMs = 30_000
/** Stream entries being worked on at once; the reading pauses beyond. */
const maxEntriesInFlight = 1000

type StreamReply = Array<[string, Array<[string, string[]]>]> | null
type Entry = [string, string[]]

export interface DispatcherOptions {
  claimIdleMs?: number
  /** Told of each immediate attempt's outcome (metrics). */
  onAttempt?: (authority: string, outcome: AttemptOutcome) => void
}

/**
 * Turns committed events into webhook deliveries. It reads the audit stream
 * through a consumer group and makes each delivery's first attempt at once
 * (when the authority's schedule starts at 0), handing it to the delivery queue
 * only if it must be retried; it acknowledges an entry only once each of its
 * deliveries succeeded, was given up, or sits in the queue. So a crash leaves
 * the entry pending and it is dispatched again: a repeat at worst, under the
 * same webhook-id (job ids make a second enqueue a no-op). Deadlines need no
 * dispatching: each commit moves its request's entry in the deadline set.
 */
export class Dispatcher {
  #running = false
  #loop: Promise<void> | undefined
  readonly #inFlight = new Map<string, Promise<void>>()
  #acks: Array<{ id: string, resolve: () => void, reject: (error: unknown) => void }> = []
  #flushing = false
  readonly #claimIdleMs: number

  constructor (
    private readonly blocking: Redis,
    private readonly store: RequestStore,
    private readonly delivery: Queue<DeliveryJob>,
    private readonly deliver: Deliverer,
    private readonly config: GatewayConfig,
    private readonly log: FastifyBaseLogger,
    private readonly consumer: string,
    private readonly options: DispatcherOptions = {}
  ) {
    this.#claimIdleMs = options.claimIdleMs ?? defaultClaimIdleMs
  }

  async start (): Promise<void> {
    try {
      await this.store.redis.xgroup('CREATE', this.store.keys.auditStream, dispatchGroup, '0', 'MKSTREAM')
    } catch (error) {
      if (!(error instanceof Error) || !error.message.includes('BUSYGROUP')) throw error
    }
    this.#running = true
    this.#loop = this.#run()
  }

  /** Stops reading, and waits for the deliveries under way (a bound is the caller's). */
  async stop (): Promise<void> {
    this.#running = false
    await this.#loop
    await Promise.all(this.#inFlight.values())
  }

  async #run (): Promise<void> {
    let recovering = true
    let lastRecoveryAt = 0
    while (this.#running) {
      try {
        // At start, after an error, and periodically: a dispatcher that died leaves entries pending.
        if (recovering || Date.now() - lastRecoveryAt >= this.#claimIdleMs) {
          await this.#recoverPending()
          recovering = false
          lastRecoveryAt = Date.now()
        }
        while (this.#inFlight.size >= maxEntriesInFlight) await Promise.race(this.#inFlight.values())
        const reply = await this.blocking.xreadgroup(
          'GROUP', dispatchGroup, this.consumer, 'COUNT', readCount, 'BLOCK', blockMs, 'STREAMS', this.store.keys.auditStream, '>'
        ) as StreamReply
        if (reply !== null) this.#dispatch(reply[0][1])
      } catch (error) {
        if (!this.#running) break
        this.log.error({ err: error }, 'dispatcher: reading the event stream failed; retrying')
        recovering = true
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
    }
  }

  /** Our own unacknowledged entries (from before a crash or an error), then those of dispatchers that died. */
  async #recoverPending (): Promise<void> {
    const key = this.store.keys.auditStream
    let after = '0'
    for (;;) {
      const reply = await this.blocking.xreadgroup('GROUP', dispatchGroup, this.consumer, 'COUNT', readCount, 'STREAMS', key, after) as StreamReply
      const entries = reply?.[0][1] ?? []
      if (entries.length === 0) break
      after = entries[entries.length - 1][0]
      await Promise.all(this.#dispatch(entries.filter(([, fields]) => fields !== null)))
    }
    let cursor = '0-0'
    do {
      const [next, entries] = await this.blocking.xautoclaim(key, dispatchGroup, this.consumer, this.#claimIdleMs, cursor, 'COUNT', readCount) as [string, Entry[]]
      await Promise.all(this.#dispatch(entries.filter(([, fields]) => fields !== null)))
      cursor = next
    } while (cursor !== '0-0')
  }

  /** Starts the work of each entry (not already under way); returns the promises of those it started. */
  #dispatch (entries: Entry[]): Array<Promise<void>> {
    const started: Array<Promise<void>> = []
    for (const [id, fields] of entries) {
      if (this.#inFlight.has(id)) continue
      const work = this.#handle(id, fields)
        .then(() => this.#ack(id))
        .catch((err: unknown) => {
          // Left pending: dispatched again at the next recovery.
          this.log.error({ err, eventId: id }, 'dispatcher: an event could not be handed on; it stays pending')
        })
        .finally(() => this.#inFlight.delete(id))
      this.#inFlight.set(id, work)
      started.push(work)
    }
    return started
  }

  async #handle (id: string, fields: string[]): Promise<void> {
    const directory = directoryOf(this.config)
    const event = decodeStreamEntry(id, fields)
    const queued: Parameters<Queue<DeliveryJob>['addBulk']>[0] = []
    await Promise.all(audienceOf(event.type).map(async (audience) => {
      const authority = event[audience]
      const webhook = directory.authority(authority)?.webhook
      if (webhook === undefined) return
      const scheduleMs = webhook.retryScheduleSeconds.map((seconds) => seconds * 1000)
      // The body as logged: the event itself, without the stream's own fields (seq, hash) or a second serialization.
      const delivery: DeliveryJob = { eventId: id, authority, event: event.body, scheduleMs, timeoutMs: webhook.timeoutMs }
      let attemptsBefore = 0
      if ((scheduleMs[0] ?? 0) === 0) {
        const outcome = await this.deliver(delivery, 1)
        this.options.onAttempt?.(authority, outcome)
        if (outcome.kind !== 'retry') return
        attemptsBefore = 1
      }
      queued.push({
        name: event.type,
        data: { ...delivery, attemptsBefore },
        opts: {
          jobId: deliveryJobId(id, authority),
          delay: scheduleMs[attemptsBefore] ?? 0,
          attempts: scheduleMs.length - attemptsBefore,
          backoff: { type: 'schedule' },
          removeOnComplete: { age: 86400 },
          removeOnFail: { age: 30 * 86400 }
        }
      })
    }))
    if (queued.length > 0) await this.delivery.addBulk(queued)
  }

  /** Acknowledges entries in batches: one XACK for whatever finished meanwhile. */
  async #ack (id: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#acks.push({ id, resolve, reject })
      if (this.#flushing) return
      this.#flushing = true
      setImmediate(() => { void this.#flushAcks() })
    })
  }

  async #flushAcks (): Promise<void> {
    while (this.#acks.length > 0) {
      const batch = this.#acks
      this.#acks = []
      try {
        await this.store.redis.xack(this.store.keys.auditStream, dispatchGroup, ...batch.map((waiter) => waiter.id))
        for (const waiter of batch) waiter.resolve()
      } catch (error) {
        for (const waiter of batch) waiter.reject(error)
      }
    }
    this.#flushing = false
  }
}
