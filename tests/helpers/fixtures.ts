// Small shared helpers for the HTTP-level tests: submitting, reading problem
// documents, and snapshotting what Redis holds so that "nothing changed" can be
// asserted after a refused request.
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { createKeys } from '../../src/store/keys.js'
import { bearer } from './app.js'

/** The gateway's key layout with the default prefix (what buildApp uses). */
export const keys = createKeys()

/**
 * The test's own connection to the gateway's Redis (the app's connection is
 * encapsulated inside the app plugin), closed at teardown.
 */
export async function redisClient (t: { teardown: (fn: () => unknown) => void }, url: string): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  await client.connect()
  return client
}

export const DAY_MS = 86_400_000

/** A version-7 UUID (RFC 9562): version nibble 7, variant 10xx. */
export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

export type InjectResponse = Awaited<ReturnType<FastifyInstance['inject']>>

/** POST /v1/requests with a JSON body and a bearer token. */
export async function submit (app: FastifyInstance, token: string, body: unknown, headers: Record<string, string> = {}): Promise<InjectResponse> {
  return await app.inject({ method: 'POST', url: '/v1/requests', headers: { ...bearer(token), ...headers }, payload: body as Record<string, unknown> })
}

/** GET with a bearer token. */
export async function get (app: FastifyInstance, token: string, url: string): Promise<InjectResponse> {
  return await app.inject({ method: 'GET', url, headers: bearer(token) })
}

export interface ProblemBody {
  type: string
  title: string
  status: number
  detail?: string
  errors?: Array<{ pointer: string, detail: string }>
  [key: string]: unknown
}

/**
 * Asserts that `res` is an RFC 9457 problem with this status and returns its body.
 * Problem documents are served as application/problem+json and repeat the status.
 */
export function expectProblem (t: Test, res: InjectResponse, status: number, what = ''): ProblemBody {
  const label = what === '' ? '' : `${what}: `
  t.equal(res.statusCode, status, `${label}answers ${status}`, { body: res.body.slice(0, 500) })
  t.match(String(res.headers['content-type']), /^application\/problem\+json/, `${label}is application/problem+json`)
  let body: ProblemBody
  try {
    body = res.json()
  } catch {
    t.fail(`${label}problem body is not JSON`, { body: res.body.slice(0, 500) })
    return { type: '', title: '', status: 0 }
  }
  t.equal(body.status, status, `${label}problem.status repeats the HTTP status`)
  t.type(body.type, 'string', `${label}problem has a type`)
  t.type(body.title, 'string', `${label}problem has a title`)
  return body
}

/** The JSON pointers a validation problem names. */
export const pointersOf = (problem: ProblemBody): string[] => (problem.errors ?? []).map((error) => error.pointer)

export interface StoreSnapshot {
  keys: number
  auditEntries: number
}

/** Number of keys and of audit stream entries: both must stay put when a request is refused. */
export async function snapshot (redis: Redis): Promise<StoreSnapshot> {
  const [count, auditEntries] = await Promise.all([redis.dbsize(), redis.xlen(keys.auditStream)])
  return { keys: count, auditEntries }
}

/** Calendar date (YYYY-MM-DD, UTC) of a millisecond timestamp. */
export const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

/** Midnight UTC at the start of a YYYY-MM-DD date. */
export const startOfDay = (date: string): number => Date.parse(`${date}T00:00:00.000Z`)

/** The last millisecond of a YYYY-MM-DD date in UTC. */
export const endOfDay = (date: string): number => startOfDay(date) + DAY_MS - 1

/** Polls `fn` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < until) {
    try {
      const value = await fn()
      if (value !== undefined) return value
    } catch (error) {
      last = error
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`)
}
