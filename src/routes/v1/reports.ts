import type { FastifyInstance } from 'fastify'
import { mayReadReports, oversightScope } from '../../domain/permissions.js'
import { toCsv } from '../../domain/report.js'
import { problem } from '../../http/problem.js'
import { bearerSecurity, problemResponses } from '../../http/schemas.js'

const maxReportDays = 3660

const clock = {
  type: 'object',
  properties: { count: { type: 'integer' }, p50Seconds: { type: ['number', 'null'] }, p90Seconds: { type: ['number', 'null'] }, maxSeconds: { type: ['number', 'null'] } }
} as const

const row = {
  type: 'object',
  properties: {
    sender: { type: 'string' },
    recipient: { type: 'string' },
    type: { type: 'string' },
    submitted: { type: 'integer' },
    delivered: { type: 'integer' },
    acknowledged: { type: 'integer' },
    answered: { type: 'integer' },
    executed: { type: 'integer' },
    refused: { type: 'integer' },
    withdrawn: { type: 'integer' },
    deemedAccepted: { type: 'integer' },
    acknowledgementOverdue: { type: 'integer' },
    responseOverdue: { type: 'integer' },
    timeToDeliver: clock,
    timeToAcknowledge: clock,
    timeToAnswer: clock,
    acknowledgedOnTimeShare: { type: ['number', 'null'] },
    answeredOnTimeShare: { type: ['number', 'null'] },
    openNow: { type: 'integer' },
    overdueNow: { type: 'integer' }
  }
} as const

const nullableRow = { anyOf: [row, { type: 'null' }] } as const

interface ReportQuery { from: string, to: string, groupBy: 'type' | 'direction', format: 'json' | 'csv' }

/** Turnaround per direction of each pair, from aggregates kept at each transition. */
export default async function reportRoutes (fastify: FastifyInstance): Promise<void> {
  fastify.addHook('onRequest', fastify.authenticate)

  fastify.get<{ Querystring: ReportQuery }>('/v1/reports/turnaround', {
    schema: {
      tags: ['reports'],
      summary: 'Turnaround report',
      description: 'For requests submitted between from and to (UTC dates, inclusive): counts, p50/p90/max time to deliver, acknowledge and answer, on-time shares, and open and overdue now; with a reciprocity view setting A → B beside B → A. Liaison officers and auditors see their own authority\'s pairs; auditors of an oversight authority see every pair.',
      security: bearerSecurity,
      querystring: {
        type: 'object',
        properties: {
          from: { type: 'string', format: 'date' },
          to: { type: 'string', format: 'date' },
          groupBy: { type: 'string', enum: ['type', 'direction'], default: 'type' },
          format: { type: 'string', enum: ['json', 'csv'], default: 'json' }
        },
        required: ['from', 'to'],
        additionalProperties: false
      },
      response: {
        200: {
          type: 'object',
          properties: {
            from: { type: 'string' },
            to: { type: 'string' },
            generatedAt: { type: 'string' },
            scope: { type: 'string' },
            rows: { type: 'array', items: row },
            reciprocity: {
              type: 'array',
              items: {
                type: 'object',
                properties: { authorities: { type: 'array', items: { type: 'string' } }, type: { type: 'string' }, forward: nullableRow, backward: nullableRow }
              }
            }
          }
        },
        ...problemResponses(400, 401, 403, 503)
      }
    }
  }, async (request, reply) => {
    if (!mayReadReports(request.principal)) throw problem(403, 'Reports are for auditors and liaison officers.')
    const { from, to, groupBy, format } = request.query
    const spanDays = (Date.parse(to) - Date.parse(from)) / 86_400_000
    if (spanDays < 0) throw problem(400, '`to` is before `from`.', { errors: [{ pointer: '/query/to', detail: 'before from' }] })
    if (spanDays >= maxReportDays) throw problem(400, `A report covers at most ${maxReportDays} days.`, { errors: [{ pointer: '/query/to', detail: 'period too long' }] })
    const scope = oversightScope(request.principal)
    const report = await fastify.reports.turnaround({ fromDay: from, toDay: to, visibleTo: scope, groupBy })
    if (format === 'csv') {
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="turnaround-${from}-${to}.csv"`)
        .serializer((payload: unknown) => String(payload))
        .send(toCsv(report.rows))
    }
    return { ...report, generatedAt: new Date().toISOString(), scope: scope ?? 'gateway' }
  })
}
