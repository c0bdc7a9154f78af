// The lifecycle of DESIGN.md §2 as a table: every action × every status × every
// actor through the pure decide(). The expectations below are written out by
// hand from the design (not derived from the rules in src/), so that a change
// of a rule shows up here as a difference.
//
//   submitted ─► delivered ─► acknowledged ─► responded (executed | partially executed | refused)
//      │             │            │  ▲
//      │             │            ▼  │
//      │             │     clarification_requested
//      └─────────────┴────────────┴──► withdrawn (by the sender, while open)
import t from 'tap'
import { decide, isOpen, type Action, type Actor } from '../../src/domain/lifecycle.js'
import type { RequestStatus } from '../../src/domain/types.js'

const statuses: RequestStatus[] = ['submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed', 'executed', 'refused', 'withdrawn', 'deemed_accepted']
const open: RequestStatus[] = ['submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed']
const closed: RequestStatus[] = ['executed', 'refused', 'withdrawn', 'deemed_accepted']
const actors: Actor[] = ['sender', 'recipient', 'gateway']

const actions: Action[] = [
  { kind: 'retrieve' },
  { kind: 'deliver' },
  { kind: 'acknowledge' },
  { kind: 'request_clarification' },
  { kind: 'clarify' },
  { kind: 'extend' },
  { kind: 'respond', outcome: 'partially_executed' },
  { kind: 'respond', outcome: 'executed' },
  { kind: 'respond', outcome: 'refused' },
  { kind: 'withdraw' },
  { kind: 'deem_accepted' }
]

interface Expectation {
  /** Who may take the step. */
  actor: Actor
  /** From which statuses, and to which (undefined: stays where it is). */
  from: RequestStatus[]
  to?: RequestStatus
  event: string
  closes: boolean
  /** Statuses in which the step is already satisfied: a quiet no-op. */
  noop?: RequestStatus[]
}

const afterDelivery = statuses.filter((s) => s !== 'submitted')

function expectationFor (action: Action): Expectation {
  switch (action.kind) {
    case 'retrieve': return { actor: 'recipient', from: ['submitted'], to: 'delivered', event: 'request.retrieved', closes: false, noop: afterDelivery }
    case 'deliver': return { actor: 'gateway', from: ['submitted'], to: 'delivered', event: 'request.delivered', closes: false, noop: afterDelivery }
    case 'acknowledge': return { actor: 'recipient', from: ['submitted', 'delivered'], to: 'acknowledged', event: 'request.acknowledged', closes: false }
    case 'request_clarification': return { actor: 'recipient', from: ['submitted', 'delivered', 'acknowledged', 'partially_executed'], to: 'clarification_requested', event: 'request.clarification_requested', closes: false }
    case 'clarify': return { actor: 'sender', from: ['clarification_requested'], to: 'acknowledged', event: 'request.clarified', closes: false }
    case 'extend': return { actor: 'recipient', from: open, event: 'request.extended', closes: false }
    case 'respond': return { actor: 'recipient', from: open, to: action.outcome, event: `request.${action.outcome}`, closes: action.outcome !== 'partially_executed' }
    case 'withdraw': return { actor: 'sender', from: open, to: 'withdrawn', event: 'request.withdrawn', closes: true }
    case 'deem_accepted': return { actor: 'gateway', from: open, to: 'deemed_accepted', event: 'request.deemed_accepted', closes: true }
  }
}

const label = (action: Action): string => action.kind === 'respond' ? `respond(${action.outcome})` : action.kind

t.test('open and closed statuses', async (t) => {
  for (const status of open) t.ok(isOpen(status), `${status} is open`)
  for (const status of closed) t.notOk(isOpen(status), `${status} is closed`)
})

t.test('every action × status × actor', async (t) => {
  let legal = 0
  let illegal = 0
  let noops = 0
  for (const action of actions) {
    const expected = expectationFor(action)
    for (const status of statuses) {
      for (const actor of actors) {
        const decision = decide(status, actor, action)
        const what = `${actor} ${label(action)} on ${status}`
        if (expected.noop?.includes(status) === true) {
          // Already satisfied (a second delivery, a fetch after the webhook): nothing to do, nothing to refuse.
          t.same(decision, { ok: true, noop: true }, `${what}: no-op`)
          noops++
        } else if (actor === expected.actor && expected.from.includes(status)) {
          t.same(decision, { ok: true, status: expected.to ?? status, event: expected.event, closes: expected.closes }, `${what}: → ${expected.to ?? status}, ${expected.event}${expected.closes ? ', closes' : ''}`)
          legal++
        } else {
          if (!t.match(decision, { ok: false, reason: 'illegal', detail: String }, `${what}: illegal`)) continue
          const detail = (decision as { detail: string }).detail
          if (actor !== expected.actor) {
            t.ok(detail.includes(expected.actor), `${what}: the detail names who may (${detail})`)
          } else {
            t.ok(detail.includes(status), `${what}: the detail names the current status (${detail})`)
          }
          illegal++
        }
      }
    }
  }
  t.equal(legal + illegal + noops, actions.length * statuses.length * actors.length, 'every combination was decided')
  t.comment(`${legal} legal, ${illegal} illegal, ${noops} no-ops`)
})

t.test('the lifecycle as the design draws it', async (t) => {
  const step = (status: RequestStatus, actor: Actor, action: Action): RequestStatus => {
    const decision = decide(status, actor, action)
    if (!decision.ok || decision.noop === true) throw new Error(`${actor} ${label(action)} on ${status} was not a step: ${JSON.stringify(decision)}`)
    return decision.status
  }
  let status: RequestStatus = 'submitted'
  status = step(status, 'gateway', { kind: 'deliver' })
  t.equal(status, 'delivered', 'the webhook delivers')
  t.same(decide(status, 'recipient', { kind: 'retrieve' }), { ok: true, noop: true }, 'the recipient\'s fetch after the webhook changes nothing')
  status = step(status, 'recipient', { kind: 'acknowledge' })
  status = step(status, 'recipient', { kind: 'request_clarification' })
  t.equal(status, 'clarification_requested', 'the recipient asks for more')
  status = step(status, 'sender', { kind: 'clarify' })
  t.equal(status, 'acknowledged', 'the sender\'s answer returns it to acknowledged')
  status = step(status, 'recipient', { kind: 'extend' })
  t.equal(status, 'acknowledged', 'an extension leaves the status as it is')
  status = step(status, 'recipient', { kind: 'respond', outcome: 'partially_executed' })
  t.equal(status, 'partially_executed', 'a partial answer keeps it open')
  t.ok(isOpen(status), 'open')
  const final = decide(status, 'recipient', { kind: 'respond', outcome: 'executed' })
  t.match(final, { ok: true, status: 'executed', closes: true }, 'the final answer closes it')

  const retrieved = decide('submitted', 'recipient', { kind: 'retrieve' })
  t.match(retrieved, { ok: true, status: 'delivered', event: 'request.retrieved' }, 'a pull-only recipient\'s first fetch delivers it')
  t.same(decide('delivered', 'gateway', { kind: 'deliver' }), { ok: true, noop: true }, 'a webhook after the fetch is a no-op')

  for (const from of ['submitted', 'delivered', 'acknowledged', 'clarification_requested', 'partially_executed'] as const) {
    t.match(decide(from, 'sender', { kind: 'withdraw' }), { ok: true, status: 'withdrawn', closes: true }, `the sender may withdraw while ${from}`)
  }
  t.match(decide('withdrawn', 'recipient', { kind: 'acknowledge' }), { ok: false, detail: /withdrawn/ }, 'acknowledging a withdrawn request is illegal')
  t.match(decide('acknowledged', 'recipient', { kind: 'acknowledge' }), { ok: false, detail: /acknowledged/ }, 'acknowledging twice is illegal')
  t.match(decide('delivered', 'sender', { kind: 'respond', outcome: 'executed' }), { ok: false, detail: /recipient/ }, 'the sender cannot answer its own request')
})

t.test('a clarification answered after a partial answer returns the request to partially_executed', async (t) => {
  t.match(decide('clarification_requested', 'sender', { kind: 'clarify' }, { partiallyAnswered: true }), { ok: true, status: 'partially_executed', event: 'request.clarified', closes: false })
  t.match(decide('clarification_requested', 'sender', { kind: 'clarify' }, { partiallyAnswered: false }), { ok: true, status: 'acknowledged' })
})
