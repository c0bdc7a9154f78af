// Bearer-token authentication (DESIGN.md §4): each authority's tokens are
// verified with that authority's registered public keys, chosen by kid, each
// key with its one registered algorithm; HS256 development tokens only when a
// dev secret is configured. Every refusal is a 401 problem+json, never a 5xx.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import app, { serverOptions } from '../../src/app.js'
import type { GatewayConfig } from '../../src/domain/types.js'
import { buildApp, demoConfig, devSecret, example, payloadKey } from '../helpers/app.js'
import { expectProblem, redisClient, snapshot, submit, type InjectResponse } from '../helpers/fixtures.js'
import { startRedis } from '../helpers/redis.js'

const b64url = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
const nowSeconds = (): number => Math.floor(Date.now() / 1000)

interface EcKeyPair { privatePem: string, publicPem: string, publicJwk: Record<string, unknown>, publicKey: KeyObject }

function ecKeyPair (): EcKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    publicJwk: publicKey.export({ format: 'jwk' }) as Record<string, unknown>,
    publicKey
  }
}

/** The demo config with TR-MOJ's registered keys replaced by one ES256 key, kid 'k1'. */
function configWithKey (publicJwk: Record<string, unknown>): GatewayConfig {
  const config = demoConfig()
  const trMoj = config.authorities.find((authority) => authority.id === 'TR-MOJ')
  if (trMoj === undefined) throw new Error('demo config has no TR-MOJ')
  trMoj.keys = [{ kid: 'k1', alg: 'ES256', publicKeyJwk: publicJwk }]
  return config
}

/** A compact JWS signed with HMAC-SHA256 over whatever bytes are given as the secret. */
function hs256 (header: Record<string, unknown>, payload: Record<string, unknown>, secret: string | Buffer): string {
  const input = `${b64url({ typ: 'JWT', ...header, alg: 'HS256' })}.${b64url(payload)}`
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
}

const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  authority: 'TR-MOJ',
  roles: ['agency', 'liaison'],
  sub: 'clerk@tr-moj',
  iat: nowSeconds(),
  exp: nowSeconds() + 600,
  ...extra
})

const without = (field: string): Record<string, unknown> => {
  const out = claims()
  delete out[field]
  return out
}

/** GET /v1/requests?box=outbox with the given Authorization header (undefined: none). */
async function outbox (server: FastifyInstance, authorization?: string): Promise<InjectResponse> {
  return await server.inject({ method: 'GET', url: '/v1/requests?box=outbox', headers: authorization === undefined ? {} : { authorization } })
}

function expect401 (t: Test, res: InjectResponse, what: string): void {
  t.ok(res.statusCode < 500, `${what}: never a 5xx`)
  expectProblem(t, res, 401, what)
}

t.test('ES256 tokens verified with the authority\'s registered key', async (t) => {
  const registered = ecKeyPair()
  const other = ecKeyPair()
  const { app: server, redis } = await buildApp(t, { config: configWithKey(registered.publicJwk) })
  const db = await redisClient(t, redis.url)
  const signWith = (key: string, kid: string): ((payload: Record<string, unknown>) => string) => {
    const signer = createSigner({ key, algorithm: 'ES256', kid })
    return (payload) => signer(payload)
  }
  const es256 = signWith(registered.privatePem, 'k1')

  t.test('a valid ES256 token for TR-MOJ is accepted', async (t) => {
    const res = await outbox(server, `Bearer ${es256(claims())}`)
    t.equal(res.statusCode, 200, 'GET /v1/requests answers 200', { body: res.body })
    const posted = await submit(server, es256(claims({ roles: ['agency'] })), example('mla-request', 'AUTH-es256'))
    t.equal(posted.statusCode, 201, 'and it may submit')
    t.equal(posted.json().sender, 'TR-MOJ', 'as TR-MOJ')
  })

  t.test('the same token is accepted again (verification cache does not change the answer)', async (t) => {
    const token = es256(claims())
    t.equal((await outbox(server, `Bearer ${token}`)).statusCode, 200)
    t.equal((await outbox(server, `Bearer ${token}`)).statusCode, 200)
  })

  t.test('a cached verification ends with the token: refused once it has expired', async (t) => {
    const exp = nowSeconds() + 2
    const token = es256(claims({ exp }))
    t.equal((await outbox(server, `Bearer ${token}`)).statusCode, 200, 'valid')
    t.equal((await outbox(server, `Bearer ${token}`)).statusCode, 200, 'valid again (from the cache)')
    await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 50))
    const res = await outbox(server, `Bearer ${token}`)
    expect401(t, res, 'expired while cached')
    t.equal(res.json().detail, 'The token has expired.')
  })

  t.test('a cached token does not vouch for another signature over the same claims', async (t) => {
    const token = es256(claims())
    t.equal((await outbox(server, `Bearer ${token}`)).statusCode, 200)
    const [header, payload] = token.split('.')
    expect401(t, await outbox(server, `Bearer ${header}.${payload}.${signWith(other.privatePem, 'k1')(claims()).split('.')[2]}`), 'same claims, another key\'s signature')
  })

  t.test('a key taken out of the config: a gateway started without it refuses tokens the old one had cached', async (t) => {
    const token = es256(claims())
    t.equal((await outbox(server, `Bearer ${token}`)).statusCode, 200, 'cached by the gateway that has the key')
    const { app: restarted } = await buildApp(t, { config: configWithKey(other.publicJwk), redis })
    expect401(t, await outbox(restarted, `Bearer ${token}`), 'the key is no longer registered')
  })

  const refusals: Array<[string, () => string]> = [
    ['TR-MOJ\'s key, but the token claims DE-BFJ', () => es256(claims({ authority: 'DE-BFJ' }))],
    ['TR-MOJ\'s key, but the token claims an unregistered authority', () => es256(claims({ authority: 'XX-NOWHERE' }))],
    ['an unknown kid', () => signWith(registered.privatePem, 'k2')(claims())],
    ['another authority\'s kid', () => signWith(registered.privatePem, 'de-bfj-2026-01')(claims())],
    ['no kid', () => createSigner({ key: registered.privatePem, algorithm: 'ES256' })(claims())],
    ['kid "dev" on an ES256 token', () => signWith(registered.privatePem, 'dev')(claims())],
    ['expired', () => es256(claims({ iat: nowSeconds() - 7200, exp: nowSeconds() - 3600 }))],
    ['expired a second ago', () => es256(claims({ exp: nowSeconds() - 1 }))],
    ['nbf in the future', () => es256(claims({ nbf: nowSeconds() + 3600 }))],
    ['signed by an unregistered key that claims kid k1', () => signWith(other.privatePem, 'k1')(claims())],
    ['a valid signature over another payload (payload swapped)', () => {
      const [header, , signature] = es256(claims()).split('.')
      return `${header}.${b64url(claims({ roles: ['admin'] }))}.${signature}`
    }],
    ['alg none with kid k1', () => `${b64url({ alg: 'none', typ: 'JWT', kid: 'k1' })}.${b64url(claims())}.`],
    ['alg none without kid', () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims())}.`],
    ['alg none with kid k1 and a signature', () => `${b64url({ alg: 'none', typ: 'JWT', kid: 'k1' })}.${b64url(claims())}.${es256(claims()).split('.')[2]}`],
    ['HS256 with TR-MOJ\'s public key PEM as the HMAC secret, kid k1 (algorithm confusion)', () => hs256({ kid: 'k1' }, claims(), registered.publicPem)],
    ['HS256 with TR-MOJ\'s public key as JWK JSON as the HMAC secret, kid k1', () => hs256({ kid: 'k1' }, claims(), JSON.stringify(registered.publicJwk))],
    ['HS256 with TR-MOJ\'s public key DER as the HMAC secret, kid k1', () => hs256({ kid: 'k1' }, claims(), registered.publicKey.export({ type: 'spki', format: 'der' }))],
    ['HS256 with the public key PEM as the secret and no kid (the dev-token path)', () => hs256({}, claims(), registered.publicPem)],
    ['ES384 header on a P-256 signature, kid k1', () => {
      const [, payload, signature] = es256(claims()).split('.')
      return `${b64url({ alg: 'ES384', typ: 'JWT', kid: 'k1' })}.${payload}.${signature}`
    }],
    ['missing authority', () => es256(without('authority'))],
    ['missing roles', () => es256(without('roles'))],
    ['empty roles', () => es256(claims({ roles: [] }))],
    ['only unknown roles', () => es256(claims({ roles: ['superuser'] }))],
    ['roles as a string', () => es256(claims({ roles: 'agency' }))],
    ['missing sub', () => es256(without('sub'))],
    ['empty sub', () => es256(claims({ sub: '' }))],
    ['missing exp', () => es256(without('exp'))]
  ]
  for (const [what, make] of refusals) {
    t.test(`refused: ${what}`, async (t) => {
      expect401(t, await outbox(server, `Bearer ${make()}`), what)
    })
  }

  t.test('a refused token writes nothing', async (t) => {
    const before = await snapshot(db)
    expect401(t, await submit(server, es256(claims({ authority: 'DE-BFJ' })), example('mla-request', 'AUTH-refused')), 'forged authority')
    expect401(t, await submit(server, `${b64url({ alg: 'none', kid: 'k1' })}.${b64url(claims())}.`, example('mla-request', 'AUTH-none')), 'alg none')
    t.same(await snapshot(db), before, 'the store is unchanged')
  })
})

t.test('malformed Authorization headers', async (t) => {
  const { app: server } = await buildApp(t)
  const cases: Array<[string, string | undefined]> = [
    ['no Authorization header', undefined],
    ['"Bearer abc.def"', 'Bearer abc.def'],
    ['"Bearer " (empty token)', 'Bearer '],
    ['"Bearer" alone', 'Bearer'],
    ['three garbage segments', 'Bearer a.b.c'],
    ['a non-JSON header segment', `Bearer ${b64url('not json')}.${b64url(claims())}.sig`],
    ['a Basic credential', `Basic ${Buffer.from('user:pass').toString('base64')}`],
    ['the token without the Bearer scheme', createSigner({ key: devSecret, algorithm: 'HS256' })(claims())],
    ['an oversized token', `Bearer ${'a'.repeat(20_000)}.${'b'.repeat(20_000)}.c`]
  ]
  for (const [what, authorization] of cases) {
    expect401(t, await outbox(server, authorization), what)
  }
})

t.test('HS256 development tokens', async (t) => {
  t.test('accepted when the dev secret is set', async (t) => {
    const { app: server, token } = await buildApp(t)
    t.equal((await outbox(server, `Bearer ${token('TR-MOJ', ['liaison'])}`)).statusCode, 200, 'a minted dev token (no kid)')
    const withDevKid = createSigner({ key: devSecret, algorithm: 'HS256', kid: 'dev' })(claims())
    t.equal((await outbox(server, `Bearer ${withDevKid}`)).statusCode, 200, 'kid "dev"')

    const sign = createSigner({ key: devSecret, algorithm: 'HS256' })
    const refusals: Array<[string, string]> = [
      ['signed with another secret', createSigner({ key: 'not-the-dev-secret-0123456789abcdef', algorithm: 'HS256' })(claims())],
      ['HS384 with the dev secret', createSigner({ key: devSecret, algorithm: 'HS384' })(claims())],
      ['HS256 with the dev secret but a registered kid', createSigner({ key: devSecret, algorithm: 'HS256', kid: 'tr-moj-2026-01' })(claims())],
      ['an unregistered authority', sign(claims({ authority: 'XX-NOWHERE' }))],
      ['missing authority', sign(without('authority'))],
      ['missing roles', sign(without('roles'))],
      ['empty roles', sign(claims({ roles: [] }))],
      ['missing sub', sign(without('sub'))],
      ['missing exp', sign(without('exp'))],
      ['expired', sign(claims({ exp: nowSeconds() - 60 }))],
      ['nbf in the future', sign(claims({ nbf: nowSeconds() + 3600 }))]
    ]
    for (const [what, token] of refusals) expect401(t, await outbox(server, `Bearer ${token}`), what)
  })

  t.test('refused by a gateway built without a dev secret', async (t) => {
    const registered = ecKeyPair()
    const redis = await startRedis(t)
    const server = Fastify(serverOptions({ logLevel: process.env.TEST_LOG_LEVEL ?? 'silent', bodyLimitBytes: 1024 * 1024 }))
    await server.register(app, { gatewayConfig: configWithKey(registered.publicJwk), redisUrl: redis.url, payloadKey, authDevSecret: undefined, idempotencyTtlSeconds: 86400 })
    await server.ready()
    t.teardown(() => server.close())

    const devToken = createSigner({ key: devSecret, algorithm: 'HS256' })(claims())
    expect401(t, await outbox(server, `Bearer ${devToken}`), 'a dev token that would be valid with the secret')
    expect401(t, await outbox(server, `Bearer ${createSigner({ key: devSecret, algorithm: 'HS256', kid: 'dev' })(claims())}`), 'kid "dev"')
    expect401(t, await outbox(server, `Bearer ${hs256({ kid: 'k1' }, claims(), registered.publicPem)}`), 'HS256 with the public key as secret')
    const es256 = createSigner({ key: registered.privatePem, algorithm: 'ES256', kid: 'k1' })(claims())
    t.equal((await outbox(server, `Bearer ${es256}`)).statusCode, 200, 'while registered ES256 tokens still work')
  })
})
