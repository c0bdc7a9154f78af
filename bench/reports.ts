// Turnaround report latency against history size.
//
//   node --import tsx bench/reports.ts [--small 10000] [--large 1000000] [--days 90]
//        [--runs 30] [--seed 1] [--concurrency 200] [--bulk aggregates|store] [--full]
//
// Starts its own redis-server (EmbeddedRedis in a temporary directory) with
// persistence off (appendonly no, no RDB snapshots): this is a bench of the read
// path, and the seeding only has to put the aggregates in place.
//
// 1. Seeds `--small` requests through the real commit path (src/services/seeder.ts:
//    the service, the Lua commit scripts, the deadline worker's processor), with
//    their full history, and measures the report over the seeded period (median
//    of --runs runs after a warm-up) through app.inject with an EU-OVERSIGHT
//    auditor's token and directly via ReportStore. These figures are written to
//    bench/results.json at once, so that a run killed during the bulk phase still
//    leaves them.
// 2. Seeds on up to `--large` requests in total (the same period, the same seed,
//    the following indexes) and measures again.
//
// The bulk phase skips the facts that change no figure (reminders and plain
// disclosures) unless --full. With --bulk store, every request still goes
// through the same Lua commit scripts (records, indexes, audit chain and
// aggregates; ~300–500 requests/s here, hours for 1,000,000). With --bulk
// aggregates (the default), the same seeder drives the same RequestService and
// deadline processor, so every aggregate delta is the one production computes
// (domain/turnaround.ts), and each is applied by the production Lua
// (applyAggregatesLua from src/store/scripts.ts, the function the commit scripts
// call); but the store under the service keeps the records in memory and writes
// nothing else: no request hashes, boxes or audit entries. What the report reads
// (block combo sets, counters, histograms, live gauges) is written exactly as in
// production; what it does not read is left out. A commit whose Lua fails is
// counted (failedCommits) and the run carries on; the report must still count
// every request.
import Fastify from 'fastify'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { Redis, type Result } from 'ioredis'
import app, { serverOptions } from '../src/app.js'
import { mintDevToken } from '../src/auth/dev-token.js'
import { demoConfigPath, loadGatewayConfig } from '../src/config/gateway-config.js'
import type { AggregateDelta } from '../src/domain/turnaround.js'
import { seedHistory, type SeedSummary } from '../src/services/seeder.js'
import { EmbeddedRedis } from '../src/store/embedded-redis.js'
import { createKeys } from '../src/store/keys.js'
import { PayloadCipher } from '../src/store/payload-cipher.js'
import { ReportStore, type ReadCost } from '../src/store/report-store.js'
import { RequestStore, type Change, type CommitOutcome, type NewRequest, type StoredRequest, type SubmitOutcome } from '../src/store/request-store.js'
import { applyAggregatesLua } from '../src/store/scripts.js'

const { values } = parseArgs({
  options: {
    small: { type: 'string', default: '10000' },
    large: { type: 'string', default: '1000000' },
    days: { type: 'string', default: '90' },
    runs: { type: 'string', default: '30' },
    seed: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '200' },
    full: { type: 'boolean', default: false },
    bulk: { type: 'string', default: 'aggregates' },
    out: { type: 'string' }
  }
})
const small = Number(values.small)
const large = Number(values.large)
const days = Number(values.days)
const runs = Number(values.runs)
const seed = Number(values.seed)
const concurrency = Number(values.concurrency)
const bulkPath = values.bulk as 'aggregates' | 'store'
if (![small, large, days, runs, seed, concurrency].every(Number.isInteger) || small < 1 || large < small || runs < 1 || (bulkPath !== 'aggregates' && bulkPath !== 'store')) {
  process.stderr.write('usage: node --import tsx bench/reports.ts [--small N] [--large N ≥ small] [--days D] [--runs R] [--seed S] [--concurrency C] [--bulk aggregates|store] [--full]\n')
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

/** Commits that did not go through: outcomes other than created/ok (the service retries stale ones) and errors. */
interface CommitCounts { commits: number, notApplied: number, errors: number }

/** The real store, counting its commits. */
class CountingStore extends RequestStore {
  readonly counts: CommitCounts = { commits: 0, notApplied: 0, errors: 0 }

  override async submit (...args: Parameters<RequestStore['submit']>): Promise<SubmitOutcome> {
    return await this.#counted(super.submit(...args), (outcome) => outcome.outcome === 'created')
  }

  override async commit (...args: Parameters<RequestStore['commit']>): Promise<CommitOutcome> {
    return await this.#counted(super.commit(...args), (outcome) => outcome.outcome === 'ok')
  }

  async #counted<T> (pending: Promise<T>, applied: (outcome: T) => boolean): Promise<T> {
    this.counts.commits++
    try {
      const outcome = await pending
      if (!applied(outcome)) this.counts.notApplied++
      return outcome
    } catch (error) {
      this.counts.errors++
      throw error
    }
  }
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rogApplyAggregates(prefix: string, json: string): Result<number, Context>
  }
}

const numericFields = new Set(['submittedAt', 'deliveredAt', 'acknowledgedAt', 'respondedAt', 'closedAt', 'ackDue', 'respDue', 'respDueOriginal', 'ackRemindedFor', 'respRemindedFor'])

/**
 * The bulk phase's store (--bulk aggregates): what RequestStore.get would read
 * back, kept in memory for the requests in flight, and the aggregate delta of
 * each submit and commit applied by the production Lua (applyAggregatesLua).
 * Nothing else is written. Versions are checked and bumped as the commit script
 * does, so the service's compare-and-set loop behaves as it does on Redis.
 */
class AggregateOnlyStore {
  readonly keys = createKeys()
  readonly counts: CommitCounts = { commits: 0, notApplied: 0, errors: 0 }
  readonly #records = new Map<string, StoredRequest>()

  /** `keep`: records kept for requests in flight; the oldest go first (a lane finishes a request before it starts the next). */
  constructor (private readonly redis: Redis, private readonly keep: number) {
    redis.defineCommand('rogApplyAggregates', { numberOfKeys: 0, lua: `${applyAggregatesLua}\napplyAggregates(ARGV[1], ARGV[2])\nreturn 1\n` })
  }

  async #apply (aggregates: AggregateDelta | undefined): Promise<void> {
    this.counts.commits++
    if (aggregates === undefined) return
    try {
      await this.redis.rogApplyAggregates(this.keys.prefix, JSON.stringify(aggregates))
    } catch (error) {
      this.counts.errors++
      if (this.counts.errors <= 3) log(`  aggregate commit failed: ${error instanceof Error ? error.message : String(error)}`)
    }
  }

  #remember (record: StoredRequest): void {
    this.#records.delete(record.id)
    this.#records.set(record.id, record)
    if (this.#records.size > this.keep) this.#records.delete(this.#records.keys().next().value as string)
  }

  async submit (request: NewRequest, _boxScore: number, _event: unknown, _idempotency: unknown, aggregates?: AggregateDelta): Promise<SubmitOutcome> {
    const { bodyHash: _bodyHash, ...stored } = request as NewRequest & StoredRequest
    this.#remember({ ...stored, status: 'submitted', version: 1, respDueOriginal: request.respDue, ackOverdue: false, respOverdue: false, eventIds: [`bulk-${request.id}`], deliveryFailures: [] })
    await this.#apply(aggregates)
    return { outcome: 'created', id: request.id }
  }

  async get (id: string): Promise<StoredRequest | undefined> {
    return this.#records.get(id)
  }

  async commit (request: Pick<StoredRequest, 'id'>, change: Change): Promise<CommitOutcome> {
    const current = this.#records.get(request.id)
    if (current === undefined) {
      this.counts.notApplied++
      return { outcome: 'missing' }
    }
    if (change.expectedVersion !== undefined && change.expectedVersion !== current.version) {
      this.counts.notApplied++
      return { outcome: 'stale', version: current.version, status: current.status }
    }
    const fields = Object.entries(change.fields ?? {})
    const listed = change.events.filter((e) => e.listed).length
    const streamIds = change.events.map((_, i) => `bulk-${current.version}-${i}`)
    if (fields.length > 0 || listed > 0) {
      // As parseStored reads back what the commit script wrote.
      const next: StoredRequest = { ...current, version: current.version + 1, deliveryFailures: [...current.deliveryFailures], eventIds: [...current.eventIds, ...streamIds.slice(0, listed)] }
      const record = next as unknown as Record<string, unknown>
      for (const [field, value] of fields) {
        if (field.startsWith('deliveryFailed_')) next.deliveryFailures.push(field)
        else if (field === 'ackOverdue' || field === 'respOverdue') next[field] = value === 1 || value === '1'
        else if (field === 'messages') next.sealedMessages = String(value)
        else if (field === 'content') next.sealedContent = String(value)
        else if (numericFields.has(field)) record[field] = value === '' ? undefined : Number(value)
        else record[field] = value === '' ? undefined : value
      }
      this.#remember(next)
    }
    await this.#apply(change.aggregates)
    return { outcome: 'ok', version: (this.#records.get(request.id) ?? current).version, streamIds }
  }
}

interface Measurement {
  requests: number
  /** Audit entries in Redis (the bulk phase with --bulk aggregates writes none). */
  auditEntries: number
  usedMemoryMb: number
  /** The aggregates' keys and their memory (MEMORY USAGE summed over agg:*). */
  aggregateKeys: number
  aggregateMemoryMb: number
  /** What one report over the period reads. */
  read: ReadCost
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
  const seeding = new Redis(url, { enableAutoPipelining: true })
  const reading = new Redis(url)
  // A bench of the read path: no persistence while seeding and reading.
  await reading.config('SET', 'appendonly', 'no')
  await reading.config('SET', 'save', '')
  const fastify = Fastify(serverOptions({ logLevel: 'silent', bodyLimitBytes: 1024 * 1024 }))
  await fastify.register(app, { gatewayConfig: config, redisUrl: url, payloadKey, authDevSecret: secret, idempotencyTtlSeconds: 86400 })
  await fastify.ready()
  const token = mintDevToken(secret, { authority: 'EU-OVERSIGHT', roles: ['auditor'], sub: 'bench@EU-OVERSIGHT' }, 24 * 3600)
  const keys = createKeys()
  const store = new CountingStore(seeding)
  const reports = new ReportStore(reading, keys)
  const cipher = new PayloadCipher(payloadKey)
  const now = Date.now()
  const seedings: Array<{ from: number, to: number, path: string, lean: boolean, seconds: number, rate: number, auditEntries: number, commits: number, failedCommits: number }> = []

  const cleanup = async (): Promise<void> => {
    seeding.disconnect()
    reading.disconnect()
    await fastify.close().catch(() => {})
    await server.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
  process.once('SIGINT', () => { void cleanup().then(() => process.exit(130)) })

  let period = { from: '', to: '' }
  async function seedRange (startIndex: number, count: number, lean: boolean, via: 'store' | 'aggregates'): Promise<SeedSummary> {
    log(`seeding requests ${startIndex}..${startIndex + count - 1} over ${days} days (${lean ? 'lean: no reminders or plain disclosures' : 'full history'}, ` +
      `${via === 'store' ? 'through the commit scripts' : 'aggregates only, through their Lua'}, ${concurrency} in flight)`)
    const before = await reading.xlen(keys.auditStream)
    const target = via === 'store' ? store : new AggregateOnlyStore(seeding, Math.max(20_000, concurrency * 50))
    const counted = { ...target.counts }
    const summary = await seedHistory({
      store: target as unknown as RequestStore, cipher, config, requests: count, days, seed, now, startIndex, concurrency, lean,
      progressEveryMs: 30_000,
      onProgress: ({ done, total, rate, elapsedMs }) => {
        const eta = rate > 0 ? (total - done) / rate : 0
        log(`  ${new Date().toISOString().slice(11, 19)} ${done}/${total} (${Math.round(100 * done / total)}%) ${Math.round(rate)} requests/s, ${Math.round(elapsedMs / 1000)} s elapsed, ~${Math.round(eta)} s to go; ` +
          `failed commits ${target.counts.errors - counted.errors}`)
      }
    })
    const auditEntries = (await reading.xlen(keys.auditStream)) - before
    const commits = target.counts.commits - counted.commits
    const failedCommits = target.counts.errors - counted.errors
    seedings.push({ from: startIndex, to: startIndex + count, path: via, lean, seconds: round(summary.elapsedMs / 1000, 1), rate: summary.ratePerSecond, auditEntries, commits, failedCommits })
    log(`  done: ${summary.created} requests, ${commits} commits (${failedCommits} failed, ${target.counts.notApplied - counted.notApplied} stale or refused and retried or skipped by the service), ` +
      `${auditEntries} audit entries in ${(summary.elapsedMs / 1000).toFixed(1)} s (${summary.ratePerSecond} requests/s)`)
    period = { from: summary.from, to: summary.to }
    return summary
  }

  async function aggregateMemory (): Promise<{ keys: number, bytes: number }> {
    let cursor = '0'
    let count = 0
    let bytes = 0
    do {
      const [next, found] = await reading.scan(cursor, 'MATCH', `${keys.prefix}agg:*`, 'COUNT', 1000)
      cursor = next
      if (found.length === 0) continue
      const pipeline = reading.pipeline()
      for (const key of found) pipeline.memory('USAGE', key)
      for (const [, size] of (await pipeline.exec()) ?? []) bytes += Number(size ?? 0)
      count += found.length
    } while (cursor !== '0')
    return { keys: count, bytes }
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
    const { cost } = await reports.turnaroundWithCost(query)
    const aggregates = await aggregateMemory()
    const memory = await reading.info('memory')
    const usedMemoryMb = Math.round(Number(/used_memory:(\d+)/.exec(memory)?.[1] ?? 0) / 1024 / 1024)
    const stats = (xs: number[]): Measurement['api'] => ({ medianMs: round(median(xs)), p90Ms: round(quantile(xs, 0.9)), minMs: round(Math.min(...xs)) })
    const measurement: Measurement = {
      requests,
      auditEntries: await reading.xlen(keys.auditStream),
      usedMemoryMb,
      aggregateKeys: aggregates.keys,
      aggregateMemoryMb: round(aggregates.bytes / 1024 / 1024, 1),
      read: cost,
      rows: rows.length,
      api: stats(api),
      store: stats(direct)
    }
    log(`  ${requests} requests: report via API median ${measurement.api.medianMs} ms (p90 ${measurement.api.p90Ms}), via ReportStore median ${measurement.store.medianMs} ms; ` +
      `read ${cost.blocks} blocks, ${cost.counterHashes} counter hashes, ${cost.hashFields} hash fields, ${cost.denseHistograms} dense histograms (${cost.denseBytes} bytes); ` +
      `aggregates ${aggregates.keys} keys, ${measurement.aggregateMemoryMb} MB; Redis ${usedMemoryMb} MB`)
    return measurement
  }

  const goals = { ratioAtMost: 2, largeBelowMs: 100 }
  function record (smallResult: Measurement, largeResult: Measurement | null): void {
    const existing = existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')) as Record<string, any> : {}
    // The latest run at the top level; every run kept under bySize, keyed by its sizes.
    const bySize = (existing.reports?.bySize ?? {}) as Record<string, unknown>
    const ratio = largeResult === null ? null : { api: round(largeResult.api.medianMs / smallResult.api.medianMs), store: round(largeResult.store.medianMs / smallResult.store.medianMs) }
    const run = {
      measuredAt: new Date().toISOString(),
      command: `node --import tsx bench/reports.ts ${process.argv.slice(2).join(' ')}`.trim(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, node: process.version, redis: server.version, load: os.loadavg().map((x) => round(x)) },
      redis: 'appendonly no, save "" (a bench of the read path)',
      bulkPath,
      period: { ...period, days },
      runs,
      small: smallResult,
      ...(largeResult === null ? { complete: false, note: `the ${large}-request phase had not finished` } : { large: largeResult, ratio, complete: true }),
      goals,
      ...(largeResult === null || ratio === null ? {} : { met: ratio.api <= goals.ratioAtMost && largeResult.api.medianMs < goals.largeBelowMs }),
      seeding: seedings
    }
    bySize[`${small}->${large}`] = run
    existing.reports = { ...run, bySize }
    writeFileSync(resultsPath, JSON.stringify(existing, null, 2) + '\n')
    log(`figures written to ${resultsPath} (key "reports"${largeResult === null ? ', small size only so far' : ''})`)
  }

  try {
    log(`redis-server in ${dir}; ${os.cpus().length} CPUs, Node ${process.version}; persistence off (a bench of the read path)`)
    await seedRange(0, small, false, 'store')
    const smallResult = await measure(small)
    let largeResult = smallResult
    if (large > small) {
      record(smallResult, null)
      await seedRange(small, large - small, !values.full, bulkPath)
      largeResult = await measure(large)
    }
    record(smallResult, largeResult)
    const ratio = { api: round(largeResult.api.medianMs / smallResult.api.medianMs), store: round(largeResult.store.medianMs / smallResult.store.medianMs) }
    const pass = ratio.api <= goals.ratioAtMost && largeResult.api.medianMs < goals.largeBelowMs

    const table = [
      ['', `${small.toLocaleString('en')} requests`, `${large.toLocaleString('en')} requests`, 'large / small'],
      ['report via API (median)', `${smallResult.api.medianMs} ms`, `${largeResult.api.medianMs} ms`, `${ratio.api}`],
      ['report via API (p90)', `${smallResult.api.p90Ms} ms`, `${largeResult.api.p90Ms} ms`, ''],
      ['ReportStore (median)', `${smallResult.store.medianMs} ms`, `${largeResult.store.medianMs} ms`, `${ratio.store}`],
      ['time blocks read', `${smallResult.read.blocks}`, `${largeResult.read.blocks}`, ''],
      ['counter hashes read', `${smallResult.read.counterHashes}`, `${largeResult.read.counterHashes}`, ''],
      ['hash fields read', `${smallResult.read.hashFields}`, `${largeResult.read.hashFields}`, `${round(largeResult.read.hashFields / smallResult.read.hashFields)}`],
      ['sparse histograms read', `${smallResult.read.sparseHistograms}`, `${largeResult.read.sparseHistograms}`, ''],
      ['dense histograms read', `${smallResult.read.denseHistograms}`, `${largeResult.read.denseHistograms}`, ''],
      ['dense bytes read', `${smallResult.read.denseBytes}`, `${largeResult.read.denseBytes}`, ''],
      ['aggregate keys', `${smallResult.aggregateKeys}`, `${largeResult.aggregateKeys}`, ''],
      ['aggregate memory', `${smallResult.aggregateMemoryMb} MB`, `${largeResult.aggregateMemoryMb} MB`, ''],
      ['audit entries', `${smallResult.auditEntries}`, `${largeResult.auditEntries}`, ''],
      ['Redis memory', `${smallResult.usedMemoryMb} MB`, `${largeResult.usedMemoryMb} MB`, '']
    ]
    const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)))
    const lines = table.map((row) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '))
    process.stdout.write(`\nturnaround report over ${period.from} .. ${period.to} (${days} days), median of ${runs} runs; Redis without persistence (a bench of the read path)\n${lines.join('\n')}\n`)
    process.stdout.write(`goal: large/small ≤ ${goals.ratioAtMost} and large < ${goals.largeBelowMs} ms: ${pass ? 'met' : 'NOT met'}\n`)
    for (const s of seedings) {
      process.stdout.write(`seeding ${s.from}..${s.to} (${s.path === 'store' ? 'commit scripts' : 'aggregates only'}${s.lean ? ', lean' : ''}): ${s.seconds} s, ${s.rate} requests/s, ${s.commits} commits, ${s.failedCommits} failed, ${s.auditEntries} audit entries\n`)
    }
  } finally {
    await cleanup()
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench/reports: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  process.exit(1)
})
