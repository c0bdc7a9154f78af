// Benchmark 5 — deadlines: N acknowledgement deadlines (default 10,000) falling
// due within the same few seconds (default 2 s); lateness = the overdue event's
// `at` − its `data.dueAt` (request.acknowledgement_overdue), p50 and p99.
//
// Each round submits N requests (TR-MOJ → DE-BFJ, the 1959 Convention
// agreement with a short acknowledgement clock) through RequestService.submit,
// the API's own code below HTTP, into a redis-server configured as in
// production (appendfsync always), while the workers of workers/runtime.ts run
// in this process (dispatcher, delivery worker and deadline clock, default
// concurrency). Each submission's own commit puts the request in the deadline
// set, as in production.
//
// A burst: the fill cannot submit 10,000 requests within 2 s on a small
// machine, so the service's clock is made to say it did: request k of the
// round is recorded as submitted at start + spread × k/N, and its deadline is
// that + the acknowledgement clock. The clock is chosen long enough
// (--ack-within, raised from the fill rate seen so far) that every request is
// stored before the first deadline; the figure "scheduled ahead" shows it was.
// What is measured — the deadline clock firing and recording the overdue events
// — is then exactly what N requests submitted within `spread` seconds produce.
//
// Baseline, same run, same Redis, worker concurrency 50: N plain BullMQ
// delayed jobs doing nothing, due on the same schedule (shifted to start
// --baseline-lead s after they are enqueued); lateness = processing start − due.
//
// Before the measured rounds, one unmeasured round of each with --warmup
// deadlines (default 2,000) warms the firing path up, as in a worker that has
// been running: otherwise the first round measures the JIT compiling it.
//
//   node --import tsx bench/deadlines.ts [--count 10000] [--spread 2] [--rounds 3] [--warmup 2000]
import { Queue, Worker, type Job } from 'bullmq'
import { Redis } from 'ioredis'
import pino from 'pino'
import { parseFlags } from './lib/args.js'
import { agreementOf, benchConfig, fill, fillService, log, mlaBody, payloadKey } from './lib/gateway.js'
import { machineInfo } from './lib/machine.js'
import { startBenchRedis, type BenchRedis } from './lib/redis.js'
import { atMost, figure, isMain, runAsScript, type BenchResult } from './lib/results.js'
import { cpuSeconds } from './lib/proc.js'
import { median, round, sleep, summarize, type Summary } from './lib/stats.js'
import { decodeStreamEntry } from '../src/store/request-store.js'
import { startWorkers } from '../workers/runtime.js'
import { dispatchGroup } from '../workers/dispatcher.js'

const flagSpec = {
  count: { type: 'number', default: 10_000, help: 'deadlines per round' },
  spread: { type: 'number', default: 2, help: 'seconds within which the N deadlines fall due' },
  rounds: { type: 'number', default: 3, help: 'rounds (each: the gateway, then the baseline)' },
  warmup: { type: 'number', default: 2000, help: 'deadlines of the unmeasured warm-up round of each (0: none)' },
  'ack-within': { type: 'number', default: 20, help: 'shortest acknowledgement clock, seconds (raised when the fill would not finish in time)' },
  concurrency: { type: 'number', default: 128, help: 'submissions in flight during the fill' },
  'baseline-lead': { type: 'number', default: 5, help: 'seconds between enqueuing the baseline jobs and the first one falling due' },
  timeout: { type: 'number', default: 120, help: 'seconds to wait, past the last deadline, for the overdue events' },
  quick: { type: 'boolean', default: false, help: 'short run: --count 2000 --rounds 1' }
} as const

interface Lateness {
  summary: Summary
  missing: number
  spreadSeconds: number
  scheduledAheadSeconds: number
  fillRate: number
  /** CPU per deadline while they fire (from 1 s before the first to the last): this process (workers) and redis-server, ms. */
  cpuMs: number
  redisCpuMs: number
}

function cpuWindow (redisPid: number): () => { cpuMs: number, redisCpuMs: number } {
  const cpu0 = process.cpuUsage()
  const redis0 = cpuSeconds(redisPid)
  return () => {
    const cpu = process.cpuUsage(cpu0)
    return { cpuMs: (cpu.user + cpu.system) / 1000, redisCpuMs: (cpuSeconds(redisPid) - redis0) * 1000 }
  }
}

/** Entries of the audit stream after `from` (exclusive), decoded. */
async function* auditEvents (redis: Redis, key: string, from: string): AsyncGenerator<{ id: string, event: { type: string, at: string, requestId: string, data: { dueAt?: string } } }> {
  let start = `(${from}`
  for (;;) {
    const entries = await redis.xrange(key, start, '+', 'COUNT', 2000) as Array<[string, string[]]>
    if (entries.length === 0) return
    for (const [id, fields] of entries) {
      yield { id, event: decodeStreamEntry(id, fields) as { type: string, at: string, requestId: string, data: { dueAt?: string } } }
    }
    start = `(${entries[entries.length - 1][0]}`
  }
}

/** Waits until the dispatcher has read and acknowledged every audit entry (so that it is idle while the deadlines fire). */
async function dispatched (redis: Redis, key: string, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    const groups = await redis.xinfo('GROUPS', key) as unknown[][]
    const group = groups.map((g) => Object.fromEntries(Array.from({ length: g.length / 2 }, (_, i) => [g[2 * i], g[2 * i + 1]]))).find((g) => g.name === dispatchGroup)
    if (group !== undefined && Number(group.pending) === 0 && Number(group.lag) === 0) return true
    await sleep(50)
  }
  return false
}

export async function run (options: { quick?: boolean, argv?: string[] } = {}): Promise<BenchResult> {
  const flags = parseFlags(options.argv ?? [], flagSpec, 'usage: node --import tsx bench/deadlines.ts [flags]')
  if (options.quick === true || flags.quick) Object.assign(flags, { count: Math.min(flags.count, 2000), rounds: 1, warmup: Math.min(flags.warmup, 500), quick: true })
  const started = performance.now()
  const runId = Date.now().toString(36)
  const pair = 'coe1959-tr-moj-de-bfj'
  // Reminders at 10% of the clock: they fire during the fill, well before the deadlines, not among them.
  const configWith = (ackSeconds: number): ReturnType<typeof benchConfig> => benchConfig((c) => {
    Object.assign(agreementOf(c, pair), { acknowledgeWithin: `PT${ackSeconds}S`, respondWithin: 'P1D', reminderAtFraction: 0.1 })
  })
  const config = configWith(flags['ack-within'])
  const redis: BenchRedis = await startBenchRedis({ label: 'deadlines' })
  const db = redis.client()
  const workers = await startWorkers({ redisUrl: redis.url, gatewayConfig: config, payloadKey, logger: pino({ level: 'warn' }), closeTimeoutMs: 5000 })
  // A pilot (to FR-BEPI, demo clocks of days: nothing of it falls due) warms up and tells the fill rate.
  const pilotService = fillService(redis.url, config)
  const auditKey = pilotService.service.store.keys.auditStream
  const pilotCount = Math.min(500, Math.max(100, Math.round(flags.count / 10)))
  const pilot = await fill({ service: pilotService.service, count: pilotCount, concurrency: flags.concurrency, sender: 'TR-MOJ', body: (i) => mlaBody(`DP-${runId}-${i}`, 'FR-BEPI') })
  pilotService.close()
  let fillRate = pilot.rate
  log(`deadlines: pilot of ${pilotCount} submissions at ${Math.round(pilot.rate)}/s`)

  // The baseline's queue and worker: same Redis, concurrency 50, jobs that do nothing.
  const baseQueueConnection = redis.client()
  const baseQueue = new Queue('bench-baseline', { connection: baseQueueConnection, prefix: 'rogq' })
  let baseLate: number[] = []
  const baseWorker = new Worker('bench-baseline', async (job: Job<{ dueAt: number }>) => { baseLate.push(Date.now() - job.data.dueAt) }, { connection: redis.client(), prefix: 'rogq', concurrency: 50 })

  const gatewayRound = async (r: number | 'warm-up', count = flags.count): Promise<Lateness & { offsets: number[], ackSeconds: number }> => {
    const due = new Map<string, number>()
    const lastId = (await db.xrevrange(auditKey, '+', '-', 'COUNT', 1) as Array<[string, string[]]>)[0]?.[0] ?? '0-0'
    // Long enough for the fill (at the rate seen so far, with a margin) and the dispatch to finish first.
    const ackSeconds = Math.max(flags['ack-within'], Math.ceil((count / fillRate) * 2 + 15))
    const start = Date.now()
    let k = 0
    const clock = (): number => start + Math.floor((flags.spread * 1000 * Math.min(k++, count - 1)) / count)
    const filler = fillService(redis.url, configWith(ackSeconds), clock)
    log(`deadlines: round ${r}: submitting ${count} requests recorded within ${flags.spread} s, acknowledgement due ${ackSeconds} s later`)
    const filled = await fill({
      service: filler.service,
      count,
      concurrency: flags.concurrency,
      sender: 'TR-MOJ',
      body: (i) => mlaBody(`D-${runId}-${r}-${i}`, 'DE-BFJ'),
      onCreated: (_i, request) => { if (request.ackDue !== undefined) due.set(request.id, request.ackDue) }
    })
    filler.close()
    fillRate = filled.rate
    const dues = [...due.values()].sort((a, b) => a - b)
    const first = dues[0]
    const last = dues[dues.length - 1]
    const ok = await dispatched(db, auditKey, Math.max(1000, first - Date.now()))
    const scheduledAhead = (first - Date.now()) / 1000
    log(`deadlines: round ${r}: filled in ${round(filled.seconds)} s (${Math.round(filled.rate)}/s); deadlines span ${round((last - first) / 1000)} s; all stored and dispatched ${ok ? `${round(scheduledAhead)} s before the first deadline` : 'NOT before the first deadline'}`)
    // Wait for the overdue events, measuring the CPU they cost from 1 s before the first.
    await sleep(Math.max(0, first - 1000 - Date.now()))
    const window = cpuWindow(redis.server.pid ?? -1)
    // Only the stream's length is watched while the deadlines fire (decoding the events here
    // would load the process the workers run in); they are read once it is all over.
    const late = new Map<string, number>()
    const until = last + flags.timeout * 1000
    // A second before the first deadline, nothing of them is recorded yet: each adds one entry.
    const expectedLength = await db.xlen(auditKey) + due.size
    while (Date.now() < until && await db.xlen(auditKey) < expectedLength) await sleep(200)
    for await (const { event } of auditEvents(db, auditKey, lastId)) {
      if (event.type === 'request.acknowledgement_overdue' && due.has(event.requestId) && event.data.dueAt !== undefined) {
        late.set(event.requestId, Date.parse(event.at) - Date.parse(event.data.dueAt))
      }
    }
    const cpu = window()
    const summary = summarize([...late.values()])
    const per = { cpuMs: cpu.cpuMs / Math.max(1, late.size), redisCpuMs: cpu.redisCpuMs / Math.max(1, late.size) }
    log(`deadlines: round ${r}: gateway lateness p50 ${round(summary.p50)} ms, p99 ${round(summary.p99)} ms, max ${round(summary.max)} ms; missing ${due.size - late.size}; CPU per deadline: workers ${round(per.cpuMs)} ms, Redis ${round(per.redisCpuMs)} ms`)
    return { summary, missing: due.size - late.size, spreadSeconds: (last - first) / 1000, scheduledAheadSeconds: ok ? scheduledAhead : Number.NaN, fillRate: filled.rate, offsets: dues.map((d) => d - first), ackSeconds, ...per }
  }

  const baselineRound = async (r: number | 'warm-up', offsets: number[]): Promise<Lateness> => {
    baseLate = []
    const first = Date.now() + flags['baseline-lead'] * 1000
    const jobs = offsets.map((offset, i) => ({ name: 'noop', data: { dueAt: first + offset }, opts: { jobId: `base_${runId}_${r}_${i}`, delay: first + offset - Date.now(), removeOnComplete: true } }))
    for (let i = 0; i < jobs.length; i += 1000) {
      const now = Date.now()
      await baseQueue.addBulk(jobs.slice(i, i + 1000).map((job) => ({ ...job, opts: { ...job.opts, delay: Math.max(0, job.data.dueAt - now) } })))
    }
    const scheduledAhead = (first - Date.now()) / 1000
    await sleep(Math.max(0, first - 1000 - Date.now()))
    const window = cpuWindow(redis.server.pid ?? -1)
    const until = first + offsets[offsets.length - 1] + flags.timeout * 1000
    while (baseLate.length < offsets.length && Date.now() < until) await sleep(200)
    const cpu = window()
    const summary = summarize(baseLate)
    const per = { cpuMs: cpu.cpuMs / Math.max(1, baseLate.length), redisCpuMs: cpu.redisCpuMs / Math.max(1, baseLate.length) }
    log(`deadlines: round ${r}: baseline lateness p50 ${round(summary.p50)} ms, p99 ${round(summary.p99)} ms, max ${round(summary.max)} ms; missing ${offsets.length - baseLate.length}; CPU per job: worker ${round(per.cpuMs)} ms, Redis ${round(per.redisCpuMs)} ms`)
    return { summary, missing: offsets.length - baseLate.length, spreadSeconds: offsets[offsets.length - 1] / 1000, scheduledAheadSeconds: scheduledAhead, fillRate: Number.NaN, ...per }
  }

  const rounds: Array<{ gateway: Lateness, baseline: Lateness }> = []
  try {
    // The firing path runs for the first time here (the pilot's clocks are days long): one
    // unmeasured round of each warms it up, as a long-running worker is.
    if (flags.warmup > 0) {
      const { offsets } = await gatewayRound('warm-up', Math.min(flags.warmup, flags.count))
      await baselineRound('warm-up', offsets)
    }
    for (let r = 1; r <= flags.rounds; r++) {
      const { offsets, ackSeconds: _ack, ...gateway } = await gatewayRound(r)
      const baseline = await baselineRound(r, offsets)
      rounds.push({ gateway, baseline })
    }
  } finally {
    await baseWorker.close()
    await baseQueue.close()
    await workers.close()
    await redis.stop()
  }

  // A round whose fill outlasted the clock (deadlines firing while requests were still being added) measures
  // something else; it is left out of the medians unless no round is valid.
  const valid = rounds.filter((r) => r.gateway.scheduledAheadSeconds > 0)
  const counted = valid.length > 0 ? valid : rounds
  const med = (side: 'gateway' | 'baseline', pick: (l: Lateness) => number): number => median(counted.map((r) => pick(r[side])))
  const p99 = med('gateway', (l) => l.summary.p99)
  const missing = rounds.reduce((sum, r) => sum + r.gateway.missing, 0)
  return {
    benchmark: 'deadlines',
    title: `5. Deadlines: ${flags.count.toLocaleString('en-US')} acknowledgement deadlines due within ${flags.spread} s`,
    at: new Date().toISOString(),
    durationSeconds: Math.round((performance.now() - started) / 1000),
    command: `node --import tsx bench/deadlines.ts --count ${flags.count} --spread ${flags.spread} --rounds ${flags.rounds} --warmup ${flags.warmup}`,
    params: { ...flags },
    baseline: `${flags.count} plain BullMQ delayed jobs doing nothing, due on the same relative schedule, same Redis, worker concurrency 50 (lateness = processing start − due)`,
    figures: [
      figure('p50 lateness (overdue event − due)', med('gateway', (l) => l.summary.p50), 'ms', { baseline: med('baseline', (l) => l.summary.p50) }),
      figure('p99 lateness', p99, 'ms', { baseline: med('baseline', (l) => l.summary.p99), goal: '≤ 1000 ms', met: atMost(p99, 1000) && missing === 0 }),
      figure('max lateness', med('gateway', (l) => l.summary.max), 'ms', { baseline: med('baseline', (l) => l.summary.max) }),
      figure('throughput while firing (N ÷ (last event − first due))', med('gateway', (l) => l.summary.n / Math.max(0.001, (l.spreadSeconds * 1000 + l.summary.max) / 1000)), 'events/s', { baseline: med('baseline', (l) => l.summary.n / Math.max(0.001, (l.spreadSeconds * 1000 + l.summary.max) / 1000)) }),
      figure('CPU per deadline, workers process', med('gateway', (l) => l.cpuMs), 'ms', { baseline: med('baseline', (l) => l.cpuMs) }),
      figure('CPU per deadline, redis-server', med('gateway', (l) => l.redisCpuMs), 'ms', { baseline: med('baseline', (l) => l.redisCpuMs) }),
      figure('deadlines due within', med('gateway', (l) => l.spreadSeconds), 's'),
      figure('requests all stored before the first due by', med('gateway', (l) => l.scheduledAheadSeconds), 's', { goal: '> 0', met: valid.length > 0, note: `${valid.length} of ${rounds.length} rounds valid` }),
      figure('missing overdue events', missing, `of ${flags.count * rounds.length}`, { goal: '0', met: missing === 0 })
    ],
    notes: [
      `${valid.length} of ${rounds.length} round(s) had every request stored before the first deadline${valid.length < rounds.length ? '; the others are left out of the medians' : ''}`,
      `fill rate ${Math.round(med('gateway', (l) => l.fillRate))}/s (RequestService.submit, ${flags.concurrency} in flight, while the in-process workers dispatch); submission times recorded within ${flags.spread} s (the service's clock), so that the deadlines fall due within ${flags.spread} s`,
      `config: demo agreement ${pair} with acknowledgeWithin ≥ PT${flags['ack-within']}S (raised to outlast the fill), respondWithin P1D, reminderAtFraction 0.1; no webhooks configured (no delivery jobs); workers as startWorkers starts them (deadline clock: batches of up to 500 read in one round trip, 256 requests at once, 50 ms idle poll)`,
      'each request has one entry in the deadline set (rog:deadlines), scored by its next reminder or deadline and moved by its own commits, as in production'
    ],
    rounds,
    machine: machineInfo()
  }
}

if (isMain(import.meta.url)) runAsScript(run)
