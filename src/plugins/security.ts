import helmet from '@fastify/helmet'
import underPressure from '@fastify/under-pressure'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { getHeapStatistics } from 'node:v8'
import { problemFor, type Problem } from '../http/problem.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** @fastify/under-pressure: a route's own handling of load shedding (see notShed). */
    pressureHandler?: (...args: unknown[]) => unknown
  }
}

export interface UnderPressureSettings {
  /** Mean event-loop delay (ms) over a sample beyond which requests are shed (default 1000). */
  maxEventLoopDelayMs?: number
  /** Heap use (bytes) beyond which requests are shed (default 90% of the V8 heap limit). */
  maxHeapUsedBytes?: number
  /** RSS (bytes) beyond which requests are shed (default: not checked; the container limit is the operator's). */
  maxRssBytes?: number
  /** How often the figures are sampled (ms, default 1000). */
  sampleIntervalMs?: number
  /** Retry-After of a shed request (seconds, default 5). */
  retryAfterSeconds?: number
}

export interface SecurityOptions {
  underPressure?: UnderPressureSettings
  /** On close, how long a listening server still accepts connections (to answer them 503) before it stops (default 500 ms). */
  acceptDrainMs?: number
}

/**
 * Answers a problem document directly, without going through an error handler.
 * For hooks that run in front of plugins with their own error handler (the
 * queue dashboard), so that every refusal is application/problem+json.
 */
export function sendProblem (reply: FastifyReply, status: number, detail: string, headers: Record<string, string> = {}): FastifyReply {
  for (const [name, value] of Object.entries(headers)) reply.header(name, value)
  return reply.code(status).type('application/problem+json').send(problemFor(status, detail))
}

/** Route config that exempts a route from load shedding (liveness, metrics: they must answer when the process is busy). */
export const notShed = { pressureHandler: (): undefined => undefined }

const helmetOptions = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"]
    }
  },
  // Nothing here is meant to be embedded or loaded by other sites.
  crossOriginResourcePolicy: { policy: 'same-origin' as const },
  referrerPolicy: { policy: 'no-referrer' as const }
}

/**
 * The headers @fastify/helmet sets for this configuration. They depend on the
 * configuration only, so they are taken once from a probe instance: helmet
 * itself rebuilds its middleware from the options on every answer.
 */
export async function helmetHeaders (): Promise<Record<string, string>> {
  const answer = async (withHelmet: boolean): Promise<Record<string, unknown>> => {
    const probe = Fastify({ logger: false })
    if (withHelmet) await probe.register(helmet, { global: true, ...helmetOptions })
    probe.get('/', async () => 'probe')
    const res = await probe.inject({ method: 'GET', url: '/' })
    await probe.close()
    return res.headers
  }
  const [plain, helmeted] = [await answer(false), await answer(true)]
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(helmeted)) {
    if (!(name in plain) && typeof value === 'string') headers[name] = value
  }
  if (headers['content-security-policy'] === undefined) throw new Error('helmet set no content-security-policy')
  return headers
}

/**
 * Security headers (helmet), a CORS origin header, and load shedding
 * (under-pressure). Registered before every route so that each answer, the
 * errors included, carries the headers.
 *
 * - CSP: the API answers JSON, so the default policy allows nothing
 *   (`default-src 'none'`); the two HTML pages set their own: /docs (swagger-ui's
 *   hashes for its inline scripts) and /admin/queues (see queue-dashboard.ts).
 * - CORS: `Access-Control-Allow-Origin: *`. Authentication is a bearer token in
 *   the Authorization header, never a cookie: a browser sends no ambient
 *   credentials, and a cross-origin script cannot add the header (no preflight
 *   is ever granted), so the wildcard exposes only what is public anyway.
 * - Shutdown: requests arriving once the server is closing get 503 problem+json.
 * - Load shedding: past the thresholds (for two consecutive samples) every
 *   route but the exempt ones answers 503 problem+json with Retry-After,
 *   before any work (auth, Redis) is done.
 */
async function securityPlugin (fastify: FastifyInstance, opts: SecurityOptions): Promise<void> {
  const staticHeaders = { ...await helmetHeaders(), 'access-control-allow-origin': '*' }

  // Shutting down (fastify.close()): the requests in flight finish; one that
  // arrives meanwhile is answered 503 problem+json without being handled (and
  // its connection closed: fastify adds Connection: close). A listening server keeps
  // accepting for acceptDrainMs first: connections the kernel had already
  // accepted when the close began get that 503 instead of a reset.
  let closing = false
  fastify.addHook('preClose', async () => {
    closing = true
    fastify.log.info('closing: requests arriving from now on are answered 503')
    if (fastify.server.listening) await new Promise((resolve) => setTimeout(resolve, opts.acceptDrainMs ?? 500))
  })
  // Whether a request is in flight is decided when it arrives (onRequest); the
  // 503 goes out once its body is read (preValidation): answering an upload in
  // mid-stream and closing its connection would reset it instead.
  const lateArrivals = new WeakSet<object>()
  // One synchronous hook for the headers and the closing check: each async hook costs a promise per request.
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.headers(staticHeaders)
    if (closing) lateArrivals.add(request)
    done()
  })
  fastify.addHook('preValidation', (request, reply, done) => {
    if (!closing || !lateArrivals.has(request)) return done()
    sendProblem(reply, 503, 'The gateway is shutting down; retry on another instance or in a moment.', { 'retry-after': '1' })
  })

  const pressure = opts.underPressure ?? {}
  const retryAfter = pressure.retryAfterSeconds ?? 5
  const sampleInterval = pressure.sampleIntervalMs ?? 1000
  // Requests are shed only when the thresholds have been exceeded for two
  // consecutive samples: one long task (loading the app, a large report) is
  // not overload. And not before two samples after the app is ready (loading
  // it blocks the event loop for a while).
  let countsFrom = Infinity
  let pressedSince: number | undefined
  let watch: NodeJS.Timeout | undefined
  fastify.addHook('onReady', async () => {
    countsFrom = Date.now() + 2 * sampleInterval
    watch = setInterval(() => {
      pressedSince = fastify.isUnderPressure() ? (pressedSince ?? Date.now()) : undefined
    }, sampleInterval)
    watch.unref()
  })
  fastify.addHook('onClose', async () => { clearInterval(watch) })
  await fastify.register(underPressure, {
    maxEventLoopDelay: pressure.maxEventLoopDelayMs ?? 1000,
    maxHeapUsedBytes: pressure.maxHeapUsedBytes ?? Math.floor(getHeapStatistics().heap_size_limit * 0.9),
    maxRssBytes: pressure.maxRssBytes ?? 0,
    sampleInterval,
    exposeStatusRoute: false,
    pressureHandler: shed as never
  })

  // A plain object returned by the handler is sent as the answer and the hook
  // chain stops; undefined lets the request through.
  let warnedAt = 0
  function shed (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined): Problem | undefined {
    const now = Date.now()
    if (now < countsFrom || pressedSince === undefined || now - pressedSince < sampleInterval) return undefined
    if (now - warnedAt >= sampleInterval) {
      warnedAt = now
      request.log.warn({ type, value }, 'under pressure: shedding requests')
    }
    reply.code(503).type('application/problem+json').header('retry-after', String(retryAfter))
    return problemFor(503, 'The gateway is overloaded; retry after the time given in Retry-After.')
  }
}

export default fp(securityPlugin, { name: 'security', fastify: '5.x' })
