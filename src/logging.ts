import type { FastifyServerOptions } from 'fastify'

// Where personal data could surface in a log line: request and response bodies
// (under body/content/payload) and errors that echo them. Names, birth dates,
// document numbers and free-text facts are censored wherever they appear.
const personalFields = [
  'familyName', 'givenNames', 'aliases', 'dateOfBirth', 'placeOfBirth', 'address', 'number',
  'identityDocuments', 'nationalityEvidence', 'facts', 'description', 'notes', 'health', 'care',
  'persons', 'person', 'family', 'restrictions', 'email', 'phone', 'contactPerson'
]
const containers = ['body', 'content', 'payload', 'request.body', 'req.body']

export const redactPaths: string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  ...containers.flatMap((container) => personalFields.flatMap((field) => [
    `${container}.${field}`,
    `${container}.*.${field}`,
    `${container}.*[*].${field}`
  ]))
]

export function loggerOptions (level: string): FastifyServerOptions['logger'] {
  return {
    level,
    redact: { paths: redactPaths, censor: '[redacted]' }
  }
}
