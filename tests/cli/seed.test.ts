// The history generator (src/services/seeder.ts) and `rogatory seed`
// (src/cli/seed.ts): realistic, deterministic given the seed, written through
// the same commits as the API and the workers (so the audit chain verifies and
// the records, events and deadlines are consistent), and only up to now.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { demoConfig, payloadKey } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'
import { packageRoot } from '../../src/config/env.js'
import { directoryOf } from '../../src/config/gateway-config.js'
import { runSeed } from '../../src/cli/seed.js'
import { refusalCatalogue } from '../../src/domain/refusal-grounds.js'
import { createAjv, schemaId } from '../../src/schemas/registry.js'
import { Draw, seedBody, seedCombos, seedHistory, seedReference, type SeedOptions } from '../../src/services/seeder.js'
import { AuditLog } from '../../src/store/audit-log.js'
import { createKeys } from '../../src/store/keys.js'
import { PayloadCipher } from '../../src/store/payload-cipher.js'
import { decodeStreamEntry, RequestStore, type StoredRequest } from '../../src/store/request-store.js'

const DAY = 86_400_000
const config = demoConfig()
const cipher = new PayloadCipher(payloadKey)
const now = Date.parse('2026-11-20T10:00:00.000Z')

async function connect (t: Test, url: string): Promise<Redis> {
  const redis = new Redis(url, { enableAutoPipelining: true })
  t.teardown(() => { redis.disconnect() })
  return redis
}

/** The plaintext of a record read with its payload (the default of RequestStore.get/getMany). */
function openContent (record: StoredRequest): string {
  if (record.sealedContent === undefined) throw new Error(`${record.senderReference} was read without its payload`)
  return cipher.open(record.id, record.sealedContent)
}

/** Every request under a key prefix, by reference, with its history (types, times and actors). */
async function history (redis: Redis, prefix: string): Promise<Map<string, { record: StoredRequest, events: string[] }>> {
  const store = new RequestStore(redis, prefix)
  const entries = await redis.xrange(store.keys.auditStream, '-', '+') as Array<[string, string[]]>
  const byRequest = new Map<string, string[]>()
  for (const [id, fields] of entries) {
    const event = decodeStreamEntry(id, fields)
    if (!byRequest.has(event.requestId)) byRequest.set(event.requestId, [])
    byRequest.get(event.requestId)?.push(`${event.at} ${event.type} ${event.actor.authority} ${JSON.stringify({ ...event.data, eventId: undefined })}`)
  }
  const records = await store.getMany([...byRequest.keys()])
  return new Map(records.map((record) => [record.senderReference, { record, events: byRequest.get(record.id) ?? [] }]))
}

/** A record without what legitimately differs between two runs (ids, ciphertexts, stream ids). */
function comparable (record: StoredRequest): Record<string, unknown> {
  const { id: _id, sealedContent: _content, sealedMessages: _messages, eventIds, deliveryFailures, ...rest } = record
  return { ...rest, events: eventIds.length, deliveryFailures: deliveryFailures.length }
}

const seedInto = (redis: Redis, prefix: string, options: Partial<SeedOptions>): ReturnType<typeof seedHistory> =>
  seedHistory({ store: new RequestStore(redis, prefix), cipher, config, requests: 200, days: 60, seed: 11, now, ...options })

t.test('deterministic given the seed, whatever the concurrency', async (t) => {
  const server = await startRedis(t, { appendfsync: 'everysec' })
  const redis = await connect(t, server.url)
  const one = await seedInto(redis, 'a:', { concurrency: 1 })
  const many = await seedInto(redis, 'b:', { concurrency: 64 })
  const other = await seedInto(redis, 'c:', { seed: 12 })
  t.same({ ...many, elapsedMs: 0, ratePerSecond: 0 }, { ...one, elapsedMs: 0, ratePerSecond: 0 }, 'the same summary')

  const [a, b, c] = await Promise.all([history(redis, 'a:'), history(redis, 'b:'), history(redis, 'c:')])
  t.equal(a.size, 200)
  t.same([...b.keys()].sort(), [...a.keys()].sort(), 'the same references')
  let differences = 0
  for (const [reference, { record, events }] of a) {
    const twin = b.get(reference)
    if (twin === undefined) continue
    const same = JSON.stringify(comparable(record)) === JSON.stringify(comparable(twin.record)) && JSON.stringify(events) === JSON.stringify(twin.events)
    if (!same && differences++ < 3) t.same({ record: comparable(twin.record), events: twin.events }, { record: comparable(record), events }, `${reference} is the same`)
  }
  t.equal(differences, 0, 'every request has the same record and the same history, event by event')

  for (const [label, prefix] of [['aggregates', 'agg:'], ['live gauges', 'live:']]) {
    const dump = async (p: string): Promise<Record<string, unknown>> => {
      const out: Record<string, unknown> = {}
      for (const key of (await redis.keys(`${p}${prefix}*`)).sort()) {
        const type = await redis.type(key)
        // Hashes (counters, sparse histograms), sets (combos), strings (dense histograms: raw bytes).
        out[key.slice(p.length)] = type === 'hash' ? await redis.hgetall(key) : type === 'string' ? (await redis.getBuffer(key))?.toString('hex') : (await redis.smembers(key)).sort()
      }
      return out
    }
    t.same(await dump('b:'), await dump('a:'), `the same ${label}`)
  }
  const firstOf = (h: typeof a): string => JSON.stringify(comparable([...h.values()].sort((x, y) => x.record.submittedAt - y.record.submittedAt)[0].record))
  t.not(firstOf(c), firstOf(a), 'another seed, another history')
})

t.test('a realistic history, written as the gateway writes it, up to now', async (t) => {
  const server = await startRedis(t, { appendfsync: 'everysec' })
  const redis = await connect(t, server.url)
  const progress: number[] = []
  const summary = await seedHistory({
    store: new RequestStore(redis),
    cipher,
    config,
    requests: 1000,
    days: 90,
    seed: 3,
    now,
    onProgress: ({ done }) => progress.push(done),
    progressEveryMs: 50
  })
  t.match(summary, { requested: 1000, created: 1000, skipped: 0, from: '2026-08-22', to: '2026-11-20' })
  t.equal(progress[progress.length - 1], 1000, 'progress is reported, ending with every request done')

  const keys = createKeys()
  const verification = await new AuditLog(redis, keys).verify()
  t.match(verification, { ok: true }, 'the audit chain verifies')
  const all = await history(redis, 'rog:')
  const records = [...all.values()].map((h) => h.record)
  t.equal(records.length, 1000)

  t.test('spread over the period, between many pairs, both types', async (t) => {
    t.ok(records.every((r) => r.submittedAt >= now - 90 * DAY && r.submittedAt <= now), 'submitted within the last 90 days')
    const weeks = new Set(records.map((r) => Math.floor((now - r.submittedAt) / (7 * DAY))))
    t.ok(weeks.size >= 12, `in every week (${weeks.size})`)
    const combos = new Set(records.map((r) => `${r.sender}>${r.recipient}:${r.type}`))
    t.equal(combos.size, seedCombos(config).length, `every direction of every agreement (${combos.size})`)
    t.ok(records.filter((r) => r.type === 'repatriation').length > 100, 'repatriation requests')
    t.ok(records.filter((r) => r.type === 'mla').length > 500, 'MLA requests')
    t.ok(records.every((r) => r.senderReference.startsWith('SEED3-')), 'references name the seed')
    t.ok(records.some((r) => r.priority === 'urgent'), 'some urgent')
  })

  t.test('every outcome, and some open and overdue', async (t) => {
    const count = (status: string): number => records.filter((r) => r.status === status).length
    for (const status of ['submitted', 'delivered', 'acknowledged', 'partially_executed', 'executed', 'refused', 'withdrawn', 'deemed_accepted']) t.ok(count(status) > 0, `${count(status)} ${status}`)
    t.ok(count('executed') > count('refused'), 'most are executed')
    const ackLate = records.filter((r) => r.ackDue !== undefined && r.acknowledgedAt !== undefined && r.acknowledgedAt > r.ackDue)
    const ackOnTime = records.filter((r) => r.ackDue !== undefined && r.acknowledgedAt !== undefined && r.acknowledgedAt <= r.ackDue)
    t.ok(ackLate.length > 20 && ackOnTime.length > 4 * ackLate.length, `acknowledged late: ${ackLate.length}, on time: ${ackOnTime.length}`)
    t.ok(records.some((r) => r.respDue !== r.respDueOriginal), 'some deadlines extended')
    t.ok(records.some((r) => r.deliveryFailures.length > 0), 'some deliveries failed')
    const open = records.filter((r) => !['executed', 'refused', 'withdrawn', 'deemed_accepted'].includes(r.status))
    const overdue = open.filter((r) => r.respOverdue || (r.ackOverdue && r.acknowledgedAt === undefined))
    t.ok(overdue.length > 10, `${overdue.length} open and overdue now`)
    t.equal(summary.overdueNow, overdue.length, 'the summary counts them')
    const durations = records.filter((r) => r.deliveredAt !== undefined).map((r) => (r.deliveredAt as number) - r.submittedAt).sort((x, y) => x - y)
    t.ok(durations[Math.floor(durations.length / 2)] < 120_000, 'most deliveries take seconds')
    t.ok(durations[durations.length - 1] > 86_400_000, 'a few take days')
  })

  t.test('nothing after now; every deadline that passed was fired as the worker would have', async (t) => {
    const events = [...all.values()].flatMap((h) => h.events)
    t.ok(events.every((line) => Date.parse(line.slice(0, 24)) <= now), 'no event after now')
    const directory = directoryOf(config)
    let missed = 0
    for (const r of records) {
      if (['executed', 'refused', 'withdrawn', 'deemed_accepted'].includes(r.status)) continue
      const agreement = directory.agreementById(r.agreementId)
      if (r.ackDue !== undefined && r.ackDue <= now && r.acknowledgedAt === undefined && !r.ackOverdue) missed++
      if (r.respDue <= now && !r.respOverdue) missed++
      if (agreement?.onSilence === 'deemed_accepted' && r.respDue <= now) missed++
    }
    t.equal(missed, 0, 'open requests past a deadline carry its overdue flag; none past a deemed-acceptance deadline is still open')
    const reminders = events.filter((line) => line.includes('_reminder ')).length
    t.ok(reminders > 100, `${reminders} reminders`)
  })

  t.test('refusals name grounds of their instrument\'s catalogue', async (t) => {
    let refusals = 0
    for (const { record, events } of all.values()) {
      for (const line of events.filter((l) => l.includes(' request.refused '))) {
        refusals++
        const data = JSON.parse(line.slice(line.indexOf('{'))) as { grounds: string[] }
        const catalogue = refusalCatalogue(record.type, record.legalBasis)
        if (data.grounds.length === 0 || !data.grounds.every((g) => catalogue.includes(g))) t.fail(`${record.senderReference}: grounds ${data.grounds.join(', ')}`)
      }
    }
    t.ok(refusals > 50, `${refusals} refusals, each with valid grounds`)
  })

  t.test('the stored content is a valid request of its type', async (t) => {
    const validate = createAjv().getSchema(schemaId('request'))
    if (validate === undefined) throw new Error('no request schema')
    for (const record of records.slice(0, 200)) {
      const content = JSON.parse(openContent(record)) as Record<string, unknown>
      if (!validate(content)) t.fail(`${record.senderReference} is not valid`, { errors: validate.errors })
      t.equal(content.recipient, record.recipient)
      t.equal(content.senderReference, record.senderReference)
    }
  })

  t.test('seeding the same requests again adds nothing; --start continues the history', async (t) => {
    const again = await seedHistory({ store: new RequestStore(redis), cipher, config, requests: 20, days: 90, seed: 3, now })
    t.match(again, { created: 0, skipped: 20 })
    const later = await seedHistory({ store: new RequestStore(redis), cipher, config, requests: 20, days: 90, seed: 3, now: now + 3 * DAY })
    t.match(later, { created: 0, skipped: 20 }, 'nor does the same seed run days later (other dates in the bodies, the references taken)')
    const more = await seedHistory({ store: new RequestStore(redis), cipher, config, requests: 20, days: 90, seed: 3, now, startIndex: 1000 })
    t.match(more, { created: 20, skipped: 0 })
    const references = new Set((await history(redis, 'rog:')).keys())
    t.equal(references.size, 1020)
    t.ok(references.has(seedReference(3, 1000)) && references.has(seedReference(3, 1019)), 'references go on from the start index')
  })
})

t.test('generated bodies are valid for every direction and type', async (t) => {
  const validate = createAjv().getSchema(schemaId('request'))
  if (validate === undefined) throw new Error('no request schema')
  let checked = 0
  for (const combo of seedCombos(config)) {
    for (let i = 0; i < 40; i++) {
      const body = seedBody(new Draw(1, checked), combo, `REF-${checked}`, now - i * DAY)
      if (!validate(body)) t.fail(`${combo.sender}>${combo.recipient}:${combo.type} #${i}`, { errors: validate.errors })
      checked++
    }
  }
  t.ok(checked > 500, `${checked} bodies valid against schemas/request.json`)
})

async function captured (fn: () => Promise<number>): Promise<{ code: number, stdout: string, stderr: string }> {
  const out = process.stdout.write
  const err = process.stderr.write
  let stdout = ''
  let stderr = ''
  process.stdout.write = ((chunk: string | Uint8Array) => { stdout += String(chunk); return true }) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => { stderr += String(chunk); return true }) as typeof process.stderr.write
  try {
    return { code: await fn(), stdout, stderr }
  } finally {
    process.stdout.write = out
    process.stderr.write = err
  }
}

t.test('rogatory seed (runSeed)', async (t) => {
  const server = await startRedis(t, { appendfsync: 'everysec' })
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'rogatory-seed-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const saved = { REDIS_URL: process.env.REDIS_URL, DATA_DIR: process.env.DATA_DIR, PAYLOAD_KEY: process.env.PAYLOAD_KEY }
  process.env.REDIS_URL = server.url
  process.env.DATA_DIR = dataDir
  process.env.PAYLOAD_KEY = payloadKey.toString('base64')
  t.teardown(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  })

  const run = await captured(() => runSeed(['--requests', '120', '--days', '20', '--seed', '4', '--concurrency', '30']))
  t.equal(run.code, 0, 'exit 0')
  const summary = JSON.parse(run.stdout)
  t.match(summary, { requested: 120, created: 120, skipped: 0, auditEntries: Number })
  t.match(run.stderr, /seeding 120 requests over the last 20 days \(seed 4, 30 in flight\)/)
  t.match(run.stderr, /120\/120 requests \(100%\), \d+ requests\/s/, 'progress with the rate')
  t.match(run.stderr, /seeded 120 requests \(0 already there\) and \d+ audit entries in [\d.]+ s: \d+ requests\/s/)

  const redis = await connect(t, server.url)
  t.equal(await redis.xlen('rog:audit'), summary.auditEntries)
  const ids = (await redis.keys('rog:req:*')).map((key) => key.slice('rog:req:'.length))
  t.equal(ids.length, 120)
  const [record] = await new RequestStore(redis).getMany(ids.slice(0, 1))
  t.match(JSON.parse(openContent(record)), { senderReference: record.senderReference }, 'sealed with the PAYLOAD_KEY')

  const twice = await captured(() => runSeed(['--requests', '120', '--days', '20', '--seed', '4']))
  t.match(JSON.parse(twice.stdout), { created: 0, skipped: 120 }, 'the same run again adds nothing')

  for (const [args, what] of [[[], 'no --requests'], [['--requests', '0'], 'zero requests'], [['--requests', 'many'], 'not a number'], [['--requests', '5', '--days', '-1'], 'negative days'], [['--requests', '5', '--bogus'], 'unknown option']] as Array<[string[], string]>) {
    const bad = await captured(() => runSeed(args))
    t.equal(bad.code, 2, `${what}: usage error`)
    t.match(bad.stderr, /usage: rogatory seed --requests N/)
  }
  const help = await captured(() => runSeed(['--help']))
  t.equal(help.code, 0)
  t.match(help.stdout, /usage: rogatory seed/)

  const cli = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(packageRoot(), 'src', 'cli', 'rogatory.ts'), 'seed', '--requests', '10', '--seed', '9'], {
    env: { ...process.env, REDIS_URL: server.url, DATA_DIR: dataDir },
    cwd: packageRoot()
  })
  t.match(JSON.parse(cli.stdout), { created: 10 }, 'the rogatory command dispatches to it')
})
