// A standalone worker process for the crash tests: the workers of
// workers/runtime.ts, nothing else, so that a test can SIGKILL them mid-job.
//
//   REDIS_URL=redis://127.0.0.1:PORT ROG_WORKER_SPEC=/tmp/spec.json \
//     node --import tsx tests/helpers/worker-process.ts
//
// The spec file (JSON) holds { gatewayConfig, payloadKeyBase64 } and optionally
// { redisUrl (when REDIS_URL is unset), lockDurationMs, stalledIntervalMs, claimIdleMs, deliveryConcurrency }.
// Prints "ready <pid>" on stdout once the workers run; on SIGTERM closes them
// and exits 0.
import { readFileSync } from 'node:fs'
import pino from 'pino'
import type { GatewayConfig } from '../../src/domain/types.js'
import { startWorkers } from '../../workers/runtime.js'

export interface WorkerProcessSpec {
  redisUrl?: string
  gatewayConfig: GatewayConfig
  payloadKeyBase64: string
  lockDurationMs?: number
  stalledIntervalMs?: number
  claimIdleMs?: number
  deliveryConcurrency?: number
}

async function main (): Promise<void> {
  const specPath = process.env.ROG_WORKER_SPEC
  if (specPath === undefined) throw new Error('ROG_WORKER_SPEC must name the spec file')
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as WorkerProcessSpec
  const redisUrl = process.env.REDIS_URL ?? spec.redisUrl
  if (redisUrl === undefined) throw new Error('REDIS_URL must be set')
  const workers = await startWorkers({
    redisUrl,
    gatewayConfig: spec.gatewayConfig,
    payloadKey: Buffer.from(spec.payloadKeyBase64, 'base64'),
    logger: pino({ level: process.env.WORKER_LOG_LEVEL ?? 'silent' }),
    closeTimeoutMs: 1000,
    ...(spec.lockDurationMs === undefined ? {} : { lockDurationMs: spec.lockDurationMs }),
    ...(spec.stalledIntervalMs === undefined ? {} : { stalledIntervalMs: spec.stalledIntervalMs }),
    ...(spec.claimIdleMs === undefined ? {} : { claimIdleMs: spec.claimIdleMs }),
    ...(spec.deliveryConcurrency === undefined ? {} : { deliveryConcurrency: spec.deliveryConcurrency })
  })
  process.once('SIGTERM', () => {
    workers.close().then(() => process.exit(0), () => process.exit(1))
  })
  process.stdout.write(`ready ${process.pid}\n`)
}

main().catch((error: unknown) => {
  process.stderr.write(`worker-process: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  process.exit(1)
})
