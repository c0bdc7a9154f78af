import { hash } from 'node:crypto'
import { uuidv7 } from 'uuidv7'
import { directoryOf, findAgreement } from '../config/gateway-config.js'
import { canonicalJson } from '../domain/canonical-json.js'
import { checkExtension, computeDeadlines, nextDeadlineAt } from '../domain/deadlines.js'
import { actorOf, gatewayActor, type AuditEvent, type EventType } from '../domain/events.js'
import { decide, type Action } from '../domain/lifecycle.js'
import { refusalCatalogue } from '../domain/refusal-grounds.js'
import { aggregateDelta } from '../domain/turnaround.js'
import { sideOf, type Principal } from '../domain/permissions.js'
import type { GatewayConfig, RequestType } from '../domain/types.js'
import { problem } from '../http/problem.js'
import type { PayloadCipher } from '../store/payload-cipher.js'
import type { Change, RequestStore, StoredRequest } from '../store/request-store.js'

export interface SubmittedBody {
  type: RequestType
  recipient: string
  senderReference: string
  priority: 'normal' | 'urgent'
  urgency?: { requestedBy?: string }
  legalBasis?: string
  language: string
  handling: { code: string }
  custody?: { releaseDate?: string }
  [field: string]: unknown
}

export type SubmitResult =
  | { kind: 'created', request: StoredRequest, content: SubmittedBody, /** The content as canonical JSON, already computed for the hash. */ contentJson: string }
  | { kind: 'replayed', request: StoredRequest }

/** Next pending deadline: what inbox and outbox are ordered by. */
export function boxScore (request: Pick<StoredRequest, 'ackDue' | 'respDue' | 'acknowledgedAt'>): number {
  if (request.ackDue !== undefined && request.acknowledgedAt === undefined) return Math.min(request.ackDue, request.respDue)
  return request.respDue
}

export function auditEvent (request: Pick<StoredRequest, 'id' | 'type' | 'sender' | 'recipient'>, type: EventType, actor: AuditEvent['actor'], at: number, data: AuditEvent['data'] = {}): AuditEvent {
  return {
    type,
    at: new Date(at).toISOString(),
    requestId: request.id,
    requestType: request.type,
    sender: request.sender,
    recipient: request.recipient,
    actor,
    data
  }
}

const maxCommitAttempts = 5

/** Submission, reading and every transition, as the API and the workers both need them. */
export class RequestService {
  constructor (
    readonly store: RequestStore,
    private readonly cipher: PayloadCipher,
    private readonly config: GatewayConfig,
    private readonly idempotencyTtlSeconds: number,
    private readonly now: () => number = Date.now
  ) {}

  async submit (principal: Principal, body: SubmittedBody, idempotencyKey?: string): Promise<SubmitResult> {
    const sender = principal.authority
    if (!this.config.authorities.some((authority) => authority.id === body.recipient)) {
      throw problem(422, `Recipient ${body.recipient} is not a registered authority.`, { errors: [{ pointer: '/recipient', detail: 'unknown authority' }] })
    }
    if (body.recipient === sender) {
      throw problem(422, 'An authority cannot send a request to itself.', { errors: [{ pointer: '/recipient', detail: 'is the sender' }] })
    }
    const agreement = findAgreement(this.config, sender, body.recipient, body.type, body.legalBasis as never)
    if (agreement === undefined) {
      const basis = body.legalBasis === undefined ? '' : ` under ${body.legalBasis}`
      throw problem(422, `No agreement between ${sender} and ${body.recipient} covers ${body.type} requests${basis}.`, {
        slug: 'no-agreement',
        errors: [{ pointer: body.legalBasis === undefined ? '/recipient' : '/legalBasis', detail: 'no matching agreement' }]
      })
    }
    const submittedAt = this.now()
    const deadlines = computeDeadlines(agreement, {
      submittedAt: new Date(submittedAt),
      urgentBy: body.priority === 'urgent' ? body.urgency?.requestedBy : undefined,
      custodyReleaseDate: body.custody?.releaseDate
    })
    const id = uuidv7()
    const bodyText = canonicalJson(body)
    const sealedContent = this.cipher.sealBinary(id, bodyText)
    const request: StoredRequest = {
      id,
      type: body.type,
      sender,
      recipient: body.recipient,
      status: 'submitted',
      version: 1,
      senderReference: body.senderReference,
      priority: body.priority,
      handlingCode: body.handling.code,
      legalBasis: agreement.legalBasis,
      agreementId: agreement.id,
      language: body.language,
      submittedAt,
      ackDue: deadlines.acknowledgement?.getTime(),
      respDue: deadlines.response.getTime(),
      respDueOriginal: deadlines.response.getTime(),
      ackOverdue: false,
      respOverdue: false,
      sealedContent,
      eventIds: [],
      deliveryFailures: []
    }
    const event = auditEvent(request, 'request.submitted', actorOf(principal), submittedAt, {
      status: 'submitted',
      agreementId: agreement.id,
      legalBasis: agreement.legalBasis,
      priority: body.priority,
      handlingCode: body.handling.code,
      acknowledgementDue: deadlines.acknowledgement?.toISOString() ?? null,
      responseDue: deadlines.response.toISOString(),
      pulledEarlierBy: deadlines.pulledEarlierBy ?? null
    })
    const outcome = await this.store.submit(
      { ...request, sealedContent, bodyHash: hash('sha256', bodyText, 'buffer') },
      boxScore(request),
      event,
      { key: idempotencyKey, ttlSeconds: this.idempotencyTtlSeconds },
      aggregateDelta(undefined, request),
      nextDeadlineAt(request, agreement.reminderAtFraction)
    )
    switch (outcome.outcome) {
      case 'created':
        return { kind: 'created', request, content: body, contentJson: bodyText }
      case 'replay': {
        const existing = await this.store.get(outcome.id)
        if (existing === undefined) throw new Error(`request ${outcome.id} named by a replay is missing`)
        return { kind: 'replayed', request: existing }
      }
      case 'idempotency_conflict':
        throw problem(422, 'This Idempotency-Key was already used with a different request body.', { slug: 'idempotency-key-reused' })
      case 'reference_conflict':
        throw problem(409, `senderReference ${JSON.stringify(body.senderReference)} is already used by another request.`, {
          slug: 'sender-reference-taken',
          requestId: outcome.id,
          errors: [{ pointer: '/senderReference', detail: 'already used by another request' }]
        })
    }
  }

  openContent (request: StoredRequest): unknown {
    if (request.sealedContent === undefined) throw new Error(`request ${request.id} was read without its payload`)
    return JSON.parse(this.cipher.open(request.id, request.sealedContent))
  }

  /**
   * A party's fetch of the full record: logged as a disclosure (who, when, which
   * request); the recipient's first fetch also delivers the request.
   */
  async disclose (principal: Principal, loaded: StoredRequest): Promise<StoredRequest> {
    let request = loaded
    const at = this.now()
    const disclosure = auditEvent(request, 'request.disclosed', actorOf(principal), at, { to: principal.authority })
    if (sideOf(principal, request) === 'recipient' && request.status === 'submitted') {
      // The payload never changes: the one already read goes with the record as it now stands.
      const delivered = await this.transition(request.id, principal, { kind: 'retrieve' }, { extraEvents: [disclosure] })
      if (delivered !== undefined) return { ...delivered, sealedContent: loaded.sealedContent }
      // Another fetch delivered it in between: answer with the record as it now stands.
      const current = await this.store.get(request.id, { payload: false })
      if (current !== undefined) request = { ...current, sealedContent: loaded.sealedContent }
    }
    const outcome = await this.store.commit(request, { events: [{ event: disclosure, listed: false }], box: { action: 'keep' } })
    if (outcome.outcome === 'missing') throw problem(404, 'No such request.')
    return request
  }

  acknowledge (principal: Principal, id: string, input: { recipientReference?: string, estimatedAnswerDate?: string }): Promise<StoredRequest | undefined> {
    return this.transition(id, principal, { kind: 'acknowledge' }, {
      fields: (_request, at) => ({
        acknowledgedAt: at,
        ...(input.recipientReference === undefined ? {} : { recipientReference: input.recipientReference }),
        ...(input.estimatedAnswerDate === undefined ? {} : { estimatedAnswerDate: input.estimatedAnswerDate })
      }),
      data: { estimatedAnswerDate: input.estimatedAnswerDate ?? null }
    })
  }

  /** Asking for clarification shows the request was received: it acknowledges it too when that step is still open. */
  requestClarification (principal: Principal, id: string, questions: string): Promise<StoredRequest | undefined> {
    return this.transition(id, principal, { kind: 'request_clarification' }, {
      fields: (request, at) => ({
        ...(request.acknowledgedAt === undefined ? { acknowledgedAt: at } : {}),
        ...this.withMessage(request, { kind: 'questions', at, authority: principal.authority, text: questions })
      })
    })
  }

  clarify (principal: Principal, id: string, answers: string): Promise<StoredRequest | undefined> {
    return this.transition(id, principal, { kind: 'clarify' }, {
      fields: (request, at) => this.withMessage(request, { kind: 'answers', at, authority: principal.authority, text: answers })
    })
  }

  extend (principal: Principal, id: string, input: { responseDeadline: string, reason: string }): Promise<StoredRequest | undefined> {
    const requested = new Date(input.responseDeadline)
    return this.transition(id, principal, { kind: 'extend' }, {
      check: (request) => {
        const agreement = directoryOf(this.config).agreementById(request.agreementId)
        const verdict = agreement === undefined
          ? { ok: false as const, reason: `agreement ${request.agreementId} is no longer configured` }
          : checkExtension(agreement, new Date(request.respDueOriginal), new Date(request.respDue), requested)
        if (!verdict.ok) throw problem(422, `The extension cannot be granted: ${verdict.reason}.`, { slug: 'extension-refused', errors: [{ pointer: '/responseDeadline', detail: verdict.reason }] })
      },
      fields: (request, at) => ({
        respDue: requested.getTime(),
        respOverdue: 0,
        ...this.withMessage(request, { kind: 'extension_reason', at, authority: principal.authority, text: input.reason })
      }),
      data: { responseDue: requested.toISOString() }
    })
  }

  respond (principal: Principal, id: string, input: { outcome: 'partially_executed' | 'executed' | 'refused', grounds?: string[], text?: string }): Promise<StoredRequest | undefined> {
    return this.transition(id, principal, { kind: 'respond', outcome: input.outcome }, {
      check: (request) => {
        if (input.outcome !== 'refused') return
        const catalogue = refusalCatalogue(request.type, request.legalBasis)
        const grounds = input.grounds ?? []
        const unknown = grounds.filter((ground) => !catalogue.includes(ground))
        if (grounds.length === 0 || unknown.length > 0) {
          throw problem(422, `A refusal under ${request.legalBasis} must name grounds from: ${catalogue.join(', ')}.`, {
            slug: 'refusal-grounds',
            errors: [{ pointer: '/grounds', detail: grounds.length === 0 ? 'at least one ground is required' : `not in the catalogue: ${unknown.join(', ')}` }]
          })
        }
      },
      fields: (request, at) => ({
        respondedAt: at,
        ...(request.acknowledgedAt === undefined ? { acknowledgedAt: at } : {}),
        ...(input.text === undefined ? {} : this.withMessage(request, { kind: input.outcome, at, authority: principal.authority, text: input.text }))
      }),
      data: { outcome: input.outcome, grounds: input.grounds ?? [] }
    })
  }

  withdraw (principal: Principal, id: string, reason?: string): Promise<StoredRequest | undefined> {
    return this.transition(id, principal, { kind: 'withdraw' }, {
      fields: (request, at) => (reason === undefined ? {} : this.withMessage(request, { kind: 'withdrawal_reason', at, authority: principal.authority, text: reason }))
    })
  }

  /** Where in each clock its reminder falls, by the request's agreement (undefined: the default). */
  reminderFraction (request: Pick<StoredRequest, 'agreementId'>): number | undefined {
    return directoryOf(this.config).agreementById(request.agreementId)?.reminderAtFraction
  }

  /** When a request in this state next needs the deadline worker (null: never). */
  nextDeadline (request: StoredRequest): number | null {
    return nextDeadlineAt(request, this.reminderFraction(request)) ?? null
  }

  /** The free-text exchange (questions, answers, reasons): personal data, so sealed like the payload. */
  messages (request: StoredRequest): Message[] {
    return request.sealedMessages === undefined ? [] : JSON.parse(this.cipher.open(request.id, request.sealedMessages)) as Message[]
  }

  private withMessage (request: StoredRequest, message: Message): Record<string, string> {
    return { messages: this.cipher.seal(request.id, JSON.stringify([...this.messages(request), message])) }
  }

  /**
   * Records a fact that leaves the status as it is (an overdue flag, a reminder,
   * a failed delivery), atomically with its event. `build` sees the current record
   * and returns undefined when there is nothing (more) to record. `loaded`: the
   * record as the caller just read it, tried first.
   */
  async record (id: string, build: (request: StoredRequest, at: number) => { event: EventType, fields: Record<string, string | number>, data?: AuditEvent['data'] } | undefined, loaded?: StoredRequest): Promise<StoredRequest | undefined> {
    for (let attempt = 0; attempt < maxCommitAttempts; attempt++) {
      // A record the caller just read saves a round trip; a stale one only costs a retry.
      const request = attempt === 0 && loaded !== undefined ? loaded : await this.store.get(id, { payload: false })
      if (request === undefined) return undefined
      const at = this.now()
      const fact = build(request, at)
      if (fact === undefined) return undefined
      const next = applyFields(request, fact.fields)
      const outcome = await this.store.commit(request, {
        expectedVersion: request.version,
        fields: fact.fields,
        events: [{ event: auditEvent(request, fact.event, gatewayActor, at, { status: request.status, ...fact.data }), listed: true }],
        box: { action: 'keep' },
        aggregates: aggregateDelta(request, next),
        nextDeadlineAt: this.nextDeadline(next)
      })
      if (outcome.outcome === 'ok') return { ...next, version: outcome.version, eventIds: [...request.eventIds, ...outcome.streamIds] }
      if (outcome.outcome === 'missing') return undefined
    }
    throw new Error(`request ${id} kept changing while recording a fact`)
  }

  /**
   * Applies an action through the pure lifecycle and commits it atomically,
   * re-deciding if another change landed in between. Returns undefined for a
   * no-op (an action already satisfied); throws 404 when the request does not
   * exist for the caller and 409 for an illegal transition.
   */
  async transition (id: string, who: Principal | 'gateway', action: Action, options: TransitionOptions = {}): Promise<StoredRequest | undefined> {
    for (let attempt = 0; attempt < maxCommitAttempts; attempt++) {
      const request = await this.store.get(id, { payload: false })
      const side = request === undefined ? undefined : who === 'gateway' ? 'gateway' : sideOf(who, request)
      if (request === undefined || side === undefined) throw problem(404, `No request ${id}.`)
      const decision = decide(request.status, side, action, { partiallyAnswered: request.respondedAt !== undefined })
      if (!decision.ok) throw problem(409, decision.detail, { slug: 'illegal-transition', currentStatus: request.status })
      if (decision.noop === true) return undefined
      options.check?.(request)
      const at = this.now()
      const fields: Record<string, string | number> = { status: decision.status, ...options.fields?.(request, at) }
      // Any step of the recipient proves the request reached it.
      if (request.deliveredAt === undefined && (decision.status === 'delivered' || side === 'recipient')) fields.deliveredAt = at
      if (decision.closes) fields.closedAt = at
      const next = applyFields(request, fields)
      const eventActor = who === 'gateway' ? gatewayActor : actorOf(who)
      const change: Change = {
        expectedVersion: request.version,
        fields,
        events: [
          ...(options.leadingEvents?.(request, at) ?? []).map((event) => ({ event, listed: true })),
          { event: auditEvent(request, decision.event, eventActor, at, { from: request.status, status: decision.status, ...options.data }), listed: true },
          ...(options.extraEvents ?? []).map((event) => ({ event, listed: false }))
        ],
        box: decision.closes ? { action: 'close', score: at } : { action: 'rescore', score: boxScore(next) },
        aggregates: aggregateDelta(request, next),
        nextDeadlineAt: this.nextDeadline(next)
      }
      const outcome = await this.store.commit(request, change)
      if (outcome.outcome === 'ok') return { ...next, version: outcome.version, eventIds: [...request.eventIds, ...outcome.streamIds] }
      if (outcome.outcome === 'missing') throw problem(404, `No request ${id}.`)
    }
    throw problem(503, 'The request is changing too fast; retry shortly.')
  }
}

export interface Message {
  kind: string
  at: number
  authority: string
  text: string
}

export interface TransitionOptions {
  /** Refuses the action for reasons beyond the lifecycle (e.g. an extension past the cap); throws a problem. */
  check?: (request: StoredRequest) => void
  fields?: (request: StoredRequest, at: number) => Record<string, string | number>
  data?: AuditEvent['data']
  /** Events recorded in the request's history before the transition's own (e.g. response_overdue before deemed_accepted). */
  leadingEvents?: (request: StoredRequest, at: number) => AuditEvent[]
  /** Audit-only events committed with the transition (e.g. a disclosure record). */
  extraEvents?: AuditEvent[]
}

const numericFields = new Set(['submittedAt', 'deliveredAt', 'acknowledgedAt', 'respondedAt', 'closedAt', 'ackDue', 'respDue', 'respDueOriginal', 'ackRemindedFor', 'respRemindedFor'])

function applyFields (request: StoredRequest, fields: Record<string, string | number>): StoredRequest {
  const next: StoredRequest = { ...request }
  for (const [field, value] of Object.entries(fields)) {
    if (field === 'ackOverdue' || field === 'respOverdue') next[field] = value === 1 || value === '1'
    else if (field === 'messages') next.sealedMessages = String(value)
    else if (numericFields.has(field)) (next as unknown as Record<string, number>)[field] = Number(value)
    else (next as unknown as Record<string, unknown>)[field] = value
  }
  return next
}
