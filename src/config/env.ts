import { dirname, isAbsolute, join, resolve } from 'node:path'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The package root, found by walking up from this file (works from src/ under tsx and from dist/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot locate the package root')
    dir = parent
  }
  return dir
}

export interface Env {
  port: number
  host: string
  redisUrl?: string
  dataDir: string
  gatewayConfigPath: string
  authDevSecret?: string
  logLevel: string
  bodyLimitBytes: number
  runWorkers: boolean
  /** 32-byte key (base64) for the payload at rest; absent = a key file under DATA_DIR. */
  payloadKeyBase64?: string
  redisAppendfsync: 'always' | 'everysec'
  idempotencyTtlSeconds: number
}

export class EnvError extends Error {}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const minDevSecretLength = 16

function integer (name: string, raw: string | undefined, fallback: number, min: number, max: number, problems: string[]): number {
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    problems.push(`${name}=${JSON.stringify(raw)} must be an integer between ${min} and ${max}`)
    return fallback
  }
  return value
}

function boolean (name: string, raw: string | undefined, fallback: boolean, problems: string[]): boolean {
  if (raw === undefined || raw === '') return fallback
  if (['1', 'true', 'yes'].includes(raw)) return true
  if (['0', 'false', 'no'].includes(raw)) return false
  problems.push(`${name}=${JSON.stringify(raw)} must be true or false`)
  return fallback
}

/** Reads and checks the environment once at boot; every problem is reported together. */
export function loadEnv (source: NodeJS.ProcessEnv = process.env): Env {
  const problems: string[] = []
  const root = packageRoot()
  const logLevel = source.LOG_LEVEL || 'info'
  if (!logLevels.includes(logLevel)) problems.push(`LOG_LEVEL=${JSON.stringify(logLevel)} must be one of ${logLevels.join(', ')}`)
  const authDevSecret = source.AUTH_DEV_SECRET || undefined
  if (authDevSecret !== undefined && authDevSecret.length < minDevSecretLength) {
    problems.push(`AUTH_DEV_SECRET must be at least ${minDevSecretLength} characters long`)
  }
  const redisUrl = source.REDIS_URL || undefined
  if (redisUrl !== undefined && !/^(rediss?:\/\/|\/)/.test(redisUrl)) {
    problems.push('REDIS_URL must be a redis:// or rediss:// URL, or the absolute path of a unix socket')
  }
  const appendfsync = source.REDIS_APPENDFSYNC || 'always'
  if (appendfsync !== 'always' && appendfsync !== 'everysec') problems.push('REDIS_APPENDFSYNC must be always or everysec')
  const payloadKeyBase64 = source.PAYLOAD_KEY || undefined
  if (payloadKeyBase64 !== undefined && Buffer.from(payloadKeyBase64, 'base64').length !== 32) {
    problems.push('PAYLOAD_KEY must be 32 bytes encoded in base64 (e.g. `openssl rand -base64 32`)')
  }
  const configPath = source.GATEWAY_CONFIG || join(root, 'config', 'demo.json')
  const env: Env = {
    port: integer('PORT', source.PORT, 3000, 0, 65535, problems),
    host: source.HOST || '127.0.0.1',
    redisUrl,
    dataDir: resolve(source.DATA_DIR || './data'),
    gatewayConfigPath: isAbsolute(configPath) ? configPath : resolve(configPath),
    authDevSecret,
    logLevel,
    bodyLimitBytes: integer('BODY_LIMIT_BYTES', source.BODY_LIMIT_BYTES, 1024 * 1024, 1024, 64 * 1024 * 1024, problems),
    runWorkers: boolean('RUN_WORKERS', source.RUN_WORKERS, true, problems),
    payloadKeyBase64,
    redisAppendfsync: appendfsync as Env['redisAppendfsync'],
    idempotencyTtlSeconds: integer('IDEMPOTENCY_TTL_SECONDS', source.IDEMPOTENCY_TTL_SECONDS, 48 * 3600, 24 * 3600, 30 * 24 * 3600, problems)
  }
  if (problems.length > 0) throw new EnvError(`invalid environment:\n  ${problems.join('\n  ')}`)
  return env
}
