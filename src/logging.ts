import type { FastifyServerOptions } from 'fastify'

// Where personal data could surface in a log line: request and response bodies
// (logged under body/content/payload, which we never do on purpose) and errors
// that echo them. Names, birth dates, document numbers and free-text facts are
// replaced wherever they appear below those keys.
const personalFields = new Set([
  'familyName', 'givenNames', 'aliases', 'fatherName', 'motherName', 'legalName', 'dateOfBirth', 'placeOfBirth', 'address',
  'lastAddressInRequestedState', 'number', 'identityDocuments', 'nationalityEvidence', 'facts', 'description', 'notes',
  'health', 'care', 'persons', 'person', 'family', 'restrictions', 'email', 'phone', 'contactPerson', 'questions',
  'answers', 'text', 'reason'
])
const censor = '[redacted]'
const maxDepth = 20

/** A copy of `value` with personal fields censored; the original is left as it is. */
export function redactPersonal (value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value
  if (depth >= maxDepth) return censor
  if (Array.isArray(value)) return value.map((item) => redactPersonal(item, depth + 1))
  const copy: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) copy[key] = personalFields.has(key) ? censor : redactPersonal(item, depth + 1)
  return copy
}

// pino's path redaction is kept to fixed paths: with nested wildcards it leaves
// the logged object censored afterwards, so bodies go through a serializer instead.
export const redactPaths: string[] = ['req.headers.authorization', 'req.headers.cookie']
export const personalSerializers = { body: redactPersonal, content: redactPersonal, payload: redactPersonal }

export function loggerOptions (level: string): FastifyServerOptions['logger'] {
  return {
    level,
    redact: { paths: redactPaths, censor },
    serializers: personalSerializers
  }
}
