import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { WorkerObserver } from '../../workers/runtime.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatewayMetrics
  }
}

/** Queue and request gauges as read from Redis in one round trip. */
export interface StoreSnapshot {
  queues: Array<{ queue: string, waiting: number, active: number, delayed: number, failed: number }>
  /** Live gauges per direction of a pair and request type (rog:live:<sender>><recipient>:<type>). */
  live: Array<{ sender: string, recipient: string, type: string, open: number, overdue: number }>
  /** Pairs × types beyond the export cap (their series are left out). */
  omitted: number
  /** The deadline set: requests with a clock running, and those whose next deadline has come but not been fired yet. */
  deadlines: { scheduled: number, due: number }
}

/** How long a store snapshot serves scrapes (and how stale a gauge may be). */
export const snapshotTtlMs = 1000

/** At most this many pair × type combinations are exported, to bound the scrape. */
export const maxLiveSeries = 5000

/**
 * The gateway's Prometheus metrics, on a registry of their own. One instance per
 * process: server.ts creates it and hands it both to the app and to in-process
 * workers, whose delivery counters therefore appear on the API's /metrics. A
 * standalone worker (`npm run worker`) has no HTTP server: its counters are not
 * exported (the queue gauges, read from Redis, still are).
 */
export class GatewayMetrics {
  readonly registry = new Registry()
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>
  readonly rateLimited: Counter<'client'>
  readonly deliveryAttempts: Counter<'authority'>
  readonly deliveryFailures: Counter<'authority'>
  readonly jobFailures: Counter<'queue'>
  #source: (() => Promise<StoreSnapshot>) | undefined
  #cache: { at: number, snapshot: Promise<StoreSnapshot | undefined> } | undefined

  constructor () {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    this.httpDuration = new Histogram({
      name: 'rogatory_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by route pattern (never the raw URL) and status',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers
    })
    this.rateLimited = new Counter({
      name: 'rogatory_rate_limited_total',
      help: 'Requests refused with 429, by authority (or "anonymous": no valid token, limited per client address)',
      labelNames: ['client'],
      registers
    })
    this.deliveryAttempts = new Counter({
      name: 'rogatory_delivery_attempts_total',
      help: 'Webhook delivery attempts by recipient authority (workers running in this process)',
      labelNames: ['authority'],
      registers
    })
    this.deliveryFailures = new Counter({
      name: 'rogatory_delivery_failures_total',
      help: 'Failed webhook delivery attempts (retried or given up) by recipient authority (workers running in this process)',
      labelNames: ['authority'],
      registers
    })
    this.jobFailures = new Counter({
      name: 'rogatory_queue_job_failures_total',
      help: 'Failed job attempts by queue (workers running in this process)',
      labelNames: ['queue'],
      registers
    })

    const metrics = this
    new Gauge({
      name: 'rogatory_store_up',
      help: '1 when the last read of the queue and request gauges from Redis succeeded',
      registers,
      async collect () {
        this.set((await metrics.snapshot()) === undefined ? 0 : 1)
      }
    })
    new Gauge({
      name: 'rogatory_queue_jobs',
      help: 'Jobs per queue and state (waiting includes paused and prioritized jobs)',
      labelNames: ['queue', 'state'],
      registers,
      async collect () {
        const snapshot = await metrics.snapshot()
        this.reset()
        for (const q of snapshot?.queues ?? []) {
          for (const state of ['waiting', 'active', 'delayed', 'failed'] as const) this.set({ queue: q.queue, state }, q[state])
        }
      }
    })
    new Gauge({
      name: 'rogatory_requests_open',
      help: 'Open requests per direction of a pair (sender → recipient) and type',
      labelNames: ['sender', 'recipient', 'type'],
      registers,
      async collect () {
        const snapshot = await metrics.snapshot()
        this.reset()
        for (const row of snapshot?.live ?? []) this.set({ sender: row.sender, recipient: row.recipient, type: row.type }, row.open)
      }
    })
    new Gauge({
      name: 'rogatory_requests_overdue',
      help: 'Open requests with an overdue acknowledgement or response, per direction of a pair and type',
      labelNames: ['sender', 'recipient', 'type'],
      registers,
      async collect () {
        const snapshot = await metrics.snapshot()
        this.reset()
        for (const row of snapshot?.live ?? []) this.set({ sender: row.sender, recipient: row.recipient, type: row.type }, row.overdue)
      }
    })
    new Gauge({
      name: 'rogatory_deadlines',
      help: 'Requests in the deadline set: scheduled (a clock running), due (their next reminder or deadline has come and is not fired yet; staying above zero means the deadline worker is behind or down)',
      labelNames: ['state'],
      registers,
      async collect () {
        const snapshot = await metrics.snapshot()
        this.reset()
        if (snapshot === undefined) return
        this.set({ state: 'scheduled' }, snapshot.deadlines.scheduled)
        this.set({ state: 'due' }, snapshot.deadlines.due)
      }
    })
    new Gauge({
      name: 'rogatory_requests_series_omitted',
      help: `Pair × type combinations left out of rogatory_requests_open/overdue (more than ${maxLiveSeries})`,
      registers,
      async collect () {
        this.set((await metrics.snapshot())?.omitted ?? 0)
      }
    })
  }

  /** What in-process workers report to (see workers/runtime.ts). */
  get workerObserver (): WorkerObserver {
    return {
      deliveryAttempt: (authority, outcome) => {
        this.deliveryAttempts.inc({ authority })
        if (outcome === 'failed') this.deliveryFailures.inc({ authority })
      },
      jobFailed: (queue) => { this.jobFailures.inc({ queue }) }
    }
  }

  /** Where the store gauges come from (the app sets it; undefined: no store, the gauges stay empty). */
  setSource (source: (() => Promise<StoreSnapshot>) | undefined): void {
    this.#source = source
    this.#cache = undefined
  }

  /**
   * The store gauges, read at most once per snapshotTtlMs however many scrapes
   * and gauges ask; undefined when Redis could not be read.
   */
  async snapshot (): Promise<StoreSnapshot | undefined> {
    const source = this.#source
    if (source === undefined) return undefined
    const now = Date.now()
    if (this.#cache === undefined || now - this.#cache.at >= snapshotTtlMs) {
      this.#cache = { at: now, snapshot: source().catch(() => undefined) }
    }
    return await this.#cache.snapshot
  }
}

export function createMetrics (): GatewayMetrics {
  return new GatewayMetrics()
}

export interface MetricsOptions {
  /** The process's metrics (server.ts); a fresh instance when absent (tests, embedding). */
  metrics?: GatewayMetrics
  /** The store's key prefix (default rog:). */
  keyPrefix?: string
}

const parseCombo = (combo: string): { sender: string, recipient: string, type: string } | undefined => {
  const match = /^([^>]+)>([^:]+):(.+)$/.exec(combo)
  return match === null ? undefined : { sender: match[1], recipient: match[2], type: match[3] }
}

/**
 * Registers the metrics: the HTTP histogram (onResponse, labelled by the route
 * pattern), and the store gauges, read in collect() with one pipeline over the
 * queue connection: the BullMQ lists and sorted sets of the queues, the size of
 * the deadline set, and the
 * live gauges of every pair via SORT_RO … GET (so no second round trip for the
 * hashes). Needs the queues plugin.
 */
async function metricsPlugin (fastify: FastifyInstance, opts: MetricsOptions): Promise<void> {
  const metrics = opts.metrics ?? createMetrics()
  const prefix = opts.keyPrefix ?? 'rog:'
  fastify.decorate('metrics', metrics)

  fastify.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration.observe({
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status_code: String(reply.statusCode)
    }, reply.elapsedTime / 1000)
  })

  const { connection, all } = fastify.queues
  metrics.setSource(async () => {
    const pipeline = connection.pipeline()
    for (const queue of all) {
      pipeline.llen(queue.keys.wait)
      pipeline.llen(queue.keys.paused)
      pipeline.zcard(queue.keys.prioritized)
      pipeline.llen(queue.keys.active)
      pipeline.zcard(queue.keys.delayed)
      pipeline.zcard(queue.keys.failed)
    }
    pipeline.zcard(`${prefix}deadlines`)
    pipeline.zcount(`${prefix}deadlines`, '-inf', Date.now())
    pipeline.scard(`${prefix}live:combos`)
    pipeline.call('SORT_RO', `${prefix}live:combos`, 'BY', 'nosort', 'LIMIT', '0', String(maxLiveSeries),
      'GET', '#', 'GET', `${prefix}live:*->open`, 'GET', `${prefix}live:*->overdue`)
    const results = (await pipeline.exec()) ?? []
    const values = results.map(([err, value]) => {
      if (err !== null) throw err
      return value
    })
    const queues = all.map((queue, i) => {
      const [wait, paused, prioritized, active, delayed, failed] = values.slice(i * 6, i * 6 + 6).map(Number)
      return { queue: queue.name, waiting: wait + paused + prioritized, active, delayed, failed }
    })
    const base = all.length * 6
    const deadlines = { scheduled: Number(values[base]), due: Number(values[base + 1]) }
    const combos = Number(values[base + 2])
    const flat = (values[base + 3] ?? []) as Array<string | null>
    const live: StoreSnapshot['live'] = []
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const parsed = parseCombo(flat[i] ?? '')
      if (parsed !== undefined) live.push({ ...parsed, open: Number(flat[i + 1] ?? 0), overdue: Number(flat[i + 2] ?? 0) })
    }
    return { queues, live, omitted: Math.max(0, combos - maxLiveSeries), deadlines }
  })
  fastify.addHook('onClose', async () => { metrics.setSource(undefined) })
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x', dependencies: ['queues'] })
