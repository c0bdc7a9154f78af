import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { GatewayConfig } from './domain/types.js'
import { problemSchema } from './http/schemas.js'
import { loggerOptions } from './logging.js'
import authPlugin from './plugins/auth.js'
import openapiPlugin from './plugins/openapi.js'
import problemsPlugin from './plugins/problems.js'
import requestLogPlugin from './plugins/request-log.js'
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
}

/** Options of the Fastify instance itself; the app plugin below needs them. */
export function serverOptions (settings: { logLevel: string, bodyLimitBytes: number }): FastifyServerOptions {
  return {
    logger: loggerOptions(settings.logLevel),
    bodyLimit: settings.bodyLimitBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    // A HEAD of a request would count as a fetch (delivery, disclosure) without showing anything.
    exposeHeadRoutes: false,
    // src/plugins/request-log.ts writes one line per request instead of fastify's two.
    disableRequestLogging: true,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 }
  }
}

/** The gateway as a Fastify plugin: no listen here, so tests drive it through inject. */
export default async function app (fastify: FastifyInstance, opts: AppOptions): Promise<void> {
  fastify.addSchema(problemSchema)
  await fastify.register(requestLogPlugin)
  await fastify.register(problemsPlugin)
  await fastify.register(validationPlugin)
  await fastify.register(openapiPlugin)
  await fastify.register(storePlugin, opts)
  await fastify.register(authPlugin, { gatewayConfig: opts.gatewayConfig, devSecret: opts.authDevSecret })
  await fastify.register(healthRoutes)
  await fastify.register(schemaRoutes)
  await fastify.register(requestRoutes)
  await fastify.register(transitionRoutes)
  await fastify.register(auditRoutes)
  await fastify.register(reportRoutes)
}
