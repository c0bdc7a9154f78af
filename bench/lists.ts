// Benchmark 3 — pending lists: the first page (limit 20) of an inbox holding
// N open requests (default 1,000,000) against one holding 1,000, through the
// API (GET /v1/requests?box=inbox&limit=20), measured with autocannon (closed
// loop, no pipelining), alternating big and small, median of the rounds.
//
// Fill: the open requests are written through the API's own code below HTTP
// (RequestService.submit → RequestStore.submit, the same Lua commit), many at a
// time, into a redis-server configured as in production (appendfsync always).
// The fill rate is reported. The big inbox is DE-BFJ's (from TR-MOJ), the small
// one NL-AIRS's (from TR-MOJ). The API is the real server (`rogatory serve`,
// child process) on that Redis, without workers (RUN_WORKERS=false): the
// dispatcher would otherwise be reading the N submissions while we measure.
//
//   node --import tsx bench/lists.ts [--size 1000000] [--small 1000] [--rounds 3] [--duration 10]
import autocannon from 'autocannon'
import { request } from 'undici'
import { parseFlags } from './lib/args.js'
import { benchConfig, fill, fillService, log, mlaBody, spawnGateway, token } from './lib/gateway.js'
import { machineInfo } from './lib/machine.js'
import { aofRewriteDone, availableMemory, startBenchRedis } from './lib/redis.js'
import { atMost, figure, isMain, runAsScript, type BenchResult } from './lib/results.js'
import { cpuSeconds } from './lib/proc.js'
import { median, round } from './lib/stats.js'

const flagSpec = {
  size: { type: 'number', default: 1_000_000, help: 'open requests in the big inbox' },
  small: { type: 'number', default: 1000, help: 'open requests in the small inbox' },
  concurrency: { type: 'number', default: 128, help: 'submissions in flight during the fill' },
  rounds: { type: 'number', default: 3, help: 'measurement rounds (big and small alternate)' },
  duration: { type: 'number', default: 10, help: 'seconds per autocannon run' },
  warmup: { type: 'number', default: 3, help: 'seconds of unmeasured autocannon per inbox first' },
  connections: { type: 'number', default: 10, help: 'autocannon connections' },
  'memory-guard': { type: 'number', default: 0.6, help: 'refuse a fill whose projected Redis memory exceeds this share of free RAM' },
  quick: { type: 'boolean', default: false, help: 'short run: --size 20000 --rounds 2 --duration 5 --warmup 2' }
} as const

interface CannonStats {
  p50: number
  p99: number
  mean: number
  rps: number
  non2xx: number
  errors: number
  /** CPU (user + system) of the API process and of redis-server per page served, ms. */
  apiCpuMs: number
  redisCpuMs: number
}

async function cannon (url: string, auth: string, seconds: number, connections: number, pids: { api: number, redis: number }): Promise<CannonStats> {
  const cpu0 = { api: cpuSeconds(pids.api), redis: cpuSeconds(pids.redis) }
  const result = await autocannon({ url, connections, pipelining: 1, duration: seconds, headers: { authorization: auth } })
  const total = Math.max(1, result.requests.total)
  return {
    p50: result.latency.p50,
    p99: result.latency.p99,
    mean: result.latency.average,
    rps: result.requests.average,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    apiCpuMs: ((cpuSeconds(pids.api) - cpu0.api) * 1000) / total,
    redisCpuMs: ((cpuSeconds(pids.redis) - cpu0.redis) * 1000) / total
  }
}

export async function run (options: { quick?: boolean, argv?: string[] } = {}): Promise<BenchResult> {
  const flags = parseFlags(options.argv ?? [], flagSpec, 'usage: node --import tsx bench/lists.ts [flags]')
  if (options.quick === true || flags.quick) Object.assign(flags, { size: Math.min(flags.size, 20_000), rounds: 2, duration: 5, warmup: 2, quick: true })
  const started = performance.now()
  const runId = Date.now().toString(36)
  const config = benchConfig()
  const redis = await startBenchRedis({ label: 'lists' })
  const filler = fillService(redis.url, config)
  let gateway: Awaited<ReturnType<typeof spawnGateway>> | undefined
  try {
    // The small inbox first: it also tells how much memory a request takes, to check the big fill fits.
    log(`lists: filling NL-AIRS's inbox with ${flags.small} open requests`)
    const before = Number((await redis.info('memory')).used_memory)
    const redisPid = redis.server.pid
    const small = await fill({ service: filler.service, count: flags.small, concurrency: flags.concurrency, sender: 'TR-MOJ', redisPid, body: (i) => mlaBody(`L-${runId}-S-${i}`, 'NL-AIRS') })
    const perRequest = (Number((await redis.info('memory')).used_memory) - before) / flags.small
    const projected = perRequest * flags.size
    const available = availableMemory()
    if (projected > flags['memory-guard'] * available) {
      throw new Error(`lists: ${flags.size} requests need about ${(projected / 2 ** 30).toFixed(1)} GiB in Redis (${Math.round(perRequest)} B each); only ${(available / 2 ** 30).toFixed(1)} GiB are available. Use --size to run smaller.`)
    }
    log(`lists: filling DE-BFJ's inbox with ${flags.size} open requests (about ${(projected / 2 ** 30).toFixed(1)} GiB in Redis)`)
    const big = await fill({
      service: filler.service,
      count: flags.size,
      concurrency: flags.concurrency,
      sender: 'TR-MOJ',
      redisPid,
      body: (i) => mlaBody(`L-${runId}-B-${i}`, 'DE-BFJ'),
      progress: (done, seconds) => { log(`lists: ${done}/${flags.size} in ${Math.round(seconds)} s (${Math.round(done / seconds)}/s)`) }
    })
    filler.close()
    // A background AOF rewrite (a fork) would compete with the measurement.
    await aofRewriteDone(redis.info)
    const memory = await redis.info('memory')
    log(`lists: filled ${flags.size} in ${round(big.seconds)} s (${Math.round(big.rate)}/s; CPU per request: service ${round(big.clientCpuMs)} ms, Redis ${round(big.redisCpuMs)} ms); Redis holds ${(Number(memory.used_memory) / 2 ** 30).toFixed(2)} GiB`)

    gateway = await spawnGateway({ dataDir: redis.dir, config, redisUrl: redis.url, runWorkers: false })
    const inbox = `${gateway.origin}/v1/requests?box=inbox&limit=20`
    const auth = { big: `Bearer ${token('DE-BFJ', ['liaison'])}`, small: `Bearer ${token('NL-AIRS', ['liaison'])}` }
    const sizes = { big: flags.size, small: flags.small }
    const pids = { api: gateway.pid, redis: redis.server.pid ?? -1 }
    // The pages must be what they claim: 20 open requests, nearest deadline first, with a next cursor.
    for (const which of ['big', 'small'] as const) {
      const res = await request(inbox, { headers: { authorization: auth[which] } })
      const page = await res.body.json() as { items: Array<{ id: string, status: string }>, nextCursor?: string }
      if (res.statusCode !== 200 || page.items.length !== 20 || page.nextCursor === undefined) {
        throw new Error(`lists: the ${which} inbox's first page is not 20 items with a cursor: ${res.statusCode} ${JSON.stringify(page).slice(0, 300)}`)
      }
    }
    for (const which of ['big', 'small'] as const) if (flags.warmup > 0) await cannon(inbox, auth[which], flags.warmup, flags.connections, pids)
    const rounds: Array<Record<'big' | 'small', CannonStats>> = []
    for (let r = 0; r < flags.rounds; r++) {
      const order = r % 2 === 0 ? (['big', 'small'] as const) : (['small', 'big'] as const)
      const current: Partial<Record<'big' | 'small', CannonStats>> = {}
      for (const which of order) {
        const stats = await cannon(inbox, auth[which], flags.duration, flags.connections, pids)
        current[which] = stats
        log(`lists: round ${r + 1} ${which} (${sizes[which]}): p50 ${stats.p50} ms, p99 ${stats.p99} ms, ${Math.round(stats.rps)} req/s, non-2xx ${stats.non2xx}; CPU per page: API ${round(stats.apiCpuMs)} ms, Redis ${round(stats.redisCpuMs)} ms`)
      }
      rounds.push(current as Record<'big' | 'small', CannonStats>)
    }
    const med = (which: 'big' | 'small', pick: (s: CannonStats) => number): number => median(rounds.map((r) => pick(r[which])))
    const bad = rounds.reduce((sum, r) => sum + r.big.non2xx + r.big.errors + r.small.non2xx + r.small.errors, 0)
    const p50Ratio = med('big', (s) => s.p50) / med('small', (s) => s.p50)
    const meanRatio = med('big', (s) => s.mean) / med('small', (s) => s.mean)
    const rpsBig = med('big', (s) => s.rps)
    const rpsSmall = med('small', (s) => s.rps)
    return {
      benchmark: 'lists',
      title: `3. Pending lists: first page of an inbox of ${flags.size.toLocaleString('en-US')} vs ${flags.small.toLocaleString('en-US')}`,
      at: new Date().toISOString(),
      durationSeconds: Math.round((performance.now() - started) / 1000),
      command: `node --import tsx bench/lists.ts --size ${flags.size} --small ${flags.small} --rounds ${flags.rounds} --duration ${flags.duration} --connections ${flags.connections}`,
      params: { ...flags },
      baseline: `the same page of an inbox holding ${flags.small} open requests, same server, same run (ratio = big ÷ small)`,
      figures: [
        figure(`p50 first page, ${flags.size.toLocaleString('en-US')} open`, med('big', (s) => s.p50), 'ms', { baseline: med('small', (s) => s.p50), ratio: p50Ratio, goal: 'ratio ≤ 2', met: atMost(p50Ratio, 2) && bad === 0 }),
        figure('mean first page', med('big', (s) => s.mean), 'ms', { baseline: med('small', (s) => s.mean), ratio: meanRatio, goal: 'ratio ≤ 2', met: atMost(meanRatio, 2) && bad === 0 }),
        figure('p99 first page', med('big', (s) => s.p99), 'ms', { baseline: med('small', (s) => s.p99) }),
        figure('throughput (small ÷ big as ratio)', rpsBig, 'req/s', { baseline: rpsSmall, ratio: rpsSmall / rpsBig }),
        figure('API CPU per page', med('big', (s) => s.apiCpuMs), 'ms', { baseline: med('small', (s) => s.apiCpuMs) }),
        figure('Redis CPU per page', med('big', (s) => s.redisCpuMs), 'ms', { baseline: med('small', (s) => s.redisCpuMs) }),
        figure('fill rate (store Lua, appendfsync always)', big.rate, 'req/s', { note: `${flags.size} in ${round(big.seconds)} s` }),
        figure('fill CPU per request, service (bench process)', big.clientCpuMs, 'ms'),
        figure('fill CPU per request, redis-server', big.redisCpuMs, 'ms'),
        figure('non-2xx + errors', bad, '', { goal: '0', met: bad === 0 })
      ],
      notes: [
        `fill: ${flags.size.toLocaleString('en-US')} requests in ${round(big.seconds)} s = ${Math.round(big.rate)}/s (${flags.concurrency} in flight, RequestService.submit in the bench process, appendfsync always; CPU per request: service ${round(big.clientCpuMs)} ms, redis-server ${round(big.redisCpuMs)} ms); small inbox ${flags.small} at ${Math.round(small.rate)}/s; Redis used_memory after the fill ${(Number(memory.used_memory) / 2 ** 30).toFixed(2)} GiB`,
        `measurement: autocannon ${flags.connections} connections, no pipelining, ${flags.rounds} round(s) × ${flags.duration} s per inbox after ${flags.warmup} s warm-up; autocannon records latencies in whole milliseconds, so the mean (and req/s) are the finer figures`,
        'API: rogatory serve with RUN_WORKERS=false on the filled Redis; liaison tokens of DE-BFJ (big) and NL-AIRS (small)'
      ],
      rounds,
      machine: machineInfo()
    }
  } finally {
    filler.close()
    await gateway?.stop()
    await redis.stop()
  }
}

if (isMain(import.meta.url)) runAsScript(run)
