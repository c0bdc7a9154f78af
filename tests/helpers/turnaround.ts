import type { TurnaroundFacts } from '../../src/domain/turnaround.js'

const DAY_MS = 86_400_000

/** A request as submitted at `submittedAt`: TR-MOJ → DE-BFJ, MLA, acknowledge within 10 days, answer within 90. */
export function submittedFacts (submittedAt: number, overrides: Partial<TurnaroundFacts> = {}): TurnaroundFacts {
  return {
    type: 'mla',
    sender: 'TR-MOJ',
    recipient: 'DE-BFJ',
    status: 'submitted',
    submittedAt,
    ackDue: submittedAt + 10 * DAY_MS,
    respDue: submittedAt + 90 * DAY_MS,
    ackOverdue: false,
    respOverdue: false,
    ...overrides
  }
}
