// Turnaround report latency against history size.
//
//   node --import tsx bench/reports.ts [--small 10000] [--large 1000000] [--days 90]
//        [--runs 30] [--seed 1] [--concurrency 200] [--full]
//
// Starts its own redis-server (EmbeddedRedis in a temporary directory), seeds
// `--small` requests through the real commit path (src/services/seeder.ts: the
// service, the Lua commit scripts, the deadline worker's processor), measures the
// report over the seeded period (median of --runs runs after a warm-up) through
// app.inject with an EU-OVERSIGHT auditor's token and directly via ReportStore,
// then seeds on up to `--large` requests in total (the same period, the same
// seed) and measures again. Prints a table and merges the figures into
// bench/results.json under "reports".
//
// The bulk phase skips the facts that change no figure (reminders and plain
// disclosures) unless --full: they cost an audit commit each and the aggregates
// do not see them. Every request still goes through the same Lua commit scripts.
import Fastify from 'fastify'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import app, { serverOptions } from '../src/app.js'
import { mintDevToken } from '../src/auth/dev-token.js'
import { demoConfigPath, loadGatewayConfig } from '../src/config/gateway-config.js'
import { seedHistory, type SeedSummary } from '../src/services/seeder.js'
import { EmbeddedRedis } from '../src/store/embedded-redis.js'
import { createKeys } from '../src/store/keys.js'
import { PayloadCipher } from '../src/store/payload-cipher.js'
import { ReportStore } from '../src/store/report-store.js'
import { RequestStore } from '../src/store/request-store.js'

const { values } = parseArgs({
  options: {
    small: { type: 'string', default: '10000' },
    large: { type: 'string', default: '1000000' },
    days: { type: 'string', default: '90' },
    runs: { type: 'string', default: '30' },
    seed: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '200' },
    full: { type: 'boolean', default: false },
    out: { type: 'string' }
  }
})
const small = Number(values.small)
const large = Number(values.large)
const days = Number(values.days)
const runs = Number(values.runs)
const seed = Number(values.seed)
const concurrency = Number(values.concurrency)
if (![small, large, days, runs, seed, concurrency].every(Number.isInteger) || small < 1 || large < small || runs < 1) {
  process.stderr.write('usage: node --import tsx bench/reports.ts [--small N] [--large N ≥ small] [--days D] [--runs R] [--seed S] [--concurrency C] [--full]\n')
  process.exit(2)
}
const here = path.dirname(fileURLToPath(import.meta.url))
const resultsPath = values.out ?? path.join(here, 'results.json')

const log = (line: string): void => { process.stderr.write(`${line}\n`) }
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil(q * xs.length) - 1)]
const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits

async function timeIt (fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint()
  await fn()
  return Number(process.hrtime.bigint() - start) / 1e6
}

interface Measurement {
  requests: number
  auditEntries: number
  usedMemoryMb: number
  /** What a report over the period reads: per-day aggregate hashes and their fields. */
  aggregateHashes: number
  aggregateFields: number
  rows: number
  api: { medianMs: number, p90Ms: number, minMs: number }
  store: { medianMs: number, p90Ms: number, minMs: number }
}

async function main (): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rogatory-bench-'))
  const server = new EmbeddedRedis({ dataDir: dir, appendfsync: 'everysec', supervise: false, detached: false, exitSignal: 'SIGKILL', startTimeoutMs: 30_000 })
  const url = await server.start()
  const config = loadGatewayConfig(demoConfigPath())
  const payloadKey = randomBytes(32)
  const secret = randomBytes(24).toString('hex')
  const fastify = Fastify(serverOptions({ logLevel: 'silent', bodyLimitBytes: 1024 * 1024 }))
  await fastify.register(app, { gatewayConfig: config, redisUrl: url, payloadKey, authDevSecret: secret, idempotencyTtlSeconds: 86400 })
  await fastify.ready()
  const token = mintDevToken(secret, { authority: 'EU-OVERSIGHT', roles: ['auditor'], sub: 'bench@EU-OVERSIGHT' }, 24 * 3600)
  const seeding = new Redis(url, { enableAutoPipelining: true })
  const reading = new Redis(url)
  const keys = createKeys()
  const store = new RequestStore(seeding)
  const reports = new ReportStore(reading, keys)
  const cipher = new PayloadCipher(payloadKey)
  const now = Date.now()
  const seedings: Array<{ from: number, to: number, lean: boolean, seconds: number, rate: number, auditEntries: number }> = []

  const cleanup = async (): Promise<void> => {
    seeding.disconnect()
    reading.disconnect()
    await fastify.close().catch(() => {})
    await server.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
  process.once('SIGINT', () => { void cleanup().then(() => process.exit(130)) })

  let period = { from: '', to: '' }
  async function seedRange (startIndex: number, count: number, lean: boolean): Promise<SeedSummary> {
    log(`seeding requests ${startIndex}..${startIndex + count - 1} over ${days} days (${lean ? 'lean: no reminders or plain disclosures' : 'full history'}, ${concurrency} in flight)`)
    const before = await reading.xlen(keys.auditStream)
    const summary = await seedHistory({
      store, cipher, config, requests: count, days, seed, now, startIndex, concurrency, lean,
      progressEveryMs: 10_000,
      onProgress: ({ done, total, rate, elapsedMs }) => {
        const eta = rate > 0 ? (total - done) / rate : 0
        log(`  ${done}/${total} (${Math.round(100 * done / total)}%) ${Math.round(rate)} requests/s, ${Math.round(elapsedMs / 1000)} s elapsed, ~${Math.round(eta)} s to go`)
      }
    })
    const auditEntries = (await reading.xlen(keys.auditStream)) - before
    seedings.push({ from: startIndex, to: startIndex + count, lean, seconds: round(summary.elapsedMs / 1000, 1), rate: summary.ratePerSecond, auditEntries })
    log(`  done: ${summary.created} requests, ${auditEntries} audit entries in ${(summary.elapsedMs / 1000).toFixed(1)} s (${summary.ratePerSecond} requests/s, ${Math.round(auditEntries / (summary.elapsedMs / 1000))} audit entries/s)`)
    period = { from: summary.from, to: summary.to }
    return summary
  }

  async function measure (requests: number): Promise<Measurement> {
    const url = `/v1/reports/turnaround?from=${period.from}&to=${period.to}`
    const query = { fromDay: period.from, toDay: period.to, groupBy: 'type' as const }
    const check = await fastify.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })
    if (check.statusCode !== 200) throw new Error(`report answered ${check.statusCode}: ${check.body.slice(0, 300)}`)
    const rows = (check.json() as { rows: Array<{ submitted: number }> }).rows
    const submitted = rows.reduce((sum, row) => sum + row.submitted, 0)
    if (submitted !== requests) throw new Error(`the report counts ${submitted} submissions, ${requests} were seeded`)
    for (let i = 0; i < 5; i++) {
      await fastify.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })
      await reports.turnaround(query)
    }
    const api: number[] = []
    const direct: number[] = []
    for (let i = 0; i < runs; i++) {
      api.push(await timeIt(async () => {
        const res = await fastify.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })
        if (res.statusCode !== 200) throw new Error(`report answered ${res.statusCode}`)
      }))
      direct.push(await timeIt(() => reports.turnaround(query)))
    }
    // What the report reads.
    let aggregateHashes = 0
    let aggregateFields = 0
    const pipeline = reading.pipeline()
    const dayList: string[] = []
    for (let t = Date.parse(`${period.from}T00:00:00Z`); t <= Date.parse(`${period.to}T00:00:00Z`); t += 86_400_000) dayList.push(new Date(t).toISOString().slice(0, 10))
    for (const day of dayList) pipeline.smembers(`${keys.prefix}agg:days:${day}`)
    const sets = ((await pipeline.exec()) ?? []).map(([, members]) => members as string[])
    const lengths = reading.pipeline()
    dayList.forEach((day, i) => { for (const combo of sets[i]) { aggregateHashes++; lengths.hlen(`${keys.prefix}agg:${day}:${combo}`) } })
    for (const [, n] of (await lengths.exec()) ?? []) aggregateFields += n as number
    const memory = await reading.info('memory')
    const usedMemoryMb = Math.round(Number(/used_memory:(\d+)/.exec(memory)?.[1] ?? 0) / 1024 / 1024)
    const stats = (xs: number[]): Measurement['api'] => ({ medianMs: round(median(xs)), p90Ms: round(quantile(xs, 0.9)), minMs: round(Math.min(...xs)) })
    const measurement: Measurement = {
      requests,
      auditEntries: await reading.xlen(keys.auditStream),
      usedMemoryMb,
      aggregateHashes,
      aggregateFields,
      rows: rows.length,
      api: stats(api),
      store: stats(direct)
    }
    log(`  ${requests} requests: report via API median ${measurement.api.medianMs} ms (p90 ${measurement.api.p90Ms}), via ReportStore median ${measurement.store.medianMs} ms; ` +
      `${aggregateHashes} aggregate hashes, ${aggregateFields} fields; Redis ${usedMemoryMb} MB`)
    return measurement
  }

  try {
    log(`redis-server in ${dir}; ${os.cpus().length} CPUs, Node ${process.version}`)
    await seedRange(0, small, false)
    const smallResult = await measure(small)
    let largeResult = smallResult
    if (large > small) {
      await seedRange(small, large - small, !values.full)
      largeResult = await measure(large)
    }
    const ratio = { api: round(largeResult.api.medianMs / smallResult.api.medianMs), store: round(largeResult.store.medianMs / smallResult.store.medianMs) }
    const goals = { ratioAtMost: 2, largeBelowMs: 100 }
    const pass = ratio.api <= goals.ratioAtMost && largeResult.api.medianMs < goals.largeBelowMs

    const table = [
      ['', `${small.toLocaleString('en')} requests`, `${large.toLocaleString('en')} requests`, 'large / small'],
      ['report via API (median)', `${smallResult.api.medianMs} ms`, `${largeResult.api.medianMs} ms`, `${ratio.api}`],
      ['report via API (p90)', `${smallResult.api.p90Ms} ms`, `${largeResult.api.p90Ms} ms`, ''],
      ['ReportStore (median)', `${smallResult.store.medianMs} ms`, `${largeResult.store.medianMs} ms`, `${ratio.store}`],
      ['aggregate hashes read', `${smallResult.aggregateHashes}`, `${largeResult.aggregateHashes}`, ''],
      ['aggregate fields read', `${smallResult.aggregateFields}`, `${largeResult.aggregateFields}`, `${round(largeResult.aggregateFields / smallResult.aggregateFields)}`],
      ['audit entries', `${smallResult.auditEntries}`, `${largeResult.auditEntries}`, ''],
      ['Redis memory', `${smallResult.usedMemoryMb} MB`, `${largeResult.usedMemoryMb} MB`, '']
    ]
    const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)))
    const lines = table.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '))
    process.stdout.write(`\nturnaround report over ${period.from} .. ${period.to} (${days} days), median of ${runs} runs\n${lines.join('\n')}\n`)
    process.stdout.write(`goal: large/small ≤ ${goals.ratioAtMost} and large < ${goals.largeBelowMs} ms: ${pass ? 'met' : 'NOT met'}\n`)
    for (const s of seedings) process.stdout.write(`seeding ${s.from}..${s.to}${s.lean ? ' (lean)' : ''}: ${s.seconds} s, ${s.rate} requests/s, ${s.auditEntries} audit entries\n`)

    const existing = existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')) as Record<string, any> : {}
    // The latest run at the top level; every run kept under bySize, keyed by its sizes.
    const bySize = (existing.reports?.bySize ?? {}) as Record<string, unknown>
    const run = {
      measuredAt: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, redis: server.version, load: os.loadavg().map((x) => round(x)) },
      period: { ...period, days },
      runs,
      small: smallResult,
      large: largeResult,
      ratio,
      goals,
      met: pass,
      seeding: seedings
    }
    bySize[`${small}->${large}`] = run
    existing.reports = { ...run, bySize }
    writeFileSync(resultsPath, JSON.stringify(existing, null, 2) + '\n')
    log(`figures written to ${resultsPath} (key "reports")`)
  } finally {
    await cleanup()
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/reports: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  process.exit(1)
})
