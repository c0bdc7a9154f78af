import { Queue, Worker } from 'bullmq'
import type { FastifyBaseLogger } from 'fastify'
import { hostname } from 'node:os'
import { directoryOf } from '../src/config/gateway-config.js'
import type { GatewayConfig } from '../src/domain/types.js'
import { RequestService } from '../src/services/request-service.js'
import { PayloadCipher } from '../src/store/payload-cipher.js'
import { RequestStore } from '../src/store/request-store.js'
import { createDeadlineProcessor } from './deadlines.js'
import { createDeliveryProcessor } from './delivery.js'
import { Dispatcher } from './dispatcher.js'
import { createQueueConnection, queueNames, queuePrefix, type DeadlineJob, type DeliveryJob } from './queues.js'
import { sweepDeadlines } from './sweep.js'

export interface WorkerOptions {
  redisUrl: string
  gatewayConfig: GatewayConfig
  payloadKey: Buffer
  logger: FastifyBaseLogger
  keyPrefix?: string
  sweepIntervalMs?: number
  deliveryConcurrency?: number
  deadlineConcurrency?: number
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
}

export interface RunningWorkers {
  deliveryQueue: Queue<DeliveryJob>
  deadlineQueue: Queue<DeadlineJob>
  sweep: () => Promise<{ requests: number, jobs: number }>
  close: () => Promise<void>
}

const defaultSweepIntervalMs = 10 * 60_000

/** Starts the dispatcher, the delivery and deadline workers, and the periodic sweep. */
export async function startWorkers (opts: WorkerOptions): Promise<RunningWorkers> {
  const log = opts.logger.child({ component: 'workers' })
  const storeConnection = createQueueConnection(opts.redisUrl)
  const blocking = createQueueConnection(opts.redisUrl)
  const queueConnection = createQueueConnection(opts.redisUrl)
  const store = new RequestStore(storeConnection, opts.keyPrefix)
  const service = new RequestService(store, new PayloadCipher(opts.payloadKey), opts.gatewayConfig, 0)
  const directory = directoryOf(opts.gatewayConfig)

  const deliveryQueue = new Queue<DeliveryJob>(queueNames.delivery, { connection: queueConnection, prefix: queuePrefix })
  const deadlineQueue = new Queue<DeadlineJob>(queueNames.deadlines, { connection: queueConnection, prefix: queuePrefix })
  for (const queue of [deliveryQueue, deadlineQueue]) queue.on('error', (err) => log.error({ err, queue: queue.name }, 'queue error'))

  const stalledJobs = {
    // Jobs are idempotent (the record decides), so a job that stalls again and again is retried, never dropped silently.
    maxStalledCount: 20,
    ...(opts.lockDurationMs === undefined ? {} : { lockDuration: opts.lockDurationMs }),
    ...(opts.stalledIntervalMs === undefined ? {} : { stalledInterval: opts.stalledIntervalMs })
  }
  const workerConnections = [createQueueConnection(opts.redisUrl), createQueueConnection(opts.redisUrl)]
  const deliveryWorker = new Worker<DeliveryJob>(queueNames.delivery, createDeliveryProcessor(service, (authority) => directory.authority(authority)?.webhook), {
    connection: workerConnections[0],
    prefix: queuePrefix,
    concurrency: opts.deliveryConcurrency ?? 50,
    ...stalledJobs,
    settings: {
      backoffStrategy: (attemptsMade: number, _type?: string, _err?: Error, job?: { data: DeliveryJob }) =>
        job?.data.scheduleMs[Math.min(attemptsMade, job.data.scheduleMs.length - 1)] ?? 1000
    }
  })
  deliveryWorker.on('completed', (job, result) => { if (result !== 'no_target') opts.observer?.deliveryAttempt?.(job.data.authority, 'delivered') })
  deliveryWorker.on('failed', (job) => { if (job !== undefined) opts.observer?.deliveryAttempt?.(job.data.authority, 'failed') })
  const deadlineWorker = new Worker<DeadlineJob>(queueNames.deadlines, createDeadlineProcessor(service, opts.gatewayConfig), {
    connection: workerConnections[1],
    prefix: queuePrefix,
    concurrency: opts.deadlineConcurrency ?? 50,
    ...stalledJobs
  })
  for (const worker of [deliveryWorker, deadlineWorker]) {
    worker.on('error', (err) => log.error({ err, queue: worker.name }, 'worker error'))
    worker.on('failed', (job, err) => log.warn({ err, queue: worker.name, jobId: job?.id, attemptsMade: job?.attemptsMade }, 'job attempt failed'))
    worker.on('failed', () => opts.observer?.jobFailed?.(worker.name))
  }

  const dispatcher = new Dispatcher(blocking, store, deliveryQueue, deadlineQueue, opts.gatewayConfig, log, `${hostname()}-${process.pid}`, opts.claimIdleMs)
  await dispatcher.start()

  const sweep = async (): Promise<{ requests: number, jobs: number }> => {
    const result = await sweepDeadlines(store, deadlineQueue, opts.gatewayConfig)
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
      const drained = Promise.all([dispatcher.stop(), deliveryWorker.close(), deadlineWorker.close()])
      let timer: NodeJS.Timeout | undefined
      const timedOut = await Promise.race([
        drained.then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), bound) })
      ])
      clearTimeout(timer)
      if (timedOut) {
        log.warn({ boundMs: bound }, 'workers did not finish in time; forcing close (active jobs will be retried)')
        await Promise.all([deliveryWorker.close(true), deadlineWorker.close(true)])
      }
      await Promise.all([deliveryQueue.close(), deadlineQueue.close()])
      for (const connection of [storeConnection, blocking, queueConnection, ...workerConnections]) connection.disconnect()
    })()
    return closing
  }
  log.info('workers started')
  return { deliveryQueue, deadlineQueue, sweep, close }
}
