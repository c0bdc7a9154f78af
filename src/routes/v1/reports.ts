import type { FastifyInstance } from 'fastify'
import { mayReadReports, oversightScope } from '../../domain/permissions.js'
import { toCsv } from '../../domain/report.js'
import { problem } from '../../http/problem.js'
import { authorityIdSchema, bearerSecurity, countSchema, dateSchema, problemResponses, timestampSchema } from '../../http/schemas.js'

const maxReportDays = 3660
/** Rows of a report at most: every ordered pair of the (at most 1000) configured authorities, for each of the two types. */
const maxReportRows = 1000 * 999 * 2
const rowType = { type: 'string', enum: ['mla', 'repatriation', '*'], description: '* when grouped by direction' } as const

const clock = {
  type: 'object',
  properties: { count: countSchema, p50Seconds: { type: ['number', 'null'] }, p90Seconds: { type: ['number', 'null'] }, maxSeconds: { type: ['number', 'null'] } }
} as const

const row = {
  type: 'object',
  properties: {
    sender: authorityIdSchema,
    recipient: authorityIdSchema,
    type: rowType,
    submitted: countSchema,
    delivered: countSchema,
    acknowledged: countSchema,
    answered: countSchema,
    executed: countSchema,
    refused: countSchema,
    withdrawn: countSchema,
    deemedAccepted: countSchema,
    acknowledgementOverdue: countSchema,
    responseOverdue: countSchema,
    timeToDeliver: clock,
    timeToAcknowledge: clock,
    timeToAnswer: clock,
    acknowledgedOnTimeShare: { type: ['number', 'null'] },
    answeredOnTimeShare: { type: ['number', 'null'] },
    openNow: countSchema,
    overdueNow: countSchema
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
          from: { type: 'string', format: 'date', maxLength: 10 },
          to: { type: 'string', format: 'date', maxLength: 10 },
          groupBy: { type: 'string', enum: ['type', 'direction'], default: 'type' },
          format: { type: 'string', enum: ['json', 'csv'], default: 'json' }
        },
        required: ['from', 'to'],
        additionalProperties: false
      },
      response: {
        200: {
          description: 'The report: JSON, or CSV with format=csv (one line per row, the columns of the JSON rows)',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: {
                  from: dateSchema,
                  to: dateSchema,
                  generatedAt: timestampSchema,
                  scope: { type: 'string', maxLength: 15, pattern: '^([A-Z]{2}-[A-Z0-9]{2,12}|gateway)$', description: 'The authority whose pairs are shown, or gateway (oversight: every pair)' },
                  rows: { type: 'array', maxItems: maxReportRows, items: row },
                  reciprocity: {
                    type: 'array',
                    maxItems: maxReportRows,
                    items: {
                      type: 'object',
                      properties: { authorities: { type: 'array', minItems: 2, maxItems: 2, items: authorityIdSchema }, type: rowType, forward: nullableRow, backward: nullableRow }
                    }
                  }
                }
              }
            },
            'text/csv': { schema: { type: 'string', maxLength: 1073741824, description: 'A header line, then one line per row' } }
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
