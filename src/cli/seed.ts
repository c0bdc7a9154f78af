import { parseArgs } from 'node:util'
import { loadEnv } from '../config/env.js'
import { loadGatewayConfig } from '../config/gateway-config.js'
import { seedHistory } from '../services/seeder.js'
import { PayloadCipher, loadPayloadKey } from '../store/payload-cipher.js'
import { RequestStore } from '../store/request-store.js'
import { connectForCli } from './store-connection.js'

const usage = `usage: rogatory seed --requests N [--days D] [--seed S] [--concurrency C] [--start I]

Generates a realistic history of N requests submitted over the last D days
(default 90) between the pairs of the gateway config, through the same commits
as the API and the workers: deliveries, acknowledgements (some late), answers,
refusals with grounds, withdrawals, extensions, clarifications, reminders and
overdue flags, up to now. Deterministic given --seed (default 1); references
are SEED<seed>-<index>, so a repeated run adds nothing and --start I seeds more
of the same history from index I. Progress goes to stderr, a JSON summary to stdout.
`

function positiveInteger (name: string, raw: string | undefined, fallback: number | undefined, min = 1): number | undefined {
  if (raw === undefined) return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) throw new UsageError(`--${name} must be an integer ≥ ${min}`)
  return value
}

class UsageError extends Error {}

/** `rogatory seed --requests N [--days D] [--seed S]` */
export async function runSeed (argv: string[]): Promise<number> {
  let options: { requests: number, days: number, seed: number, concurrency: number, startIndex: number }
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        requests: { type: 'string', short: 'n' },
        days: { type: 'string' },
        seed: { type: 'string' },
        concurrency: { type: 'string' },
        start: { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    })
    if (values.help === true) {
      process.stdout.write(usage)
      return 0
    }
    const requests = positiveInteger('requests', values.requests, undefined)
    if (requests === undefined) throw new UsageError('--requests is required')
    options = {
      requests,
      days: positiveInteger('days', values.days, 90) as number,
      seed: positiveInteger('seed', values.seed, 1, 0) as number,
      concurrency: positiveInteger('concurrency', values.concurrency, 200) as number,
      startIndex: positiveInteger('start', values.start, 0, 0) as number
    }
  } catch (error) {
    process.stderr.write(`rogatory seed: ${(error as Error).message}\n${usage}`)
    return 2
  }

  const env = loadEnv()
  const config = loadGatewayConfig(env.gatewayConfigPath)
  const cipher = new PayloadCipher(loadPayloadKey(env.dataDir, env.payloadKeyBase64))
  const { redis, close } = await connectForCli(env)
  // Many requests in flight: let ioredis send each tick's commands in one write.
  const seeding = redis.duplicate({ enableAutoPipelining: true })
  try {
    const store = new RequestStore(seeding)
    const entriesBefore = await seeding.xlen(store.keys.auditStream)
    process.stderr.write(`seeding ${options.requests} requests over the last ${options.days} days (seed ${options.seed}, ${options.concurrency} in flight)\n`)
    const summary = await seedHistory({
      store,
      cipher,
      config,
      ...options,
      idempotencyTtlSeconds: env.idempotencyTtlSeconds,
      onProgress: ({ done, total, rate }) => {
        process.stderr.write(`  ${done}/${total} requests (${Math.round(100 * done / total)}%), ${Math.round(rate)} requests/s\n`)
      }
    })
    const auditEntries = (await seeding.xlen(store.keys.auditStream)) - entriesBefore
    process.stderr.write(`seeded ${summary.created} requests (${summary.skipped} already there) and ${auditEntries} audit entries in ${(summary.elapsedMs / 1000).toFixed(1)} s: ${summary.ratePerSecond} requests/s\n`)
    process.stdout.write(JSON.stringify({ ...summary, auditEntries }, null, 2) + '\n')
    return 0
  } finally {
    seeding.disconnect()
    await close()
  }
}
