import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'
import { problem } from '../http/problem.js'
import { adminSecurity, problemResponses, statusSchema } from '../http/schemas.js'
import { notShed } from '../plugins/security.js'

/** How long a readiness answer is reused: probes from many balancers cost one check per second. */
export const readinessTtlMs = 1000
const readinessTimeoutMs = 2000

async function withTimeout<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/** Liveness, readiness and metrics: for operators, load balancers and Prometheus. */
export default async function healthRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.get('/healthz', {
    config: notShed,
    schema: {
      tags: ['operations'],
      summary: 'Liveness: the process is up',
      description: 'Answers 200 as long as the process serves HTTP, whatever the state of Redis and however busy it is (not subject to load shedding): a failing liveness probe means restart the process.',
      security: [],
      response: { 200: { ...statusSchema, description: 'The process is up', examples: [{ status: 'ok' }] } }
    }
  }, async () => ({ status: 'ok' }))

  // One check at a time, shared by the probes that arrive meanwhile; a success
  // is reused for readinessTtlMs as long as both connections still report
  // ready (a dropped connection is noticed at once); a failure is not reused,
  // so that recovery shows at the next probe.
  let inFlight: Promise<string | undefined> | undefined
  let lastSuccessAt = -Infinity
  // ioredis reports 'ready' until it has handled the socket's close; the stream
  // knows at once.
  const up = (connection: Redis): boolean => connection.status === 'ready' && connection.stream?.writable === true
  const connectionsReady = (): boolean => up(fastify.redis) && up(fastify.queues.connection)
  async function check (): Promise<string | undefined> {
    try {
      await withTimeout(fastify.redis.ping(), readinessTimeoutMs, 'Redis')
    } catch {
      return 'Redis is not reachable.'
    }
    try {
      // A BullMQ command (Lua script) over the queue connection: the queues are usable.
      await withTimeout(Promise.all(fastify.queues.all.map(async (queue) => await queue.getJobCounts('active'))), readinessTimeoutMs, 'the queues')
    } catch {
      return 'The job queues are not usable.'
    }
    return undefined
  }
  /** undefined when ready, else what is wrong. */
  async function readiness (): Promise<string | undefined> {
    if (Date.now() - lastSuccessAt < readinessTtlMs && connectionsReady()) return undefined
    inFlight ??= check().then((failure) => {
      if (failure === undefined) lastSuccessAt = Date.now()
      return failure
    }).finally(() => { inFlight = undefined })
    return await inFlight
  }

  fastify.get('/readyz', {
    schema: {
      tags: ['operations'],
      summary: 'Readiness: Redis answers and the job queues are usable',
      description: 'A PING on the store connection and a BullMQ job count on each queue; a success is reused for up to a second while both connections stay up. 503 while Redis is unreachable, while the gateway is overloaded, and once it is shutting down: take it out of the balancer.',
      security: [],
      response: { 200: { ...statusSchema, description: 'Ready to serve', examples: [{ status: 'ready' }] }, ...problemResponses(503) }
    }
  }, async () => {
    const failure = await readiness()
    if (failure !== undefined) throw problem(503, failure)
    return { status: 'ready' }
  })

  fastify.get('/metrics', {
    config: notShed,
    onRequest: fastify.authenticate,
    preHandler: async (request: FastifyRequest) => {
      if (!request.principal.roles.includes('admin')) throw problem(403, 'Metrics are for operators (admin role).')
    },
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics (operators)',
      description: 'Prometheus text format: HTTP latency by route and status; job counts per queue and state; open and overdue requests per direction of each pair and type; rate-limit refusals per authority; with workers in this process, delivery attempts and failures per authority and failed job attempts per queue; and the Node.js process metrics. Admin role only: the per-pair figures are not for every authority\'s eyes (auditors see only their own pairs). Gauges read from Redis are at most one second old.',
      security: adminSecurity,
      response: {
        200: {
          description: 'The metrics',
          content: {
            'text/plain': {
              schema: { type: 'string', maxLength: 16777216, description: 'Prometheus exposition format 0.0.4 (series per pair are capped, see rogatory_requests_series_omitted)' },
              example: '# HELP rogatory_requests_open Open requests per direction of a pair (sender → recipient) and type\n# TYPE rogatory_requests_open gauge\nrogatory_requests_open{sender="TR-MOJ",recipient="DE-BFJ",type="mla"} 3\n'
            }
          }
        },
        ...problemResponses(401, 403)
      }
    }
  }, async (_request, reply) => {
    const text = await fastify.metrics.registry.metrics()
    return reply.type(fastify.metrics.registry.contentType).send(text)
  })
}
