/** RFC 9457 problem details, the one error shape of the API. */
export interface FieldError {
  pointer: string
  detail: string
}

export interface Problem {
  type: string
  title: string
  status: number
  detail?: string
  instance?: string
  errors?: FieldError[]
  [extension: string]: unknown
}

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable'
}

const slugs: Record<number, string> = {
  400: 'invalid-request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not-found',
  405: 'method-not-allowed',
  406: 'not-acceptable',
  409: 'conflict',
  413: 'body-too-large',
  414: 'uri-too-long',
  415: 'unsupported-media-type',
  422: 'unprocessable',
  429: 'rate-limited',
  500: 'internal',
  503: 'unavailable'
}

export const problemTypeBase = 'https://rogatory.eu/problems/'

/** An error that carries its own problem document; thrown by handlers, rendered by the error handler. */
export class ProblemError extends Error {
  readonly problem: Problem

  constructor (status: number, detail: string, extra: Partial<Problem> & { slug?: string } = {}) {
    super(detail)
    const { slug, ...rest } = extra
    this.problem = {
      type: problemTypeBase + (slug ?? slugs[status] ?? 'error'),
      title: titles[status] ?? 'Error',
      status,
      detail,
      ...rest
    }
  }
}

export const problem = (status: number, detail: string, extra: Partial<Problem> & { slug?: string } = {}): ProblemError =>
  new ProblemError(status, detail, extra)

export function problemFor (status: number, detail: string): Problem {
  return new ProblemError(status, detail).problem
}
