import { Queue, Worker } from 'bullmq'
import type { FastifyBaseLogger } from 'fastify'
import { hostname } from 'node:os'
import { Redis } from 'ioredis'
import { directoryOf } from '../src/config/gateway-config.js'
import type { GatewayConfig } from '../src/domain/types.js'
import { RequestService } from '../src/services/request-service.js'
import { PayloadCipher } from '../src/store/payload-cipher.js'
import { RequestStore } from '../src/store/request-store.js'
import type { DeadlineKind } from '../src/domain/deadlines.js'
import { DeadlineClock } from './deadline-clock.js'
import { createDeadlineFirer, type DeadlineFirer } from './deadlines.js'
import { createDeliverer, createDeliveryProcessor } from './delivery.js'
import { Dispatcher } from './dispatcher.js'
import { createQueueConnection, queueNames, queuePrefix, type DeliveryJob } from './queues.js'
import { sweepDeadlines } from './sweep.js'

export interface WorkerOptions {
  redisUrl: string
  gatewayConfig: GatewayConfig
  payloadKey: Buffer
  logger: FastifyBaseLogger
  keyPrefix?: string
  sweepIntervalMs?: number
  deliveryConcurrency?: number
  /** Requests whose deadlines are fired at once. */
  deadlineConcurrency?: number
  /** A request claimed by a deadline worker that died is fired again after this long (ms; default 30 s). */
  deadlineLeaseMs?: number
  /** How often an idle deadline worker looks for due deadlines (ms; default 50). */
  deadlinePollMs?: number
  /** How long close() waits for active jobs before giving up on them (they are retried elsewhere). */
  closeTimeoutMs?: number
  /** BullMQ job lock (ms): a job held by a dead worker is taken back once its lock expires (default 30 s). */
  lockDurationMs?: number
  /** BullMQ stalled-job check interval (ms) (default 30 s). */
  stalledIntervalMs?: number
  /** Audit entries a dead dispatcher read but never dispatched are taken over after this long (default 30 s). */
  claimIdleMs?: number
  /** Told of every delivery attempt and failed job attempt (the API process's metrics, when the workers run in it). */
  observer?: WorkerObserver
}

/** Counts what the workers do, for metrics. */
export interface WorkerObserver {
  /** A webhook delivery attempt to an authority ended: 2xx (delivered) or anything else (failed; retried or given up). */
  deliveryAttempt?: (authority: string, outcome: 'delivered' | 'failed') => void
  /** A job attempt failed on a queue. */
  jobFailed?: (queue: string) => void
  /** The deadline worker fired a request's due deadlines: what it recorded (empty: nothing was left to do). */
  deadlinesFired?: (requestId: string, recorded: DeadlineKind[], at: number) => void
}

export interface RunningWorkers {
  deliveryQueue: Queue<DeliveryJob>
  deadlines: DeadlineFirer
  sweep: () => Promise<{ requests: number, scheduled: number }>
  close: () => Promise<void>
}

const defaultSweepIntervalMs = 10 * 60_000

/** Starts the dispatcher, the delivery worker, the deadline clock and the periodic sweep. */
export async function startWorkers (opts: WorkerOptions): Promise<RunningWorkers> {
  const log = opts.logger.child({ component: 'workers' })
  // Many firings and deliveries at once: commands issued in the same tick go out in one write.
  const storeConnection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null, enableAutoPipelining: true })
  const blocking = createQueueConnection(opts.redisUrl)
  const queueConnection = createQueueConnection(opts.redisUrl)
  const store = new RequestStore(storeConnection, opts.keyPrefix)
  const service = new RequestService(store, new PayloadCipher(opts.payloadKey), opts.gatewayConfig, 0)
  const directory = directoryOf(opts.gatewayConfig)

  const deliveryQueue = new Queue<DeliveryJob>(queueNames.delivery, { connection: queueConnection, prefix: queuePrefix })
  deliveryQueue.on('error', (err) => log.error({ err, queue: deliveryQueue.name }, 'queue error'))

  const stalledJobs = {
    // Jobs are idempotent (the record decides), so a job that stalls again and again is retried, never dropped silently.
    maxStalledCount: 20,
    ...(opts.lockDurationMs === undefined ? {} : { lockDuration: opts.lockDurationMs }),
    ...(opts.stalledIntervalMs === undefined ? {} : { stalledInterval: opts.stalledIntervalMs })
  }
  const workerConnection = createQueueConnection(opts.redisUrl)
  const deliverer = createDeliverer(service, (authority) => directory.authority(authority)?.webhook)
  const deliveryWorker = new Worker<DeliveryJob>(queueNames.delivery, createDeliveryProcessor(deliverer), {
    connection: workerConnection,
    prefix: queuePrefix,
    concurrency: opts.deliveryConcurrency ?? 50,
    ...stalledJobs,
    settings: {
      // The delay before overall attempt n + 1 is scheduleMs[n], counting the dispatcher's immediate attempt.
      backoffStrategy: (attemptsMade: number, _type?: string, _err?: Error, job?: { data: DeliveryJob }) =>
        job?.data.scheduleMs[Math.min((job.data.attemptsBefore ?? 0) + attemptsMade, job.data.scheduleMs.length - 1)] ?? 1000
    }
  })
  deliveryWorker.on('completed', (job, result) => { if (result !== 'no_target') opts.observer?.deliveryAttempt?.(job.data.authority, 'delivered') })
  deliveryWorker.on('failed', (job, err) => {
    log.warn({ err, queue: deliveryWorker.name, jobId: job?.id, attemptsMade: job?.attemptsMade }, 'job attempt failed')
    if (job !== undefined) opts.observer?.deliveryAttempt?.(job.data.authority, 'failed')
    opts.observer?.jobFailed?.(deliveryWorker.name)
  })
  deliveryWorker.on('error', (err) => log.error({ err, queue: deliveryWorker.name }, 'worker error'))

  const deadlines = createDeadlineFirer(service, opts.gatewayConfig)
  const deadlineClock = new DeadlineClock(store, deadlines, log, {
    concurrency: opts.deadlineConcurrency,
    leaseMs: opts.deadlineLeaseMs,
    idlePollMs: opts.deadlinePollMs,
    onFired: opts.observer?.deadlinesFired
  })
  deadlineClock.start()

  const dispatcher = new Dispatcher(blocking, store, deliveryQueue, deliverer, opts.gatewayConfig, log, `${hostname()}-${process.pid}`, {
    claimIdleMs: opts.claimIdleMs,
    onAttempt: (authority, outcome) => {
      if (outcome.kind !== 'no_target') opts.observer?.deliveryAttempt?.(authority, outcome.kind === 'delivered' ? 'delivered' : 'failed')
    }
  })
  await dispatcher.start()

  const sweep = async (): Promise<{ requests: number, scheduled: number }> => {
    const result = await sweepDeadlines(service, opts.gatewayConfig)
    log.info(result, 'deadline sweep done')
    return result
  }
  const runSweep = (): void => { sweep().catch((err: unknown) => log.error({ err }, 'deadline sweep failed')) }
  runSweep()
  const sweepTimer = setInterval(runSweep, opts.sweepIntervalMs ?? defaultSweepIntervalMs)
  sweepTimer.unref()

  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      clearInterval(sweepTimer)
      const bound = opts.closeTimeoutMs ?? 8000
      const drained = Promise.all([dispatcher.stop(), deliveryWorker.close(), deadlineClock.stop()])
      let timer: NodeJS.Timeout | undefined
      const timedOut = await Promise.race([
        drained.then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), bound) })
      ])
      clearTimeout(timer)
      if (timedOut) {
        log.warn({ boundMs: bound }, 'workers did not finish in time; forcing close (active jobs will be retried)')
        await deliveryWorker.close(true)
      }
      await deliveryQueue.close()
      for (const connection of [storeConnection, blocking, queueConnection, workerConnection]) connection.disconnect()
    })()
    return closing
  }
  log.info('workers started')
  return { deliveryQueue, deadlines, sweep, close }
}
