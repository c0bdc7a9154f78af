// Benchmark 2 — end to end: from the submission (POST /v1/requests) to the
// signed webhook `request.submitted` arriving at the recipient's receiver, at a
// fixed rate (open loop: one request every 1/rate s, whatever the answers).
//
// The gateway is the real server, `rogatory serve` as `npm start` runs it (API +
// dispatcher, delivery worker and deadline clock in one process, its own
// redis-server with AOF appendfsync always under a temporary DATA_DIR), in a
// child process. Both parties of the pair have webhooks (the recipient hears
// request.submitted, the sender request.delivered), as in production. The
// sender and the receiver (which verifies every signature) run in this process,
// so both ends of a latency are read on one clock (performance.now()).
//
// Baseline, same run, same loop, same receiver: a bare Fastify route
// (bench/lib/bare-webhook-server.ts, child process) that answers 201 and posts
// the same signed webhook directly — the cost of "HTTP in, HTTP out" on this
// machine, with no validation, auth, Redis, fsync or queue.
//
//   node --import tsx bench/e2e.ts [--rate 200] [--duration 20] [--rounds 3] [--warmup 5]
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { Pool } from 'undici'
import { parseFlags } from './lib/args.js'
import { authorityOf, benchConfig, log, mlaBody, spawnGateway, spawnNode, stopChild, token, waitForHttp } from './lib/gateway.js'
import { machineInfo } from './lib/machine.js'
import { paced } from './lib/pacer.js'
import { BenchReceiver } from './lib/receiver.js'
import { removeTempDir, tempDir } from './lib/redis.js'
import { enableLatencyMonitor, latencyHistory, RedisUsageMeter } from './lib/redis-stats.js'
import { readFileSync } from 'node:fs'
import { CpuMeter } from './lib/proc.js'
import { atMost, figure, runAsScript, isMain, type BenchResult } from './lib/results.js'
import { median, round, sleep, summarize, type Summary } from './lib/stats.js'
import { findFreePort } from '../src/store/embedded-redis.js'
import { createKeys } from '../src/store/keys.js'
import { decodeStreamEntry } from '../src/store/request-store.js'
import { dispatchGroup } from '../workers/dispatcher.js'
import { queueNames, queuePrefix } from '../workers/queues.js'

const flagSpec = {
  rate: { type: 'number', default: 200, help: 'requests per second (open loop)' },
  duration: { type: 'number', default: 20, help: 'seconds measured per round and target' },
  warmup: { type: 'number', default: 5, help: 'seconds of unmeasured traffic per target first' },
  rounds: { type: 'number', default: 3, help: 'rounds (gateway and baseline alternate); medians reported' },
  connections: { type: 'number', default: 64, help: 'sender connection pool size' },
  'drain-timeout': { type: 'number', default: 30, help: 'seconds to wait for the last webhooks of a phase' },
  appendfsync: { type: 'string', default: 'always', help: 'the gateway Redis\'s appendfsync: always (production) or everysec (diagnostic only)' },
  dist: { type: 'boolean', default: false, help: 'run dist/src/cli/rogatory.js (after npm run build) instead of src through tsx' },
  profile: { type: 'string', default: '', help: 'directory for a V8 CPU profile of the gateway process (node --cpu-prof)' },
  sweep: { type: 'string', default: '', help: 'comma-separated rates: one gateway and one baseline phase at each, instead of the rounds (recorded as "e2e-sweep")' },
  quick: { type: 'boolean', default: false, help: 'short run: --duration 8 --warmup 3 --rounds 1' }
} as const

type Target = 'gateway' | 'baseline'

interface Phase {
  target: Target
  sent: number
  created: number
  errors: number
  lost: number
  e2e: Summary
  ack: Summary
  lag: Summary
  seconds: number
}

interface Traced { id: string, sentWall: number, arrivedWall: number }

/**
 * Where the time goes, per request.submitted webhook of the measured phases,
 * from the audit stream: send → the service's submittedAt (HTTP, auth, rate
 * limit, validation), → the entry in the stream (its id is Redis's clock at the
 * commit: encryption, the Lua commit), → the webhook at the receiver (fsync of
 * the commit, the dispatcher's read, signing, POST). Wall clocks of processes
 * on one machine; millisecond resolution.
 */
async function whereTheTimeGoes (redis: Redis, traced: Traced[]): Promise<Record<string, Summary>> {
  const stages: Record<string, number[]> = { 'send → submittedAt': [], 'submittedAt → committed': [], 'committed → webhook received': [] }
  const byId = new Map(traced.map((t) => [t.id, t]))
  const key = createKeys().auditStream
  let start = '-'
  for (;;) {
    const entries = await redis.xrange(key, start, '+', 'COUNT', 5000) as Array<[string, string[]]>
    if (entries.length === 0) break
    for (const [id, fields] of entries) {
      const event = decodeStreamEntry(id, fields)
      const t = event.type === 'request.submitted' ? byId.get(event.requestId) : undefined
      if (t === undefined) continue
      const at = Date.parse(event.at)
      const committed = Number(id.split('-')[0])
      stages['send → submittedAt'].push(at - t.sentWall)
      stages['submittedAt → committed'].push(committed - at)
      stages['committed → webhook received'].push(t.arrivedWall - committed)
    }
    start = `(${entries[entries.length - 1][0]}`
  }
  return Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, summarize(v)]))
}

export async function run (options: { quick?: boolean, argv?: string[] } = {}): Promise<BenchResult> {
  const flags = parseFlags(options.argv ?? [], flagSpec, 'usage: node --import tsx bench/e2e.ts [flags]')
  if (options.quick === true || flags.quick) Object.assign(flags, { duration: 8, warmup: 3, rounds: 1, quick: true })
  const started = performance.now()
  const runId = Date.now().toString(36)

  // Undone in reverse order at the end, whatever happens (the runner goes on with other benchmarks).
  const cleanups: Array<() => Promise<void> | void> = []
  try {
    const receiver = await BenchReceiver.start()
    cleanups.push(() => receiver.close())
    const recipientPath = '/hooks/de-bfj'
    const barePath = '/hooks/bare'
    const config = benchConfig((c) => {
      authorityOf(c, 'DE-BFJ').webhook = receiver.webhook(recipientPath)
      authorityOf(c, 'TR-MOJ').webhook = receiver.webhook('/hooks/tr-moj')
    })
    const dataDir = await tempDir('e2e')
    cleanups.push(() => removeTempDir(dataDir))
    log(`e2e: starting the gateway (rogatory serve, own redis-server, appendfsync ${flags.appendfsync}) in ${dataDir}`)
    if (flags.appendfsync !== 'always' && flags.appendfsync !== 'everysec') throw new Error('--appendfsync must be always or everysec')
    const gateway = await spawnGateway({
      dataDir,
      config,
      runWorkers: true,
      dist: flags.dist,
      env: { REDIS_APPENDFSYNC: flags.appendfsync },
      nodeArgs: flags.profile === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${flags.profile}`]
    })
    cleanups.push(() => gateway.stop())
    // The gateway's own redis-server, watched from here: CPU, commands, fsync stalls.
    const gatewayRedis = new Redis(join(dataDir, 'redis', 'redis.sock'), { maxRetriesPerRequest: null })
    gatewayRedis.on('error', () => {})
    cleanups.push(() => { gatewayRedis.disconnect() })
    const meter = new RedisUsageMeter(gatewayRedis)
    const bareHook = receiver.webhook(barePath)
    const barePort = await findFreePort()
    const bare = spawnNode(['--import', 'tsx', 'bench/lib/bare-webhook-server.ts'], { PORT: String(barePort), WEBHOOK_URL: bareHook.url, WEBHOOK_SECRET: bareHook.secret })
    cleanups.push(() => stopChild(bare.child, 10_000))
    const bareOrigin = `http://127.0.0.1:${barePort}`
    await waitForHttp(`${bareOrigin}/healthz`, 30_000, bare.child, bare.output)
    const redisPid = Number(readFileSync(join(dataDir, 'redis', 'redis.pid'), 'utf8').trim())
    // CPU (user + system) over the measured phases: the gateway process, its redis-server, the bare server.
    const cpu = { gateway: new CpuMeter(gateway.pid), redis: new CpuMeter(redisPid), baseline: new CpuMeter(bare.child.pid ?? -1) }

    const pools: Record<Target, Pool> = {
      gateway: new Pool(gateway.origin, { connections: flags.connections }),
      baseline: new Pool(bareOrigin, { connections: flags.connections })
    }
    cleanups.push(() => Promise.all([pools.gateway.close(), pools.baseline.close()]).then(() => {}))
    const auth = `Bearer ${token('TR-MOJ', ['agency'])}`

    const traced: Traced[] = []
    /** Waits until the sender heard request.delivered for every id and the dispatcher and the delivery queue are idle. */
    const quiesce = async (ids: string[]): Promise<void> => {
      const until = Date.now() + flags['drain-timeout'] * 1000
      let next = 0
      while (Date.now() < until) {
        while (next < ids.length && receiver.arrival('/hooks/tr-moj', 'request.delivered', ids[next]) !== undefined) next++
        if (next === ids.length) {
          const [groups, waiting, active] = await Promise.all([
            gatewayRedis.xinfo('GROUPS', createKeys().auditStream) as Promise<unknown[][]>,
            gatewayRedis.llen(`${queuePrefix}:${queueNames.delivery}:wait`),
            gatewayRedis.llen(`${queuePrefix}:${queueNames.delivery}:active`)
          ])
          const group = groups.map((g) => Object.fromEntries(Array.from({ length: g.length / 2 }, (_, i) => [g[2 * i], g[2 * i + 1]]))).find((g) => g.name === dispatchGroup)
          if (group !== undefined && Number(group.lag) === 0 && Number(group.pending) === 0 && waiting === 0 && active === 0) return
        }
        await sleep(50)
      }
      log('e2e: the gateway did not become idle within the drain timeout')
    }
    const phase = async (target: Target, seconds: number, label: string, rate = flags.rate): Promise<Phase> => {
      const sentAt = new Map<string, number>()
      const ack: number[] = []
      let errors = 0
      let firstError = ''
      const inflight = new Set<Promise<void>>()
      const path = target === 'gateway' ? recipientPath : barePath
      const measured = target === 'gateway' && label !== 'warmup'
      if (measured) { await meter.begin(); cpu.gateway.begin(); cpu.redis.begin() }
      if (target === 'baseline' && label !== 'warmup') cpu.baseline.begin()
      const run = await paced(rate, seconds, (i) => {
        const ref = `E2E-${runId}-${label}-${i}`
        const body = JSON.stringify(mlaBody(ref))
        const t0 = performance.now()
        const p = pools[target].request({
          method: 'POST',
          path: '/v1/requests',
          headers: { authorization: auth, 'content-type': 'application/json', 'idempotency-key': ref },
          body
        }).then(async (res) => {
          const text = await res.body.text()
          const t1 = performance.now()
          if (res.statusCode !== 201) {
            errors++
            firstError ||= `${res.statusCode} ${text.slice(0, 300)}`
            return
          }
          const location = String(res.headers.location ?? '')
          const id = location.slice(location.lastIndexOf('/') + 1) || (JSON.parse(text) as { id: string }).id
          sentAt.set(id, t0)
          ack.push(t1 - t0)
        }, (error: unknown) => {
          errors++
          firstError ||= String(error)
        })
        inflight.add(p)
        void p.finally(() => inflight.delete(p))
      })
      await Promise.all([...inflight])
      const ids = [...sentAt.keys()]
      let next = 0
      const allArrived = (): boolean => {
        while (next < ids.length && receiver.arrival(path, 'request.submitted', ids[next]) !== undefined) next++
        return next === ids.length
      }
      await receiver.until(allArrived, flags['drain-timeout'] * 1000)
      // The gateway's tail of work for these submissions (request.delivered to the sender, its dispatch)
      // must not spill into the next phase; and it belongs in the CPU per submission.
      if (target === 'gateway') await quiesce(ids)
      if (measured) {
        await meter.end(); cpu.gateway.end(); cpu.redis.end()
        for (const [id, t0] of sentAt) {
          const arrived = receiver.arrival(path, 'request.submitted', id)
          if (arrived !== undefined) traced.push({ id, sentWall: performance.timeOrigin + t0, arrivedWall: performance.timeOrigin + arrived })
        }
      }
      if (target === 'baseline' && label !== 'warmup') cpu.baseline.end()
      const e2e: number[] = []
      let lost = 0
      for (const [id, t0] of sentAt) {
        const t = receiver.arrival(path, 'request.submitted', id)
        if (t === undefined) lost++
        else e2e.push(t - t0)
      }
      if (firstError !== '') log(`e2e: ${target}: ${errors} failed submissions, first: ${firstError}`)
      const result: Phase = { target, sent: run.sent, created: sentAt.size, errors, lost, e2e: summarize(e2e), ack: summarize(ack), lag: summarize(run.lagMs), seconds: run.seconds }
      log(`e2e: ${label} ${target}: sent ${run.sent} in ${round(run.seconds)} s, p50 ${round(result.e2e.p50)} ms, p99 ${round(result.e2e.p99)} ms, max ${round(result.e2e.max)} ms; 201 p99 ${round(result.ack.p99)} ms; lost ${lost}, errors ${errors}`)
      return result
    }

    if (flags.sweep !== '') {
      const rates = flags.sweep.split(',').map(Number).filter((r) => r > 0)
      if (flags.warmup > 0) {
        await phase('gateway', flags.warmup, 'warmup', rates[0])
        await phase('baseline', flags.warmup, 'warmup', rates[0])
      }
      const swept: Array<{ rate: number, gateway: Phase, baseline: Phase }> = []
      for (const rate of rates) {
        const gatewayPhase = await phase('gateway', flags.duration, `${rate}/s`, rate)
        await sleep(500)
        const baselinePhase = await phase('baseline', flags.duration, `${rate}/s`, rate)
        await sleep(500)
        swept.push({ rate, gateway: gatewayPhase, baseline: baselinePhase })
      }
      const meeting = swept.filter((x) => x.gateway.e2e.p99 <= 50 && x.gateway.lost + x.gateway.errors === 0).map((x) => x.rate)
      return {
        benchmark: 'e2e-sweep',
        title: '2b. End to end at several rates (one phase each)',
        at: new Date().toISOString(),
        durationSeconds: Math.round((performance.now() - started) / 1000),
        command: `node --import tsx bench/e2e.ts --sweep ${flags.sweep} --duration ${flags.duration} --warmup ${flags.warmup}`,
        params: { ...flags },
        baseline: 'the bare Fastify route posting the same webhook, same rate',
        figures: [
          ...swept.flatMap((x) => [
            figure(`p50 at ${x.rate}/s`, x.gateway.e2e.p50, 'ms', { baseline: x.baseline.e2e.p50 }),
            figure(`p99 at ${x.rate}/s`, x.gateway.e2e.p99, 'ms', { baseline: x.baseline.e2e.p99, goal: '≤ 50 ms', met: x.gateway.e2e.p99 <= 50 && x.gateway.lost + x.gateway.errors === 0 })
          ]),
          figure('highest swept rate with p99 ≤ 50 ms', meeting.length === 0 ? 0 : Math.max(...meeting), 'req/s', { goal: `≥ ${flags.rate}/s`, met: meeting.includes(flags.rate) || meeting.some((r) => r >= flags.rate) })
        ],
        notes: [`one ${flags.duration} s phase per rate and target, after ${flags.warmup} s of warm-up at ${rates[0]}/s; same gateway (its Redis keeps what earlier rates wrote)`],
        rounds: swept,
        machine: machineInfo()
      }
    }

    const rounds: Array<Record<Target, Phase>> = []
    let fsync = { seconds: 0, medianMaxMs: 0, maxMs: 0 }
    let stages: Record<string, Summary> = {}
    {
      if (flags.warmup > 0) {
        await phase('gateway', flags.warmup, 'warmup')
        await phase('baseline', flags.warmup, 'warmup')
      }
      await enableLatencyMonitor(gatewayRedis, 1)
      for (let r = 0; r < flags.rounds; r++) {
        const order: Target[] = r % 2 === 0 ? ['gateway', 'baseline'] : ['baseline', 'gateway']
        const current: Partial<Record<Target, Phase>> = {}
        for (const target of order) {
          current[target] = await phase(target, flags.duration, `round${r + 1}`)
          await sleep(500)
        }
        rounds.push(current as Record<Target, Phase>)
      }
      fsync = await latencyHistory(gatewayRedis, 'aof-fsync-always')
      stages = await whereTheTimeGoes(gatewayRedis, traced)
    }

    const med = (target: Target, pick: (p: Phase) => number): number => median(rounds.map((r) => pick(r[target])))
    const p99 = med('gateway', (p) => p.e2e.p99)
    const lost = rounds.reduce((sum, r) => sum + r.gateway.lost, 0)
    const errors = rounds.reduce((sum, r) => sum + r.gateway.errors, 0)
    const sent = rounds.reduce((sum, r) => sum + r.gateway.sent, 0)
    const usage = meter.usage()
    const sentBaseline = rounds.reduce((sum, r) => sum + r.baseline.sent, 0)
    const cpuMs = { gateway: (cpu.gateway.total * 1000) / Math.max(1, sent), redis: (cpu.redis.total * 1000) / Math.max(1, sent), baseline: (cpu.baseline.total * 1000) / Math.max(1, sentBaseline) }
    const perSubmission = (usec: number): number => round(usec / Math.max(1, sent))
    const redisUsec = usage.top.reduce((sum, c) => sum + c.usec, 0)
    return {
      benchmark: 'e2e',
      title: `2. End to end: submission → signed webhook at the recipient${flags.appendfsync === 'always' ? '' : ` (DIAGNOSTIC: appendfsync ${flags.appendfsync}, not the production config)`}`,
      at: new Date().toISOString(),
      durationSeconds: Math.round((performance.now() - started) / 1000),
      command: `node --import tsx bench/e2e.ts --rate ${flags.rate} --duration ${flags.duration} --rounds ${flags.rounds} --warmup ${flags.warmup}${flags.dist ? ' --dist' : ''}${flags.appendfsync === 'always' ? '' : ` --appendfsync ${flags.appendfsync}`}`,
      params: { ...flags, bodyBytes: JSON.stringify(mlaBody('x')).length },
      baseline: 'the same open loop against a bare Fastify route (no validation, auth, Redis or queue) that answers 201 and posts the same signed webhook straight to the same receiver',
      figures: [
        figure('p50 submission → webhook', med('gateway', (p) => p.e2e.p50), 'ms', { baseline: med('baseline', (p) => p.e2e.p50) }),
        figure('p99 submission → webhook', p99, 'ms', { baseline: med('baseline', (p) => p.e2e.p99), goal: '≤ 50 ms', met: flags.appendfsync === 'always' ? atMost(p99, 50) && lost === 0 : undefined }),
        figure('max submission → webhook', med('gateway', (p) => p.e2e.max), 'ms', { baseline: med('baseline', (p) => p.e2e.max) }),
        figure('p50 POST → 201', med('gateway', (p) => p.ack.p50), 'ms', { baseline: med('baseline', (p) => p.ack.p50) }),
        figure('p99 POST → 201', med('gateway', (p) => p.ack.p99), 'ms', { baseline: med('baseline', (p) => p.ack.p99) }),
        figure('offered rate', med('gateway', (p) => p.sent / p.seconds), 'req/s', { baseline: med('baseline', (p) => p.sent / p.seconds), goal: `${flags.rate}/s` }),
        figure('CPU per submission, server process', cpuMs.gateway, 'ms', { baseline: cpuMs.baseline }),
        figure('CPU per submission, redis-server', cpuMs.redis, 'ms'),
        figure('lost webhooks + failed submissions', lost + errors, `of ${sent}`, { goal: '0', met: lost + errors === 0 })
      ],
      notes: [
        `gateway: rogatory serve (${flags.dist ? 'dist' : 'src via tsx'}), workers in-process, embedded redis-server appendfsync ${flags.appendfsync}; webhooks for both parties; ${flags.rounds} round(s) × ${flags.duration} s at ${flags.rate}/s after ${flags.warmup} s warm-up; medians of the rounds' percentiles`,
        `sender lag behind its fixed schedule (median of rounds' p99): ${round(med('gateway', (p) => p.lag.p99))} ms; receiver signature failures: ${receiver.unverified}`,
        'the sender and the receiver share the machine (and its 2 cores) with the server under test, for the gateway and the baseline alike',
        `gateway Redis during the measured phases: main thread ${round(usage.cpuShare * 100)}% busy (CPU), ${perSubmission(redisUsec)} µs of command time per submission; top: ${usage.top.slice(0, 6).map((c) => `${c.command} ${round(c.calls / Math.max(1, sent))}×/req ${perSubmission(c.usec)} µs/req`).join(', ')}`,
        `CPU needed at ${flags.rate}/s: gateway process ${round((cpuMs.gateway * flags.rate) / 10)}% of a core, its redis-server ${round((cpuMs.redis * flags.rate) / 10)}% (the bare baseline ${round((cpuMs.baseline * flags.rate) / 10)}%); the machine has ${machineInfo().cores} cores, shared with the sender and receiver`,
        `where the time goes (p50 / p99 ms, ${stages['send → submittedAt']?.n ?? 0} webhooks): ${Object.entries(stages).map(([k, v]) => `${k} ${round(v.p50)} / ${round(v.p99)}`).join('; ')}`,
        `fsync of the AOF (appendfsync ${flags.appendfsync}), Redis latency monitor, per-second maxima over ${fsync.seconds} s with a stall ≥ 1 ms: median ${round(fsync.medianMaxMs)} ms, max ${round(fsync.maxMs)} ms (each stall blocks Redis's only thread)`
      ],
      rounds: rounds.map((r) => ({ gateway: r.gateway, baseline: r.baseline })),
      diagnostics: { redis: { ...usage, top: usage.top.slice(0, 15) }, fsync, stages, cpuMsPerSubmission: cpuMs },
      machine: machineInfo()
    }
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try { await cleanup() } catch (error) { log(`e2e: cleanup: ${String(error)}`) }
    }
  }
}

if (isMain(import.meta.url)) runAsScript(run)
