import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import { Queue } from 'bullmq'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { ProblemError } from '../http/problem.js'
import { connectRedis, createRedis } from '../store/redis-connection.js'
import { queueNames, queuePrefix, type DeliveryJob } from '../../workers/queues.js'
import { sendProblem } from './security.js'

declare module 'fastify' {
  interface FastifyInstance {
    queues: GatewayQueues
  }
}

/** The app's handles on the BullMQ queues, whether or not workers run in this process. */
export interface GatewayQueues {
  delivery: Queue<DeliveryJob>
  all: Array<Queue<DeliveryJob>>
  /** Their connection (fails fast while Redis is down, like the store's). */
  connection: Redis
}

export const dashboardPath = '/admin/queues'

/**
 * Queue objects for the queues (names and prefix of workers/queues.ts), on a
 * connection of their own that fails fast rather than queueing commands while
 * Redis is down; readiness, metrics and the dashboard read through them.
 * Closed with the app.
 */
async function queuesPlugin (fastify: FastifyInstance, opts: { redisUrl: string }): Promise<void> {
  const connection = createRedis(opts.redisUrl)
  connection.on('error', (err) => fastify.log.debug({ err }, 'queue connection error'))
  await connectRedis(connection)
  const delivery = new Queue<DeliveryJob>(queueNames.delivery, { connection, prefix: queuePrefix })
  const all = [delivery]
  for (const queue of all) queue.on('error', (err) => fastify.log.debug({ err, queue: queue.name }, 'queue error'))
  fastify.decorate('queues', { delivery, all, connection })
  fastify.addHook('onClose', async () => {
    await Promise.all(all.map(async (queue) => await queue.close().catch(() => {})))
    await connection.quit().catch(() => connection.disconnect())
  })
}

export const queues = fp(queuesPlugin, { name: 'queues', fastify: '5.x' })

// bull-board's page: its own scripts and styles and inline style attributes;
// it calls its API on the same origin. Its Google Fonts stylesheet is not
// allowed (an operator's browser has no business calling a third party from
// here): the page falls back to a system font.
const dashboardCsp = [
  "default-src 'self'",
  "base-uri 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "font-src 'self' data:",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'"
].join('; ')

/**
 * The bull-board dashboard at /admin/queues, for the admin role only: 401
 * without a valid token, 403 with one of another role, as problem+json. The
 * check runs in an onRequest hook in front of bull-board's routes, and answers
 * directly (bull-board installs an error handler of its own in its scope).
 * Browsers must send the bearer token too (a header-injecting proxy or
 * extension): every page, asset and API call under the path needs it.
 */
async function queueDashboard (fastify: FastifyInstance): Promise<void> {
  const adapter = new FastifyAdapter()
  adapter.setBasePath(dashboardPath)
  createBullBoard({
    queues: fastify.queues.all.map((queue) => new BullMQAdapter(queue as Queue)),
    // @bull-board/fastify pins its own patch release of @bull-board/api: the same interface, declared twice.
    serverAdapter: adapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
    options: { uiConfig: { boardTitle: 'Rogatory queues' } }
  })

  await fastify.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      try {
        await fastify.authenticate(request)
      } catch (error) {
        if (error instanceof ProblemError) return sendProblem(reply, error.problem.status, error.problem.detail ?? 'A valid bearer token is required.')
        throw error
      }
      if (!request.principal.roles.includes('admin')) return sendProblem(reply, 403, 'The queue dashboard is for operators (admin role).')
    })
    scope.addHook('onSend', async (_request, reply, payload) => {
      reply.header('content-security-policy', dashboardCsp)
      return payload
    })
    await scope.register(adapter.registerPlugin(), { prefix: dashboardPath })
  })
}

export default fp(queueDashboard, { name: 'queue-dashboard', fastify: '5.x', dependencies: ['auth', 'queues'] })
