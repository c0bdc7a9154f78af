import type { EventType } from './events.js'
import type { Side } from './permissions.js'
import { openStatuses, type RequestStatus } from './types.js'

/** What a party (or the gateway itself) asks to happen to a request. */
export type Action =
  | { kind: 'retrieve' }
  | { kind: 'deliver' }
  | { kind: 'acknowledge' }
  | { kind: 'request_clarification' }
  | { kind: 'clarify' }
  | { kind: 'extend' }
  | { kind: 'respond', outcome: 'partially_executed' | 'executed' | 'refused' }
  | { kind: 'withdraw' }
  | { kind: 'deem_accepted' }

export type Actor = Side | 'gateway'

export type Decision =
  | { ok: true, status: RequestStatus, event: EventType, closes: boolean, noop?: false }
  | { ok: true, noop: true }
  | { ok: false, reason: 'illegal', detail: string }

/** Facts of the request beyond its status that some transitions depend on. */
export interface LifecycleContext {
  /** A partial answer was given: a clarification returns the request to partially_executed. */
  partiallyAnswered: boolean
}

interface Rule {
  actor: Actor
  from: readonly RequestStatus[]
  to: (action: Action, current: RequestStatus, context: LifecycleContext) => RequestStatus
  event: (action: Action) => EventType
  /** An action that is already satisfied (a second delivery) is a quiet no-op, not a conflict. */
  noopFrom?: readonly RequestStatus[]
}

const closedStatuses: readonly RequestStatus[] = ['executed', 'refused', 'withdrawn', 'deemed_accepted']
const afterDelivery: readonly RequestStatus[] = ['delivered', 'acknowledged', 'clarification_requested', 'partially_executed', ...closedStatuses]

const rules: Record<Action['kind'], Rule> = {
  retrieve: { actor: 'recipient', from: ['submitted'], to: () => 'delivered', event: () => 'request.retrieved', noopFrom: afterDelivery },
  deliver: { actor: 'gateway', from: ['submitted'], to: () => 'delivered', event: () => 'request.delivered', noopFrom: afterDelivery },
  acknowledge: { actor: 'recipient', from: ['submitted', 'delivered'], to: () => 'acknowledged', event: () => 'request.acknowledged' },
  request_clarification: {
    actor: 'recipient',
    from: ['submitted', 'delivered', 'acknowledged', 'partially_executed'],
    to: () => 'clarification_requested',
    event: () => 'request.clarification_requested'
  },
  clarify: {
    actor: 'sender',
    from: ['clarification_requested'],
    to: (_action, _current, context) => (context.partiallyAnswered ? 'partially_executed' : 'acknowledged'),
    event: () => 'request.clarified'
  },
  extend: { actor: 'recipient', from: openStatuses, to: (_action, current) => current, event: () => 'request.extended' },
  respond: {
    actor: 'recipient',
    from: openStatuses,
    to: (action) => (action as Extract<Action, { kind: 'respond' }>).outcome,
    event: (action) => `request.${(action as Extract<Action, { kind: 'respond' }>).outcome}` as EventType
  },
  withdraw: { actor: 'sender', from: openStatuses, to: () => 'withdrawn', event: () => 'request.withdrawn' },
  deem_accepted: { actor: 'gateway', from: openStatuses, to: () => 'deemed_accepted', event: () => 'request.deemed_accepted' }
}

const verbs: Record<Action['kind'], string> = {
  retrieve: 'retrieve',
  deliver: 'deliver',
  acknowledge: 'acknowledge',
  request_clarification: 'ask for clarification of',
  clarify: 'clarify',
  extend: 'extend the deadline of',
  respond: 'answer',
  withdraw: 'withdraw',
  deem_accepted: 'deem accepted'
}

export const isOpen = (status: RequestStatus): boolean => openStatuses.includes(status)

/** The lifecycle of DESIGN.md §2 as one pure decision: may this actor do this now, and what follows. */
export function decide (current: RequestStatus, actor: Actor, action: Action, context: LifecycleContext = { partiallyAnswered: false }): Decision {
  const rule = rules[action.kind]
  if (rule.noopFrom?.includes(current) === true) return { ok: true, noop: true }
  if (actor !== rule.actor) {
    return { ok: false, reason: 'illegal', detail: `only the ${rule.actor} may ${verbs[action.kind]} a request` }
  }
  if (!rule.from.includes(current)) {
    return { ok: false, reason: 'illegal', detail: `cannot ${verbs[action.kind]} a request whose status is ${current}` }
  }
  const status = rule.to(action, current, context)
  return { ok: true, status, event: rule.event(action), closes: closedStatuses.includes(status) }
}
