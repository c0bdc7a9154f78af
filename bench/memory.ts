// Benchmark 6 — memory: Redis bytes per open request beyond its payload's own
// size, and what they are made of.
//
// N open requests (default 50,000; the complete MLA example of schemas/examples,
// about 3 kB of JSON, each with an Idempotency-Key as partner systems send
// them) are written through RequestService.submit (the API's code below HTTP)
// into a redis-server configured as in production, after a warm-up of 1,000
// (scripts loaded, aggregates created). The figure is the INFO memory
// used_memory delta ÷ N − the average sealed payload (the value of the
// request's payload key as stored: "v2:" and the AES-GCM IV, tag and
// ciphertext). Each key family is then measured with MEMORY USAGE (SAMPLES 0,
// i.e. exactly): the record hash, the payload key, the inbox and outbox sorted
// sets, the audit stream, the sender references hash, the idempotency keys,
// the aggregates.
//
// The request's entry in the deadline set (rog:deadlines) is written by its
// submission, so it is part of the store's figure. Then the workers start (in
// this process), the dispatcher reads every submission, the sweep runs, the
// workers stop, and the delta is measured again: what an open request costs
// once the workers have seen it (no webhooks configured: no delivery jobs).
//
//   node --import tsx bench/memory.ts [--size 50000]
import type { Redis } from 'ioredis'
import pino from 'pino'
import { parseFlags } from './lib/args.js'
import { benchConfig, fill, fillService, log, mlaBody, payloadKey } from './lib/gateway.js'
import { machineInfo } from './lib/machine.js'
import { startBenchRedis } from './lib/redis.js'
import { atMost, figure, isMain, runAsScript, type BenchResult } from './lib/results.js'
import { mean, round, sleep } from './lib/stats.js'
import { canonicalJson } from '../src/domain/canonical-json.js'
import { createKeys } from '../src/store/keys.js'
import { startWorkers } from '../workers/runtime.js'
import { dispatchGroup } from '../workers/dispatcher.js'

const flagSpec = {
  size: { type: 'number', default: 50_000, help: 'open requests measured (after a warm-up of 1,000)' },
  warmup: { type: 'number', default: 1000, help: 'requests written before the first measurement' },
  concurrency: { type: 'number', default: 128, help: 'submissions in flight' },
  sample: { type: 'number', default: 2000, help: 'keys sampled per per-request key family' },
  jobs: { type: 'boolean', default: true, help: 'also measure what the workers add (--jobs=false to skip)' },
  quick: { type: 'boolean', default: false, help: 'short run: --size 5000' }
} as const

const usage = async (redis: Redis, key: string): Promise<number> => Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') ?? 0)
const usedMemory = async (redis: Redis): Promise<number> => {
  const info = await redis.info('memory')
  return Number(/used_memory:(\d+)/.exec(info)?.[1])
}

async function scanKeys (redis: Redis, match: string): Promise<string[]> {
  const out: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000)
    out.push(...keys)
    cursor = next
  } while (cursor !== '0')
  return out
}

interface Family { family: string, bytesPerRequest: number, detail: string }

export async function run (options: { quick?: boolean, argv?: string[] } = {}): Promise<BenchResult> {
  const flags = parseFlags(options.argv ?? [], flagSpec, 'usage: node --import tsx bench/memory.ts [flags]')
  if (options.quick === true || flags.quick) Object.assign(flags, { size: Math.min(flags.size, 5000), quick: true })
  const started = performance.now()
  const runId = Date.now().toString(36)
  const config = benchConfig()
  const keys = createKeys()
  const redis = await startBenchRedis({ label: 'memory' })
  const db = redis.client()
  const filler = fillService(redis.url, config)
  const body = (prefix: string) => (i: number) => mlaBody(`M-${runId}-${prefix}-${i}`, 'DE-BFJ')
  const idem = (prefix: string) => (i: number) => `idem-${runId}-${prefix}-${i}`
  try {
    await fill({ service: filler.service, count: flags.warmup, concurrency: flags.concurrency, sender: 'TR-MOJ', body: body('w'), idempotencyKey: idem('w') })
    await sleep(500)
    const m0 = await usedMemory(db)
    log(`memory: writing ${flags.size} open requests`)
    const filled = await fill({
      service: filler.service,
      count: flags.size,
      concurrency: flags.concurrency,
      sender: 'TR-MOJ',
      body: body('n'),
      idempotencyKey: idem('n'),
      redisPid: redis.server.pid,
      progress: (done, seconds) => { if (done % Math.max(1, Math.floor(flags.size / 5)) === 0) log(`memory: ${done}/${flags.size} in ${Math.round(seconds)} s`) }
    })
    filler.close()
    await sleep(500)
    const m1 = await usedMemory(db)
    const total = flags.warmup + flags.size
    const perRequest = (m1 - m0) / flags.size

    // Payload sizes, from a sample of records.
    const sampleIds = (await db.zrandmember(keys.box('outbox', 'TR-MOJ'), flags.sample)) as string[]
    const sealed: number[] = []
    const records: number[] = []
    const payloadKeys: number[] = []
    for (const id of sampleIds) {
      sealed.push(await db.strlen(keys.payload(id)))
      records.push(await usage(db, keys.request(id)))
      payloadKeys.push(await usage(db, keys.payload(id)))
    }
    const sealedAvg = mean(sealed)
    const plainBytes = Buffer.byteLength(canonicalJson(mlaBody('M-xxxxxxxx-n-00000', 'DE-BFJ')))
    const encoding = await db.call('OBJECT', 'ENCODING', keys.request(sampleIds[0])) as string
    const hashFields = await db.hlen(keys.request(sampleIds[0]))
    const idemSample: number[] = []
    for (let i = 0; i < Math.min(flags.sample, flags.size); i++) idemSample.push(await usage(db, keys.idempotency('TR-MOJ', idem('n')(Math.floor((i * flags.size) / Math.min(flags.sample, flags.size))))))
    const aggregateKeys = [...await scanKeys(db, `${keys.prefix}agg:*`), ...await scanKeys(db, `${keys.prefix}live:*`)]
    let aggregates = 0
    for (const key of aggregateKeys) aggregates += await usage(db, key)
    const xlen = await db.xlen(keys.auditStream)
    const families: Family[] = [
      { family: 'record hash', bytesPerRequest: mean(records), detail: `${hashFields} fields, encoding ${encoding}` },
      { family: 'payload key (incl. sealed payload)', bytesPerRequest: mean(payloadKeys), detail: `sealed payload ${Math.round(sealedAvg)} B of it` },
      { family: 'payload key without the sealed payload', bytesPerRequest: mean(payloadKeys) - sealedAvg, detail: 'the line above minus the payload' },
      { family: 'inbox sorted set entry', bytesPerRequest: (await usage(db, keys.box('inbox', 'DE-BFJ'))) / total, detail: `${keys.box('inbox', 'DE-BFJ')}, ${total} entries` },
      { family: 'outbox sorted set entry', bytesPerRequest: (await usage(db, keys.box('outbox', 'TR-MOJ'))) / total, detail: `${keys.box('outbox', 'TR-MOJ')}, ${total} entries` },
      { family: 'audit stream entry (request.submitted)', bytesPerRequest: (await usage(db, keys.auditStream)) / xlen, detail: `${xlen} entries` },
      { family: 'sender-reference hash field', bytesPerRequest: (await usage(db, keys.senderReferences('TR-MOJ'))) / total, detail: `${keys.senderReferences('TR-MOJ')}, ${total} fields` },
      { family: 'deadline set entry', bytesPerRequest: (await usage(db, keys.deadlines)) / total, detail: `${keys.deadlines}, ${await db.zcard(keys.deadlines)} entries` },
      { family: 'idempotency key (48 h TTL)', bytesPerRequest: mean(idemSample), detail: 'a string key; plus an entry in the expires table, not counted by MEMORY USAGE' },
      { family: 'aggregates (per time block and pair, shared)', bytesPerRequest: aggregates / total, detail: `${aggregateKeys.length} keys in all` }
    ]
    const counted = families.filter((f) => f.family !== 'payload key without the sealed payload').reduce((sum, f) => sum + f.bytesPerRequest, 0)
    families.push({ family: 'other (keyspace tables, expires, allocator)', bytesPerRequest: perRequest - counted, detail: 'used_memory delta ÷ N − the families above' })
    const beyond = perRequest - sealedAvg
    log(`memory: ${Math.round(perRequest)} B per request (used_memory delta), sealed payload ${Math.round(sealedAvg)} B, beyond it ${Math.round(beyond)} B`)
    for (const f of families) log(`memory:   ${f.family.padEnd(45)} ${String(Math.round(f.bytesPerRequest)).padStart(6)} B  (${f.detail})`)

    // What the workers add per open request once they have seen it.
    let jobs: { perRequest: number } | undefined
    if (flags.jobs) {
      log('memory: starting the workers; the dispatcher reads every submission, the sweep runs')
      const workers = await startWorkers({ redisUrl: redis.url, gatewayConfig: config, payloadKey, logger: pino({ level: 'warn' }), closeTimeoutMs: 5000 })
      const until = Date.now() + 30 * 60_000
      for (;;) {
        const groups = await db.xinfo('GROUPS', keys.auditStream) as unknown[][]
        const group = groups.map((g) => Object.fromEntries(Array.from({ length: g.length / 2 }, (_, i) => [g[2 * i], g[2 * i + 1]]))).find((g) => g.name === dispatchGroup)
        if (group !== undefined && Number(group.lag) === 0 && Number(group.pending) === 0) break
        if (Date.now() > until) throw new Error('memory: the dispatcher did not catch up')
        await sleep(1000)
      }
      await workers.sweep()
      await workers.close()
      await sleep(500)
      jobs = { perRequest: (await usedMemory(db) - m1) / total }
      log(`memory: the workers add ${Math.round(jobs.perRequest)} B per open request`)
    }

    const withJobs = jobs === undefined ? undefined : beyond + jobs.perRequest
    const top = [...families].filter((f) => !f.family.startsWith('payload key (incl')).sort((a, b) => b.bytesPerRequest - a.bytesPerRequest)
    return {
      benchmark: 'memory',
      title: '6. Memory: Redis bytes per open request beyond its payload',
      at: new Date().toISOString(),
      durationSeconds: Math.round((performance.now() - started) / 1000),
      command: `node --import tsx bench/memory.ts --size ${flags.size}${flags.jobs ? '' : ' --jobs=false'}`,
      params: { ...flags, plainPayloadBytes: plainBytes },
      figures: [
        figure('bytes per open request beyond the sealed payload (store)', beyond, 'B', { goal: '≤ 1000 B', met: atMost(beyond, 1000) }),
        ...(withJobs === undefined ? [] : [figure('… once the workers have seen it', withJobs, 'B', { goal: '≤ 1000 B', met: atMost(withJobs, 1000) })]),
        figure('used_memory per open request', perRequest, 'B'),
        figure('sealed payload (base64 AES-GCM) / plaintext JSON', sealedAvg, 'B', { baseline: plainBytes }),
        ...families.map((f) => figure(`  ${f.family}`, f.bytesPerRequest, 'B')),
      ],
      notes: [
        `${flags.size.toLocaleString('en-US')} requests after ${flags.warmup} of warm-up, written at ${Math.round(filled.rate)}/s; the sealed payload is ${round(sealedAvg / plainBytes)}× the ${plainBytes} B of canonical JSON it seals (28 B of IV and tag + "v2:"), and that is not counted above`,
        `largest families beyond the payload: ${top.slice(0, 3).map((f) => `${f.family} ${Math.round(f.bytesPerRequest)} B`).join(', ')}`,
        'MEMORY USAGE … SAMPLES 0 per key family (exact); records and idempotency keys from samples of ' + String(flags.sample)
      ],
      diagnostics: { families, jobs, m0, m1 },
      machine: machineInfo()
    }
  } finally {
    filler.close()
    await redis.stop()
  }
}

if (isMain(import.meta.url)) runAsScript(run)
