const unavailableMessages = [
  'Connection is closed',
  "Stream isn't writeable",
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOENT',
  'EPIPE',
  'Command timed out',
  'Reached the max retries per request limit',
  'LOADING',
  'MISCONF',
  'READONLY',
  'MASTERDOWN'
]

/** Errors that mean "Redis cannot be reached right now" (503), as opposed to bugs (500). */
export function isRedisUnavailable (error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (error.name === 'MaxRetriesPerRequestError') return true
  return unavailableMessages.some((text) => error.message.includes(text))
}
