// Property-based fuzzing of every write route through app.inject on the real app
// (real Redis, real JWT): POST /v1/requests and POST /v1/requests/{id}/<step>.
// Bodies are valid examples mutated (wrong types, missing and extra fields, huge
// strings and arrays, deep nesting, unicode edge cases, prototype-pollution keys),
// malformed JSON, random headers and media types, bodies over the size limit, and
// tokens that are garbage, forged, expired, or valid but of the wrong authority
// or role. Two properties hold for every case:
//   1. no response is a 5xx;
//   2. a refused request (status >= 400) changes nothing: the audit stream's
//      length and chain tip, the number of keys, the version of every request
//      in play are what they were before, and not one write reached the
//      records' database (counted through keyspace notifications);
// and a request without a valid token, without the agency role, or by an
// authority that is not a party to the request, is never accepted.
// Accepted requests (201/200) may change state; the baseline then moves, and a
// created request must have added exactly its one audit event.
//
// Replay a failure with FUZZ_SEED=<seed printed below>; FUZZ_SCALE=0.1 runs a tenth.
import { createPublicKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto'
import fc from 'fast-check'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import app, { serverOptions } from '../../src/app.js'
import { mintDevToken } from '../../src/auth/dev-token.js'
import { allRefusalGrounds } from '../../src/domain/refusal-grounds.js'
import { createKeys } from '../../src/store/keys.js'
import { bearer, demoConfig, devSecret, example, payloadKey } from '../helpers/app.js'
import { redisClient } from '../helpers/fixtures.js'
import { startRedis } from '../helpers/redis.js'

const seed = process.env.FUZZ_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FUZZ_SEED)
/** Scales every property's numRuns (1 = the 10,000+ cases of npm test). */
const scale = Number(process.env.FUZZ_SCALE ?? 1)
const runs = (n: number): number => Math.max(1, Math.round(n * scale))
const keys = createKeys()

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Body = Record<string, Json>
type Inject = Awaited<ReturnType<ReturnType<typeof Fastify>['inject']>>
interface Case {
  method: 'POST'
  url: string
  headers: Record<string, string>
  payload: string | Buffer
  /** Why this case must be refused whatever its body (no valid token, no agency role, not a party). */
  mustRefuse?: string
}

const transitionSteps = ['acknowledgement', 'clarification-request', 'clarification', 'extension', 'responses', 'withdrawal'] as const
type Step = typeof transitionSteps[number]

t.test('write routes under fuzzing: never a 5xx, and a refused request changes nothing', async (t) => {
  const began = Date.now()
  const cpuBefore = process.cpuUsage()
  // Durability is the fault drills' business: everysec keeps 10,000 cases fast.
  const redis = await startRedis(t, { appendfsync: 'everysec' })
  const db = await redisClient(t, redis.url)
  const writes = await watchWrites(t, redis.url, db)
  // The real app as tests/helpers/app.ts builds it, but with the rate limits and
  // load shedding out of the way: thousands of requests a minute from one
  // authority (and from one address with bad tokens) are the point here, and a
  // 429 or a shed 503 would hide what the routes themselves do.
  const config = demoConfig()
  for (const authority of config.authorities) authority.rateLimit = { max: 1_000_000, timeWindowSeconds: 60 }
  const fastify = Fastify(serverOptions({ logLevel: process.env.TEST_LOG_LEVEL ?? 'silent', bodyLimitBytes: 1024 * 1024 }))
  await fastify.register(app, {
    gatewayConfig: config,
    redisUrl: redis.url,
    payloadKey,
    authDevSecret: devSecret,
    idempotencyTtlSeconds: 86400,
    rateLimit: { anonymous: { max: 1_000_000, timeWindowSeconds: 60 } },
    underPressure: { maxEventLoopDelayMs: 60_000 }
  })
  await fastify.ready()
  t.teardown(() => fastify.close())
  const gw = { app: fastify, config }
  t.comment(`fuzz seed ${seed} (replay: FUZZ_SEED=${seed} npm test -- tests/fuzz/write-routes.test.ts)`)

  // ---------------------------------------------------------------------------
  // Tokens

  const tokens = new Map<string, string>()
  const token = (authority: string, roles: string[] = ['agency']): string => {
    const key = `${authority} ${roles.join(',')}`
    let tok = tokens.get(key)
    if (tok === undefined) tokens.set(key, tok = mintDevToken(devSecret, { authority, roles, sub: `clerk@${authority}` }, 3600))
    return tok
  }
  const strangerKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
  // The registered public key of TR-MOJ, used as an HMAC secret: the algorithm-confusion forgery.
  const trMojPublicPem = createPublicKey({ key: gw.config.authorities.find((a) => a.id === 'TR-MOJ')!.keys[0].publicKeyJwk as JsonWebKey, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' }).toString()
  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const sign = (key: string, algorithm: 'HS256' | 'ES256', claims: Record<string, unknown>, kid?: string, expiresIn = 3_600_000): string =>
    createSigner({ key, algorithm, expiresIn, ...(kid === undefined ? {} : { kid }) })(claims)
  const claimsOf = (authority: string, roles: unknown = ['agency']): Record<string, unknown> => ({ authority, roles, sub: `fuzz@${authority}` })
  /** Tokens that must never authenticate anyone. */
  const forged: string[] = [
    '',
    'garbage',
    'a.b.c',
    `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claimsOf('TR-MOJ'), exp: 9_999_999_999 })}.`,
    sign('wrong-secret-0123456789abcdef', 'HS256', claimsOf('TR-MOJ')),
    sign(devSecret, 'HS256', claimsOf('TR-MOJ'), undefined, -60_000),
    sign(devSecret, 'HS256', claimsOf('TR-MOJ'), 'tr-moj-2026-01'),
    sign(strangerKey, 'ES256', claimsOf('TR-MOJ'), 'tr-moj-2026-01'),
    sign(strangerKey, 'ES256', claimsOf('TR-MOJ'), 'no-such-kid'),
    sign(trMojPublicPem, 'HS256', claimsOf('TR-MOJ'), 'tr-moj-2026-01'),
    sign(devSecret, 'HS256', claimsOf('XX-NOBODY')),
    sign(devSecret, 'HS256', claimsOf('TR-MOJ', [])),
    sign(devSecret, 'HS256', claimsOf('TR-MOJ', ['superuser'])),
    sign(devSecret, 'HS256', claimsOf('TR-MOJ', 'agency')),
    sign(devSecret, 'HS256', { authority: 'TR-MOJ', roles: ['agency'] }),
    sign(devSecret, 'HS256', { authority: 'TR-MOJ', roles: ['agency'], sub: '' }),
    sign(devSecret, 'HS256', { authority: ['TR-MOJ'], roles: ['agency'], sub: 'x' }),
    sign(devSecret, 'HS256', { authority: '__proto__', roles: ['agency'], sub: 'x' }),
    token('TR-MOJ').slice(0, -3),
    `${token('TR-MOJ')}x`
  ]
  /** Authorization headers that authenticate nobody: forged tokens, none, other schemes, noise. */
  const badAuth: fc.Arbitrary<Record<string, string>> = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...forged).map((tok) => bearer(tok)) },
    { weight: 1, arbitrary: fc.constant({}) },
    { weight: 1, arbitrary: fc.constantFrom('Basic dHI6bW9q', 'Bearer', 'bearer  ', `Token ${token('TR-MOJ')}`, `Bearer ${token('TR-MOJ')} extra`).map((value) => ({ authorization: value })) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 300 }).filter((s) => /^[\x20-\x7e]*$/.test(s)).map((s) => ({ authorization: `Bearer ${s}` })) }
  )
  const otherPrincipals = ['DE-BFJ', 'NL-AIRS', 'FR-BEPI', 'TR-PMM', 'EU-OVERSIGHT']
  const roleSets: string[][] = [['agency'], ['liaison'], ['auditor'], ['admin'], ['liaison', 'auditor'], ['agency', 'liaison']]
  const nonAgencyRoles: string[][] = [['liaison'], ['auditor'], ['admin'], ['liaison', 'auditor']]

  // ---------------------------------------------------------------------------
  // Values and mutations

  const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code))
  const specialChar = fc.constantFrom('\u0000', '\u0001', '\u001f', '\u007f', '\u0085', '\u00a0', '\u200b', '\u200d', '\u202e', '\u2028', '\u2029', '\ufeff', '\ufffd', '\ufffe', '\uffff', '😀', '👩‍⚖️', 'é', 'ı', 'İ', 'ß', '\\', '"', '/', '%', '$', '{', '}', '../', '<script>', '\r\n')
  const edgeString: fc.Arbitrary<string> = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.array(fc.oneof(loneSurrogate, specialChar, fc.string({ maxLength: 3 })), { maxLength: 20 }).map((parts) => parts.join('')),
    fc.constantFrom('', ' ', '  x  ', 'null', 'undefined', 'true', '0', '-1', 'NaN', '2026-02-30', '2026-13-01', '9999-12-31', '0000-01-01', '1970-01-01T00:00:00Z', 'P1D',
      '__proto__', 'constructor', 'prototype', 'TR-MOJ', 'DE-BFJ', 'XX-NOBODY', 'mla', 'repatriation', 'eio-directive-2014-41', 'H9', 'executed', 'refused')
  )
  const hugeString = fc.tuple(fc.integer({ min: 2000, max: 40_000 }), fc.constantFrom('x', 'é', '😀', '\u0000', '\ud800', 'ab ')).map(([n, unit]) => unit.repeat(Math.ceil(n / unit.length)))
  const scalar: fc.Arbitrary<Json> = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), edgeString)
  const anyJson: fc.Arbitrary<Json> = fc.oneof(scalar, fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>, fc.array(scalar, { maxLength: 5 }), fc.dictionary(edgeString, scalar, { maxKeys: 5 }) as fc.Arbitrary<Json>)
  const pollutionKey = fc.constantFrom('__proto__', 'constructor', 'prototype', '__defineGetter__', 'hasOwnProperty', 'toString', 'valueOf')
  /** Raw JSON text spliced in where stringify cannot go: deep nesting, numbers past double range, pollution payloads. */
  const rawJson = fc.oneof(
    fc.integer({ min: 10, max: 20_000 }).map((d) => '['.repeat(d) + ']'.repeat(d)),
    fc.integer({ min: 10, max: 10_000 }).map((d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d)),
    fc.constantFrom('1e400', '-1e400', '-0', '123456789012345678901234567890', '0.1e-400', '1E+2', '9007199254740993'),
    fc.constantFrom('{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}', '{"__proto__":null}', '{"\\u005f_proto__":{"polluted":1}}', '{"a":1,"a":2}')
  )

  type Path = Array<string | number>
  function pathsOf (value: Json, path: Path = [], out: Path[] = []): Path[] {
    out.push(path)
    if (Array.isArray(value)) value.forEach((item, i) => pathsOf(item, [...path, i], out))
    else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) pathsOf(v, [...path, k], out)
    return out
  }
  const setOwn = (target: Record<string, Json>, key: string, value: Json): void => {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  }

  type Mutation =
    | { kind: 'delete', at: number }
    | { kind: 'hugeArray', at: number, value: Json }
    | { kind: 'replace', at: number, value: Json }
    | { kind: 'extra', at: number, key: string, value: Json }
    | { kind: 'raw', at: number, text: string }
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: anyJson }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: edgeString as fc.Arbitrary<Json> }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: hugeString as fc.Arbitrary<Json> }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('hugeArray' as const), at: fc.nat(), value: scalar }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('extra' as const), at: fc.nat(), key: fc.oneof(pollutionKey, edgeString), value: anyJson }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('raw' as const), at: fc.nat(), text: rawJson }) }
  )

  /** Applies the mutations to a copy of `base`; returns the JSON text. */
  function mutate (base: Body, mutations: Mutation[]): string {
    const body = JSON.parse(JSON.stringify(base)) as Json
    const raw = new Map<string, string>()
    let root: Json = body
    for (const m of mutations) {
      const paths = pathsOf(root)
      const path = paths[m.at % paths.length]
      const parent = path.length === 0 ? undefined : path.slice(0, -1).reduce<Json>((node, k) => (node as Record<string, Json>)[k as string], root)
      const last = path[path.length - 1]
      const put = (value: Json): void => {
        if (parent === undefined) root = value
        else if (Array.isArray(parent)) parent[last as number] = value
        else setOwn(parent as Record<string, Json>, String(last), value)
      }
      switch (m.kind) {
        case 'delete':
          if (parent === undefined) root = {}
          else if (Array.isArray(parent)) parent.splice(last as number, 1)
          else delete (parent as Record<string, Json>)[String(last)]
          break
        case 'replace':
          put(m.value)
          break
        case 'hugeArray':
          put(Array.from({ length: 3000 }, () => m.value))
          break
        case 'extra': {
          const target = path.reduce<Json>((node, k) => (node as Record<string, Json>)[k as string], root)
          if (target !== null && typeof target === 'object' && !Array.isArray(target)) setOwn(target, m.key, m.value)
          else if (Array.isArray(target)) target.push(m.value)
          break
        }
        case 'raw': {
          const marker = `@@raw${raw.size}@@`
          raw.set(`"${marker}"`, m.text)
          put(marker)
          break
        }
      }
    }
    let text = JSON.stringify(root) ?? 'null'
    for (const [marker, replacement] of raw) text = text.replace(marker, replacement)
    return text
  }

  /** Text-level damage: what a broken client or a proxy sends. */
  const malformed: fc.Arbitrary<(text: string) => string | Buffer> = fc.oneof(
    fc.nat().map((n) => (text: string) => text.slice(0, n % (text.length + 1))),
    fc.tuple(fc.nat(), fc.string({ unit: 'binary', minLength: 1, maxLength: 5 })).map(([n, s]) => (text: string) => text.slice(0, n % (text.length + 1)) + s + text.slice(n % (text.length + 1))),
    fc.nat().map((n) => (text: string) => text.slice(0, n % (text.length + 1)) + text.slice((n % (text.length + 1)) + 1)),
    fc.constantFrom(
      (text: string) => `${text},`,
      (text: string) => `${text}}`,
      (text: string) => `${text} garbage`,
      (text: string) => `\ufeff${text}`,
      (text: string) => text.replace(/"/g, '\''),
      (text: string) => text.replace(/}$/, ',}'),
      (text: string) => `/* comment */${text}`,
      (text: string) => text.replace(/:\s*(\d+)/, ': NaN'),
      (text: string) => text.replace(/:\s*(\d+)/, ': Infinity'),
      (text: string) => `[${text}]`,
      (text: string) => `${text}${text}`,
      (text: string) => `{"type":"mla",${text.slice(1)}`,
      (text: string) => `${text.slice(0, -1)},"type":"repatriation"}`,
      (text: string) => `${text.slice(0, -1)},"__proto__":{"polluted":true}}`,
      (text: string) => `${text.slice(0, -1)},"constructor":{"prototype":{"polluted":true}}}`,
      () => '',
      () => ' \n\t ',
      () => 'null',
      () => '"just a string"',
      () => '12345678901234567890e99999',
      () => Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc0, 0xaf, 0x22, 0x7d]),
      () => Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d]),
      () => Buffer.from([0x00, 0x00, 0x00, 0x7b])
    ),
    fc.string({ unit: 'binary', maxLength: 200 }).map((s) => () => s)
  )

  const contentType = fc.oneof(
    { weight: 10, arbitrary: fc.constant('application/json') },
    { weight: 4, arbitrary: fc.constantFrom('application/json; charset=utf-8', 'application/json;charset=UTF-8', 'Application/JSON', 'application/json; charset=utf-16', 'application/json; charset=latin1',
      'application/json;', 'application/json; foo=bar; baz', ' application/json', 'application/problem+json', 'application/vnd.api+json', 'application/jsonx', 'application/json, text/plain',
      'text/plain', 'text/json', 'text/html', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=xyz', 'application/octet-stream', 'application/xml', '*/*', 'application/*', '') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 60 }).filter((s) => /^[\x20-\x7e]*$/.test(s)) },
    { weight: 1, arbitrary: fc.constant(undefined) }
  )
  const headerValue = fc.oneof(fc.string({ unit: 'binary-ascii', maxLength: 80 }).filter((s) => /^[\x20-\x7e]*$/.test(s)), fc.constantFrom('', 'gzip', 'deflate', 'br', 'identity', '*/*', '100-continue', 'close', '0', '-1', 'é'))
  const extraHeaders = fc.dictionary(
    fc.constantFrom('accept', 'accept-encoding', 'content-encoding', 'accept-language', 'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'forwarded', 'origin', 'referer', 'user-agent',
      'cookie', 'if-match', 'if-none-match', 'prefer', 'x-http-method-override', 'expect', 'connection', 'te', 'upgrade', 'x-custom', 'idempotency-key'),
    headerValue,
    { maxKeys: 4 }
  )
  const idempotencyKeys = ['fz-key-a', 'fz-key-b', 'fz-key-c', 'fz-key-d']
  const idempotency = fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: fc.constant('fresh') },
    { weight: 2, arbitrary: fc.constantFrom(...idempotencyKeys) },
    { weight: 1, arbitrary: fc.oneof(fc.constantFrom('', ' ', 'a b', 'x'.repeat(201), 'é', 'key\twith\ttab'), fc.string({ unit: 'binary-ascii', maxLength: 250 }).filter((s) => /^[\x20-\x7e]*$/.test(s))) }
  )

  // ---------------------------------------------------------------------------
  // State: a pool of requests in every status, and snapshots

  interface PoolEntry { id: string, sender: string, recipient: string, status: string }
  let pool: PoolEntry[] = []
  let counter = 0
  const fresh = (label: string): string => `FZ-${label}-${seed}-${++counter}`
  const mlaExample = JSON.stringify(example('mla-request'))
  const repatriationExample = JSON.stringify(example('repatriation-request'))
  const bases = {
    mla: { sender: 'TR-MOJ', body: (): Body => JSON.parse(mlaExample) as Body },
    repatriation: { sender: 'TR-PMM', body: (): Body => JSON.parse(repatriationExample) as Body },
    eio: { sender: 'DE-BFJ', body: (): Body => ({ ...JSON.parse(mlaExample), recipient: 'NL-AIRS', legalBasis: 'eio-directive-2014-41' }) as Body }
  }

  async function must (res: Inject | Promise<Inject>, status: number, what: string): Promise<Record<string, any>> {
    const r = await res
    if (r.statusCode !== status) throw new Error(`pool setup: ${what} answered ${r.statusCode}: ${r.body.slice(0, 300)}`)
    return r.json()
  }
  const post = (url: string, tok: string, payload: unknown): Promise<Inject> => gw.app.inject({ method: 'POST', url, headers: bearer(tok), payload: payload as Body })

  /** Requests between several pairs, brought to every status the lifecycle has. */
  async function makePool (): Promise<PoolEntry[]> {
    const made: PoolEntry[] = []
    for (const [kind, base] of Object.entries(bases)) {
      const steps: Array<Array<[string, 'sender' | 'recipient', Body]>> = [
        [],
        [['acknowledgement', 'recipient', {}]],
        [['clarification-request', 'recipient', { questions: 'Which account?' }]],
        [['acknowledgement', 'recipient', {}], ['responses', 'recipient', { outcome: 'partially_executed' }]],
        [['responses', 'recipient', { outcome: 'executed' }]],
        [['withdrawal', 'sender', {}]]
      ]
      for (const path of steps) {
        const body: Body = { ...base.body(), senderReference: fresh(`pool-${kind}`) }
        const created = await must(post('/v1/requests', token(base.sender), body), 201, `submit ${kind}`)
        const entry = { id: created.id as string, sender: base.sender, recipient: String(body.recipient), status: 'submitted' }
        for (const [step, side, stepBody] of path) {
          const view = await must(post(`/v1/requests/${entry.id}/${step}`, token(entry[side]), stepBody), 200, `${step} on ${kind}`)
          entry.status = view.status
        }
        made.push(entry)
      }
    }
    return made
  }

  async function snapshot (): Promise<string> {
    const p = db.pipeline()
    p.xlen(keys.auditStream)
    p.hget(keys.auditTip, 'hash')
    p.dbsize()
    for (const entry of pool) p.hget(keys.request(entry.id), 'version')
    const [results, written] = await Promise.all([p.exec(), writes.count()])
    const [xlen, tip, dbsize, ...versions] = (results ?? []).map(([err, value]) => { if (err) throw err; return value })
    return JSON.stringify({ xlen, tip, dbsize, writes: written, versions })
  }

  const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort().join(',')
  const stats = { cases: 0, byStatus: new Map<number, number>(), refused: 0, accepted: 0, maxMs: 0, nonProblem: new Map<string, number>() }
  let baseline = ''

  /** Sends one case and checks both properties; throws with the details on a violation. */
  async function check (label: string, opts: Case, onAccepted?: (res: Inject, before: Record<string, unknown>, after: Record<string, unknown>) => string | undefined): Promise<void> {
    stats.cases++
    const started = performance.now()
    const res = await gw.app.inject(opts)
    stats.maxMs = Math.max(stats.maxMs, performance.now() - started)
    stats.byStatus.set(res.statusCode, (stats.byStatus.get(res.statusCode) ?? 0) + 1)
    const describe = (): string => `${label}: ${String(opts.method)} ${opts.url} headers=${JSON.stringify(opts.headers).slice(0, 400)} body=${String(opts.payload ?? '').slice(0, 400)} → ${res.statusCode} ${res.body.slice(0, 400)}`
    if (res.statusCode >= 500) throw new Error(`5xx answered: ${describe()}`)
    if (opts.mustRefuse !== undefined && res.statusCode < 400) throw new Error(`accepted although ${opts.mustRefuse}: ${describe()}`)
    const after = await snapshot()
    if (res.statusCode >= 400) {
      stats.refused++
      if (!String(res.headers['content-type']).startsWith('application/problem+json')) {
        const key = `${res.statusCode} ${res.body.slice(0, 80)}`
        stats.nonProblem.set(key, (stats.nonProblem.get(key) ?? 0) + 1)
      }
      if (after !== baseline) throw new Error(`a refused request changed the store: before ${baseline} after ${after} (last writes: ${writes.recent().join('; ')}): ${describe()}`)
      return
    }
    stats.accepted++
    const problem = onAccepted?.(res, JSON.parse(baseline), JSON.parse(after))
    baseline = after
    if (problem !== undefined) throw new Error(`${problem}: ${describe()}`)
  }

  const submitAccepted = (res: Inject, before: Record<string, any>, after: Record<string, any>): string | undefined => {
    if (res.statusCode !== 201) return `POST /v1/requests answered ${res.statusCode} (not 201)`
    const replayed = res.headers['idempotent-replayed'] === 'true'
    const added = Number(after.xlen) - Number(before.xlen)
    if (replayed ? added !== 0 || after.tip !== before.tip : added !== 1) return `a ${replayed ? 'replayed' : 'created'} submission added ${added} audit events`
    return undefined
  }

  async function runProperty<T> (name: string, numRuns: number, arb: fc.Arbitrary<T>, run: (value: T) => Promise<void>): Promise<void> {
    const before = stats.cases
    const started = Date.now()
    pool = await makePool()
    baseline = await snapshot()
    let sinceRefresh = 0
    await fc.assert(fc.asyncProperty(arb, async (value) => {
      // A fresh pool now and then: accepted steps close requests, and closed ones only answer 409.
      if (++sinceRefresh > 1000) {
        pool = await makePool()
        baseline = await snapshot()
        sinceRefresh = 0
      }
      await run(value)
    }), { seed, numRuns })
    t.pass(`${name}: ${stats.cases - before} cases in ${Date.now() - started} ms`)
  }

  // ---------------------------------------------------------------------------
  // Properties

  const submitCase = fc.record({
    kind: fc.constantFrom('mla', 'repatriation', 'eio') as fc.Arbitrary<keyof typeof bases>,
    reference: fc.oneof({ weight: 9, arbitrary: fc.constant('fresh') }, { weight: 1, arbitrary: fc.constantFrom('FZ-shared-1', 'FZ-shared-2', 'FZ-shared-3') }),
    // Mostly broken bodies; an intact one now and then is accepted (and must add exactly its audit event).
    mutations: fc.oneof({ weight: 1, arbitrary: fc.constant<Mutation[]>([]) }, { weight: 6, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) }),
    principal: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...otherPrincipals, 'TR-MOJ', 'TR-PMM'), fc.constantFrom(...roleSets)) }),
    auth: fc.oneof({ weight: 9, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: badAuth }),
    idempotency,
    contentType: fc.oneof({ weight: 6, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: contentType }),
    headers: fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: extraHeaders })
  })

  type SubmitCase = typeof submitCase extends fc.Arbitrary<infer T> ? T : never
  function submitRequest (c: SubmitCase, payload: string | Buffer, ct: string | undefined): Case {
    const base = bases[c.kind as keyof typeof bases]
    const auth = c.auth ?? bearer(c.principal === undefined ? token(base.sender) : token(c.principal[0], c.principal[1]))
    const key = c.idempotency === 'fresh' ? fresh('key') : c.idempotency
    return {
      method: 'POST',
      url: '/v1/requests',
      headers: { ...c.headers, ...auth, ...(ct === undefined ? {} : { 'content-type': ct }), ...(key === undefined ? {} : { 'idempotency-key': key }) },
      payload,
      mustRefuse: c.auth !== undefined ? 'it has no valid token' : c.principal !== undefined && !c.principal[1].includes('agency') ? 'the token has no agency role' : undefined
    }
  }

  await runProperty('POST /v1/requests, mutated valid bodies', runs(3200), submitCase, async (c) => {
    const base = { ...bases[c.kind].body(), senderReference: c.reference === 'fresh' ? fresh(c.kind) : c.reference }
    await check('submit', submitRequest(c, mutate(base, c.mutations), c.contentType), submitAccepted)
  })

  await runProperty('POST /v1/requests, malformed JSON, media types and headers', runs(1400), fc.record({ c: submitCase, damage: malformed, contentType }), async ({ c, damage, contentType: ct }) => {
    const base = { ...bases[c.kind].body(), senderReference: fresh(c.kind) }
    await check('submit (malformed)', submitRequest(c, damage(mutate(base, c.mutations)), ct), submitAccepted)
  })

  await runProperty('POST /v1/requests, tokens: forged, expired, wrong authority or role', runs(1400), fc.record({
    kind: fc.constantFrom('mla', 'repatriation', 'eio') as fc.Arbitrary<keyof typeof bases>,
    auth: fc.oneof(
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...otherPrincipals, 'TR-MOJ', 'TR-PMM'), fc.constantFrom(...roleSets)).map(([authority, roles]) => ({ headers: bearer(token(authority, roles)), mustRefuse: roles.includes('agency') ? undefined : 'the token has no agency role' })) },
      { weight: 2, arbitrary: badAuth.map((headers) => ({ headers, mustRefuse: 'it has no valid token' })) }
    )
  }), async ({ kind, auth }) => {
    const body = { ...bases[kind].body(), senderReference: fresh(kind) }
    await check('submit (auth)', { method: 'POST', url: '/v1/requests', headers: { ...auth.headers, 'content-type': 'application/json' }, payload: JSON.stringify(body), mustRefuse: auth.mustRefuse }, submitAccepted)
  })

  // Lifecycle steps: valid bodies per step, then mutated.
  const dateOnly = fc.date({ min: new Date('1990-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10))
  const dateTime = fc.oneof(
    fc.integer({ min: -10, max: 200 }).map((days) => new Date(Date.now() + days * 86_400_000).toISOString()),
    fc.date({ min: new Date('1900-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => d.toISOString())
  )
  const text = (max: number): fc.Arbitrary<string> => fc.oneof(fc.string({ minLength: 1, maxLength: 60 }), edgeString.filter((s) => s.length > 0 && s.length <= max))
  const stepBodies: Record<Step, fc.Arbitrary<Body>> = {
    acknowledgement: fc.record({ recipientReference: text(100), estimatedAnswerDate: dateOnly }, { requiredKeys: [] }),
    'clarification-request': fc.record({ questions: text(20000) }),
    clarification: fc.record({ answers: text(20000) }),
    extension: fc.record({ responseDeadline: dateTime, reason: text(5000) }),
    responses: fc.record({
      outcome: fc.constantFrom('partially_executed', 'executed', 'refused'),
      grounds: fc.subarray([...allRefusalGrounds], { minLength: 1, maxLength: 3 }),
      text: text(20000)
    }, { requiredKeys: ['outcome'] }),
    withdrawal: fc.record({ reason: text(5000) }, { requiredKeys: [] })
  }
  type Target = { pool: number, upper: boolean } | { id: string }
  const stepCase = fc.constantFrom(...transitionSteps).chain((step) => fc.record({
    step: fc.constant(step),
    body: stepBodies[step],
    mutations: fc.oneof({ weight: 1, arbitrary: fc.constant<Mutation[]>([]) }, { weight: 2, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) }),
    target: fc.oneof(
      { weight: 12, arbitrary: fc.nat().map((n): Target => ({ pool: n, upper: false })) },
      { weight: 1, arbitrary: fc.nat().map((n): Target => ({ pool: n, upper: true })) },
      { weight: 1, arbitrary: fc.uuid().map((id): Target => ({ id })) },
      { weight: 1, arbitrary: edgeString.map((id): Target => ({ id: encodeURIComponent(id.replace(/[\ud800-\udfff]/g, '\ufffd')) })) },
      { weight: 1, arbitrary: fc.constantFrom('x'.repeat(201), '..', '.', '%2e%2e', '%2F', '%00', '%E0%A4%A', '%', '%%', '00000000-0000-0000-0000-000000000000', 'FFFFFFFF-FFFF-7FFF-BFFF-FFFFFFFFFFFF').map((id): Target => ({ id })) }
    ),
    who: fc.oneof(
      { weight: 4, arbitrary: fc.constant('recipient') },
      { weight: 3, arbitrary: fc.constant('sender') },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...otherPrincipals), fc.constantFrom(...roleSets)) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom('sender', 'recipient'), fc.constantFrom(...nonAgencyRoles)) }
    ),
    auth: fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: badAuth }),
    contentType: fc.oneof({ weight: 8, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: contentType }),
    headers: fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: extraHeaders })
  }))

  type StepCase = typeof stepCase extends fc.Arbitrary<infer T> ? T : never
  function stepRequest (c: StepCase, payload: string | Buffer, ct: string | undefined): Case {
    const target = c.target
    const entry = 'pool' in target ? pool[target.pool % pool.length] : undefined
    const id = 'id' in target ? target.id : target.upper ? entry!.id.toUpperCase() : entry!.id
    const party = (side: string): string => (entry === undefined ? 'TR-MOJ' : side === 'sender' ? entry.sender : entry.recipient)
    const principal: [string, string[]] = typeof c.who === 'string' ? [party(c.who), ['agency']] : typeof c.who[0] === 'string' && (c.who[0] === 'sender' || c.who[0] === 'recipient') ? [party(c.who[0]), c.who[1]] : c.who
    const auth = c.auth ?? bearer(token(principal[0], principal[1]))
    const mustRefuse = c.auth !== undefined
      ? 'it has no valid token'
      : !principal[1].includes('agency')
          ? 'the token has no agency role'
          : entry !== undefined && principal[0] !== entry.sender && principal[0] !== entry.recipient ? `${principal[0]} is not a party to the request` : undefined
    return { method: 'POST', url: `/v1/requests/${id}/${c.step}`, headers: { ...c.headers, ...auth, ...(ct === undefined ? {} : { 'content-type': ct }) }, payload, mustRefuse }
  }
  const stepAccepted = (res: Inject): string | undefined => (res.statusCode === 200 ? undefined : `a lifecycle step answered ${res.statusCode} (not 200)`)

  await runProperty('POST /v1/requests/{id}/{step}, mutated bodies, ids, principals', runs(2800), stepCase, async (c) => {
    await check(`step ${c.step}`, stepRequest(c, mutate(c.body, c.mutations), c.contentType), stepAccepted)
  })

  await runProperty('POST /v1/requests/{id}/{step}, malformed JSON and media types', runs(1100), fc.record({ c: stepCase, damage: malformed, contentType }), async ({ c, damage, contentType: ct }) => {
    await check(`step ${c.step} (malformed)`, stepRequest(c, damage(mutate(c.body, c.mutations)), ct), stepAccepted)
  })

  await runProperty('every write route, bodies over the 1 MiB limit', runs(120), fc.record({
    route: fc.constantFrom('', ...transitionSteps),
    extra: fc.integer({ min: 1, max: 256 * 1024 }),
    pool: fc.nat(),
    contentType: fc.constantFrom('application/json', 'text/plain', 'application/octet-stream')
  }), async ({ route, extra, pool: n, contentType: ct }) => {
    const url = route === '' ? '/v1/requests' : `/v1/requests/${pool[n % pool.length].id}/${route}`
    const entry = pool[n % pool.length]
    const tok = route === '' ? token('TR-MOJ') : token(route === 'clarification' || route === 'withdrawal' ? entry.sender : entry.recipient)
    const filler = 'x'.repeat(1024 * 1024 + extra)
    await check(`oversize ${route}`, { method: 'POST', url, headers: { ...bearer(tok), 'content-type': ct }, payload: JSON.stringify({ ...example('mla-request'), facts: filler }) })
  })

  // ---------------------------------------------------------------------------

  t.equal(Object.getOwnPropertyNames(Object.prototype).sort().join(','), prototypeBefore, 'Object.prototype was not polluted')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no object inherits a polluted property')
  t.ok(stats.cases >= runs(10_000), `${stats.cases} cases in all (>= ${runs(10_000)})`)
  const statuses = [...stats.byStatus].sort(([a], [b]) => a - b).map(([status, n]) => `${status}: ${n}`).join(', ')
  const cpu = process.cpuUsage(cpuBefore)
  t.comment(`fuzz: seed ${seed}, ${stats.cases} cases in ${((Date.now() - began) / 1000).toFixed(1)} s, this process's CPU ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s (slowest case ${stats.maxMs.toFixed(0)} ms); ` +
    `refused ${stats.refused}, accepted ${stats.accepted}; statuses ${statuses}; 5xx 0; state changes on refusal 0`)
  const nonProblem = [...stats.nonProblem].map(([k, n]) => `${n}× ${k}`)
  t.same(nonProblem, [], 'every refusal is application/problem+json')
})

/**
 * Counts every write to the records' database (db 0) through keyspace
 * notifications: a refused request must not cause a single one, whatever it
 * would change. count() waits until the notifications of every write made so
 * far have arrived (a marker published after them arrives after them).
 */
async function watchWrites (t: { teardown: (fn: () => unknown) => void }, url: string, db: Redis): Promise<{ count: () => Promise<number>, recent: () => string[] }> {
  await db.config('SET', 'notify-keyspace-events', 'EA')
  const sub = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  sub.on('error', () => {})
  t.teardown(() => { sub.disconnect() })
  await sub.connect()
  let total = 0
  const last: string[] = []
  const waiting = new Map<string, () => void>()
  sub.on('pmessage', (_pattern: string, channel: string, key: string) => {
    total++
    last.push(`${channel.slice(channel.lastIndexOf(':') + 1)} ${key}`)
    if (last.length > 20) last.shift()
  })
  sub.on('message', (_channel: string, marker: string) => { waiting.get(marker)?.() })
  await sub.psubscribe('__keyevent@0__:*')
  await sub.subscribe('fuzz:marker')
  let n = 0
  return {
    count: async () => {
      const marker = String(++n)
      const arrived = new Promise<void>((resolve) => waiting.set(marker, resolve))
      await db.publish('fuzz:marker', marker)
      await arrived
      waiting.delete(marker)
      return total
    },
    recent: () => [...last]
  }
}
