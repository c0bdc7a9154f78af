import { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { GatewayConfig } from './domain/types.js'
import { problemFor } from './http/problem.js'
import { problemSchema } from './http/schemas.js'
import { loggerOptions } from './logging.js'
import authPlugin from './plugins/auth.js'
import metricsPlugin, { type GatewayMetrics } from './plugins/metrics.js'
import openapiPlugin from './plugins/openapi.js'
import problemsPlugin from './plugins/problems.js'
import queueDashboardPlugin, { queues as queuesPlugin } from './plugins/queue-dashboard.js'
import rateLimitPlugin, { type RateLimitSettings } from './plugins/rate-limit.js'
import requestLogPlugin from './plugins/request-log.js'
import securityPlugin, { type UnderPressureSettings } from './plugins/security.js'
import storePlugin from './plugins/store.js'
import validationPlugin from './plugins/validation.js'
import healthRoutes from './routes/health.js'
import auditRoutes from './routes/v1/audit.js'
import reportRoutes from './routes/v1/reports.js'
import requestRoutes from './routes/v1/requests.js'
import schemaRoutes from './routes/v1/schemas.js'
import transitionRoutes from './routes/v1/transitions.js'

export interface AppOptions {
  gatewayConfig: GatewayConfig
  redisUrl: string
  payloadKey: Buffer
  authDevSecret?: string
  idempotencyTtlSeconds: number
  keyPrefix?: string
  /** The process's metrics (server.ts shares them with in-process workers); a fresh registry when absent. */
  metrics?: GatewayMetrics
  /** Rate-limit defaults (per-authority limits come from the gateway config). */
  rateLimit?: RateLimitSettings
  /** Load-shedding thresholds. */
  underPressure?: UnderPressureSettings
}

/** Options of the Fastify instance itself; the app plugin below needs them. */
export function serverOptions (settings: { logLevel: string, bodyLimitBytes: number }): FastifyServerOptions {
  return {
    logger: loggerOptions(settings.logLevel),
    bodyLimit: settings.bodyLimitBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // Requests arriving while the server closes are answered 503 problem+json
    // by src/plugins/security.ts (fastify's own 503 is not a problem document).
    return503OnClosing: false,
    // A HEAD of a request would count as a fetch (delivery, disclosure) without showing anything.
    exposeHeadRoutes: false,
    // src/plugins/request-log.ts writes one line per request instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // Errors raised while routing (a malformed URL, an over-long id) are problems too.
    frameworkErrors: (error, _request, reply) => {
      const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
      const answer = reply as unknown as { code: (n: number) => { type: (t: string) => { send: (body: unknown) => void } } }
      answer.code(status).type('application/problem+json').send(problemFor(status, error.message))
    }
  }
}

/** The gateway as a Fastify plugin: no listen here, so tests drive it through inject. */
export default async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  fastify.addSchema(problemSchema)
  await fastify.register(requestLogPlugin)
  await fastify.register(problemsPlugin)
  await fastify.register(validationPlugin)
  // Hooks before routes (route scopes copy the hooks that exist when they are
  // registered). onRequest order: security headers and load shedding, then the
  // rate limiter, then each route scope's authentication.
  await fastify.register(securityPlugin, { underPressure: opts.underPressure })
  await fastify.register(storePlugin, opts)
  await fastify.register(queuesPlugin, { redisUrl: opts.redisUrl })
  await fastify.register(metricsPlugin, { metrics: opts.metrics, keyPrefix: opts.keyPrefix })
  await fastify.register(authPlugin, { gatewayConfig: opts.gatewayConfig, devSecret: opts.authDevSecret })
  await fastify.register(rateLimitPlugin, { ...opts.rateLimit, gatewayConfig: opts.gatewayConfig, redisUrl: opts.redisUrl, keyPrefix: opts.keyPrefix })
  // Routes, the OpenAPI plugin first so that it sees every one of them.
  await fastify.register(openapiPlugin)
  await fastify.register(queueDashboardPlugin)
  await fastify.register(healthRoutes)
  await fastify.register(schemaRoutes)
  await fastify.register(requestRoutes)
  await fastify.register(transitionRoutes)
  await fastify.register(auditRoutes)
  await fastify.register(reportRoutes)
}
