import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * One log line per request, when it completes, with its id, route, status and
 * time. Bodies are never logged; the redaction paths (src/logging.ts) catch
 * personal fields should an error carry one.
 */
async function requestLogPlugin (fastify: FastifyInstance): Promise<void> {
  fastify.addHook('onResponse', async (request, reply) => {
    // Below info the line is dropped anyway: skip building it.
    if ((request.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') === false) return
    request.log.info({
      req: { method: request.method, url: request.url, route: request.routeOptions.url, remoteAddress: request.ip },
      res: { statusCode: reply.statusCode },
      authority: request.principal?.authority,
      responseTimeMs: Math.round(reply.elapsedTime * 100) / 100
    }, 'request completed')
  })
}

export default fp(requestLogPlugin, { name: 'request-log', fastify: '5.x' })
