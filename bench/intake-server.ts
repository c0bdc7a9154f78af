// One server for the intake benchmark, in its own process so the load generator
// does not share its event loop: `gateway` (the real app on the production Redis
// settings) or `bare` (a Fastify route that validates the same body with the same
// compiled schema and does nothing else).
//
// BENCH_DIST=1 loads the gateway's compiled build (dist/, as `npm start` runs
// it) rather than its sources through tsx; the bare route then comes from the
// same build.
import Fastify from 'fastify'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { packageRoot } from '../src/config/env.js'

const from = process.env.BENCH_DIST === '1' ? (path: string): string => pathToFileURL(join(packageRoot(), 'dist', 'src', `${path}.js`)).href : (path: string): string => `../src/${path}.js`
const { default: app, serverOptions } = await import(from('app')) as typeof import('../src/app.js')
const { loadGatewayConfig } = await import(from('config/gateway-config')) as typeof import('../src/config/gateway-config.js')
const { createAjv, schemaId } = await import(from('schemas/registry')) as typeof import('../src/schemas/registry.js')
const { EmbeddedRedis } = await import(from('store/embedded-redis')) as typeof import('../src/store/embedded-redis.js')

const mode = process.argv[2]
const logLevel = process.env.BENCH_LOG_LEVEL ?? 'warn'
const fastify = Fastify(serverOptions({ logLevel, bodyLimitBytes: 1024 * 1024 }))
let cleanup = async (): Promise<void> => {}
let redisPid: number | undefined

if (mode === 'bare') {
  const validate = createAjv().getSchema(schemaId('request'))
  if (validate === undefined) throw new Error('request schema missing')
  fastify.setValidatorCompiler(() => validate)
  fastify.post('/v1/requests', { schema: { body: { $ref: schemaId('request') } } }, async (_request, reply) => reply.code(201).send({ ok: true }))
} else {
  const dir = mkdtempSync(join(tmpdir(), 'rogatory-bench-'))
  const redis = new EmbeddedRedis({ dataDir: dir, appendfsync: process.env.BENCH_APPENDFSYNC === 'everysec' ? 'everysec' : 'always' })
  const url = await redis.start()
  redisPid = redis.pid
  const gatewayConfig = loadGatewayConfig(join(packageRoot(), 'config', 'demo.json'))
  // The limiter still runs (its Redis round trip is part of the hot path) but never refuses here.
  for (const authority of gatewayConfig.authorities) authority.rateLimit = { max: 100_000_000, timeWindowSeconds: 60 }
  await fastify.register(app, {
    gatewayConfig,
    redisUrl: url,
    payloadKey: Buffer.alloc(32, 3),
    authDevSecret: 'bench-dev-secret-0123456789abcdef',
    idempotencyTtlSeconds: 86400
  })
  cleanup = async () => {
    await redis.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

await fastify.listen({ port: 0, host: '127.0.0.1' })
const address = fastify.server.address()
process.stdout.write(JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0, redisPid }) + '\n')
process.on('SIGTERM', () => {
  fastify.close().then(cleanup).then(() => process.exit(0), () => process.exit(1))
})
