import type { Redis, Result } from 'ioredis'
import { compactAuditBody, expandAuditBody } from '../domain/audit-body.js'
import { bodyDigest, linkHash } from '../domain/audit-chain.js'
import { canonicalJson } from '../domain/canonical-json.js'
import type { AuditEvent } from '../domain/events.js'
import type { AggregateDelta } from '../domain/turnaround.js'
import type { RequestStatus, RequestType } from '../domain/types.js'
import { createKeys, type Keys } from './keys.js'
import { claimDueDeadlinesLua, commitChangeLua, listBoxLua, rescheduleDeadlineLua, submitRequestLua } from './scripts.js'

/** A request as kept in Redis: a hash of small fields, the payload sealed. */
export interface StoredRequest {
  id: string
  type: RequestType
  sender: string
  recipient: string
  status: RequestStatus
  version: number
  senderReference: string
  priority: 'normal' | 'urgent'
  handlingCode: string
  legalBasis: string
  agreementId: string
  language: string
  submittedAt: number
  deliveredAt?: number
  acknowledgedAt?: number
  respondedAt?: number
  closedAt?: number
  ackDue?: number
  respDue: number
  respDueOriginal: number
  ackOverdue: boolean
  respOverdue: boolean
  /** The deadline a reminder was last sent for, so that a re-run job sends none. */
  ackRemindedFor?: number
  respRemindedFor?: number
  recipientReference?: string
  estimatedAnswerDate?: string
  /**
   * The sealed payload: binary from its own key, or the text form inside records
   * written by earlier versions. Absent when the record was read without it.
   */
  sealedContent?: string | Buffer
  sealedMessages?: string
  eventIds: string[]
  /** Markers of deliveries given up on (deliveryFailed_<event>_<authority>), so each is recorded once. */
  deliveryFailures: string[]
}

export interface NewRequest {
  id: string
  type: RequestType
  sender: string
  recipient: string
  senderReference: string
  priority: 'normal' | 'urgent'
  handlingCode: string
  legalBasis: string
  agreementId: string
  language: string
  submittedAt: number
  ackDue?: number
  respDue: number
  sealedContent: Buffer
  /** SHA-256 of the canonical body. */
  bodyHash: Buffer
}

export type SubmitOutcome =
  | { outcome: 'created', id: string }
  | { outcome: 'replay', id: string }
  | { outcome: 'idempotency_conflict', id: string }
  | { outcome: 'reference_conflict', id: string }

/** What a committed change does to a request: fields to set, events to log, index moves. */
export interface Change {
  expectedVersion?: number
  fields?: Record<string, string | number>
  events: Array<{ event: AuditEvent, listed: boolean }>
  box: { action: 'keep' } | { action: 'rescore', score: number } | { action: 'close', score: number }
  aggregates?: AggregateDelta
  /** When the request next needs the deadline worker after this change: ms, null for never, undefined to leave as is. */
  nextDeadlineAt?: number | null
}

export type CommitOutcome =
  | { outcome: 'ok', version: number, streamIds: string[] }
  | { outcome: 'missing' }
  | { outcome: 'stale', version: number, status: RequestStatus }

export interface ReadOptions {
  /** Read the sealed payload too (default true). */
  payload?: boolean
}

export interface ListQuery {
  box: 'inbox' | 'outbox'
  authority: string
  status?: RequestStatus
  type?: RequestType
  counterpart?: string
  overdueOnly: boolean
  dueBefore?: number
  limit: number
  cursor?: { score: string, id: string }
  closed: boolean
  now: number
}

export interface ListPage {
  items: StoredRequest[]
  next?: { score: string, id: string }
}

export interface LoggedEvent extends AuditEvent {
  seq: number
  id: string
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rogSubmitRequest(...args: Array<string | number | Buffer>): Result<string[], Context>
    rogCommitChange(...args: Array<string | number | Buffer>): Result<string[], Context>
    rogClaimDueDeadlines(...args: Array<string | number>): Result<string[], Context>
    rogRescheduleDeadline(...args: Array<string | number>): Result<number, Context>
    rogListBox(...args: Array<string | number>): Result<string[], Context>
  }
}

const maxScanPerPage = 5000
/**
 * An event as the stream keeps it (its canonical body in stored form, see
 * domain/audit-body.ts) and the part of the canonical body's SHA-256 that the
 * chain link takes (see chainHash).
 */
export function encodeAuditEvent (event: AuditEvent): { stored: string, digest: Buffer } {
  const body = canonicalJson(event)
  return { stored: compactAuditBody(body), digest: bodyDigest(body) }
}

function optionalNumber (raw: string | undefined): number | undefined {
  return raw === undefined || raw === '' ? undefined : Number(raw)
}

type RecordMeta = Pick<StoredRequest, 'senderReference' | 'priority' | 'handlingCode' | 'legalBasis' | 'agreementId' | 'language'>

/**
 * The record's fixed descriptive fields, as one JSON array in a fixed order (an
 * object's keys would take as much room again in every record). Records
 * written before hold a JSON object with these keys.
 */
function encodeMeta (request: RecordMeta): string {
  return JSON.stringify([request.senderReference, request.priority, request.handlingCode, request.legalBasis, request.agreementId, request.language])
}

export function decodeMeta (text: string): RecordMeta {
  const parsed = JSON.parse(text) as RecordMeta | [string, RecordMeta['priority'], string, string, string, string]
  if (!Array.isArray(parsed)) return parsed
  const [senderReference, priority, handlingCode, legalBasis, agreementId, language] = parsed
  return { senderReference, priority, handlingCode, legalBasis, agreementId, language }
}

function parseStored (id: string, hash: Record<string, string>, payload: Buffer | null, withPayload: boolean): StoredRequest {
  const meta = decodeMeta(hash.meta)
  return {
    id,
    type: hash.type as RequestType,
    sender: hash.sender,
    recipient: hash.recipient,
    status: hash.status as RequestStatus,
    version: Number(hash.version),
    ...meta,
    submittedAt: Number(hash.submittedAt),
    deliveredAt: optionalNumber(hash.deliveredAt),
    acknowledgedAt: optionalNumber(hash.acknowledgedAt),
    respondedAt: optionalNumber(hash.respondedAt),
    closedAt: optionalNumber(hash.closedAt),
    ackDue: optionalNumber(hash.ackDue),
    respDue: Number(hash.respDue),
    respDueOriginal: Number(hash.respDueOriginal),
    ackOverdue: hash.ackOverdue === '1',
    respOverdue: hash.respOverdue === '1',
    ackRemindedFor: optionalNumber(hash.ackRemindedFor),
    respRemindedFor: optionalNumber(hash.respRemindedFor),
    recipientReference: hash.recipientReference || undefined,
    estimatedAnswerDate: hash.estimatedAnswerDate || undefined,
    sealedContent: withPayload ? payload ?? hash.content : undefined,
    sealedMessages: hash.messages || undefined,
    eventIds: hash.events ? hash.events.split(',') : [],
    deliveryFailures: Object.keys(hash).filter((field) => field.startsWith('deliveryFailed_'))
  }
}

/**
 * The audit chain's head as this connection expects it once its submissions in
 * flight are applied. Submissions pass the link computed here for that head
 * (see appendAudit): the script takes it only if the head is exactly the one
 * expected, and computes the link itself otherwise (another writer came in
 * between, a submission was a replay). After such a miss, new submissions wait
 * until those in flight have answered, and start again from the head the last
 * answer reports.
 */
class ChainHead {
  #head: { seq: number, raw: Buffer } | undefined
  #inFlight = 0
  #waiting: Array<() => void> = []

  /** The link to send for an event with this digest, or undefined while the head is unknown. */
  async next (digest: Buffer): Promise<{ seq: number, prev: Buffer, raw: Buffer } | undefined> {
    while (this.#head === undefined && this.#inFlight > 0) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    this.#inFlight++
    const head = this.#head
    if (head === undefined) return undefined
    const link = { seq: head.seq + 1, prev: head.raw, raw: linkHash(head.raw, digest, head.seq + 1) }
    this.#head = { seq: link.seq, raw: link.raw }
    return link
  }

  /** An answer: the head after it (undefined if unknown) and whether it is the one the link expected. */
  settle (link: { seq: number, raw: Buffer } | undefined, after: { seq: number, hash: string } | undefined): void {
    this.#inFlight--
    if (after === undefined || link === undefined || after.seq !== link.seq || after.hash !== link.raw.toString('hex')) this.#head = undefined
    if (this.#inFlight === 0 && after !== undefined) this.#head ??= { seq: after.seq, raw: Buffer.from(after.hash === '' ? '0'.repeat(64) : after.hash, 'hex') }
    if (this.#head !== undefined || this.#inFlight === 0) for (const resolve of this.#waiting.splice(0)) resolve()
  }

  /** Another append of this connection's (a committed change): the head is no longer known. */
  forget (): void {
    this.#head = undefined
  }
}

/** The request records, their indexes and the audit stream, over one Redis connection. */
export class RequestStore {
  readonly keys: Keys
  readonly #chain = new ChainHead()

  constructor (readonly redis: Redis, prefix?: string) {
    this.keys = createKeys(prefix)
    redis.defineCommand('rogSubmitRequest', { numberOfKeys: 9, lua: submitRequestLua })
    redis.defineCommand('rogCommitChange', { numberOfKeys: 8, lua: commitChangeLua })
    redis.defineCommand('rogClaimDueDeadlines', { numberOfKeys: 1, lua: claimDueDeadlinesLua })
    redis.defineCommand('rogRescheduleDeadline', { numberOfKeys: 2, lua: rescheduleDeadlineLua })
    redis.defineCommand('rogListBox', { numberOfKeys: 1, lua: listBoxLua })
  }

  async submit (request: NewRequest, boxScore: number, event: AuditEvent, idempotency: { key?: string, ttlSeconds: number }, aggregates?: AggregateDelta, nextDeadlineAt?: number): Promise<SubmitOutcome> {
    const { stored, digest } = encodeAuditEvent(event)
    // base64url: 21 bytes shorter than hex, and the record fits a smaller allocation.
    const bodyHash = request.bodyHash.toString('base64url')
    const meta = encodeMeta(request)
    const k = this.keys
    const link = await this.#chain.next(digest)
    let result: string[]
    try {
      result = await this.redis.rogSubmitRequest(
        k.request(request.id),
        k.payload(request.id),
        k.senderReferences(request.sender),
        k.idempotency(request.sender, idempotency.key ?? ''),
        k.box('inbox', request.recipient),
        k.box('outbox', request.sender),
        k.auditStream,
        k.auditTip,
        k.deadlines,
        request.id, request.senderReference, bodyHash, idempotency.ttlSeconds, idempotency.key === undefined ? '0' : '1',
        boxScore, stored, digest, aggregates === undefined ? '' : JSON.stringify(aggregates), k.prefix, request.sealedContent, request.bodyHash.toString('hex'),
        link === undefined ? '' : link.seq, link?.prev ?? '', link?.raw.toString('hex') ?? '', link?.raw ?? '',
        // The record's fields (ackOverdue and respOverdue are absent until set: absent reads as not overdue).
        request.type, request.sender, request.recipient, meta, request.submittedAt, request.ackDue ?? '', request.respDue,
        nextDeadlineAt ?? ''
      )
    } catch (error) {
      this.#chain.settle(link, undefined)
      throw error
    }
    this.#chain.settle(result[0] === 'created' ? link : undefined, { seq: Number(result[2]), hash: result[3] })
    return { outcome: result[0], id: result[1] } as SubmitOutcome
  }

  async get (id: string, options: ReadOptions = {}): Promise<StoredRequest | undefined> {
    const [found] = await this.getMany([id], options)
    return found
  }

  /**
   * Records, with their payloads unless `payload: false` (lists, lifecycle steps
   * and deadlines never open them), in one round trip.
   */
  async getMany (ids: string[], { payload = true }: ReadOptions = {}): Promise<StoredRequest[]> {
    if (ids.length === 0) return []
    const pipeline = this.redis.pipeline()
    for (const id of ids) {
      pipeline.hgetall(this.keys.request(id))
      if (payload) pipeline.getBuffer(this.keys.payload(id))
    }
    const results = (await pipeline.exec()) ?? []
    const stride = payload ? 2 : 1
    const found: StoredRequest[] = []
    for (let index = 0; index < ids.length; index++) {
      const [hashErr, hash] = results[stride * index]
      if (hashErr) throw hashErr
      let sealed: Buffer | null = null
      if (payload) {
        const [payloadErr, value] = results[stride * index + 1]
        if (payloadErr) throw payloadErr
        sealed = value as Buffer | null
      }
      const fields = hash as Record<string, string>
      if (fields.status !== undefined) found.push(parseStored(ids[index], fields, sealed, payload))
    }
    return found
  }

  async commit (request: Pick<StoredRequest, 'id' | 'sender' | 'recipient'>, change: Change): Promise<CommitOutcome> {
    const k = this.keys
    const encoded = change.events.map(({ event, listed }) => ({ ...encodeAuditEvent(event), listed }))
    // A single event carries the link for the head this connection expects (as submissions do);
    // the head after several is not known here.
    const link = encoded.length === 1 ? await this.#chain.next(encoded[0].digest) : undefined
    if (encoded.length > 1) this.#chain.forget()
    const args: Array<string | number | Buffer> = [
      change.expectedVersion ?? '',
      change.box.action,
      change.box.action === 'keep' ? 0 : change.box.score,
      change.aggregates === undefined ? '' : JSON.stringify(change.aggregates),
      k.prefix,
      change.nextDeadlineAt === undefined ? '' : change.nextDeadlineAt === null ? '-' : change.nextDeadlineAt,
      change.events.length,
      link === undefined ? '' : link.seq, link?.prev ?? '', link?.raw.toString('hex') ?? '', link?.raw ?? ''
    ]
    for (const { stored, digest, listed } of encoded) args.push(stored, digest, listed ? '1' : '0')
    for (const [field, value] of Object.entries(change.fields ?? {})) args.push(field, value)
    let result: string[]
    try {
      result = await this.redis.rogCommitChange(
        k.request(request.id),
        k.box('inbox', request.recipient), k.box('outbox', request.sender),
        k.box('inbox', request.recipient, true), k.box('outbox', request.sender, true),
        k.auditStream, k.auditTip, k.deadlines,
        ...args
      )
    } catch (error) {
      if (encoded.length === 1) this.#chain.settle(link, undefined)
      throw error
    }
    const outcome = result[0]
    const headAt = outcome === 'missing' ? 1 : outcome === 'stale' ? 3 : 2
    if (encoded.length === 1) this.#chain.settle(outcome === 'ok' ? link : undefined, { seq: Number(result[headAt]), hash: result[headAt + 1] })
    if (outcome === 'missing') return { outcome: 'missing' }
    if (outcome === 'stale') return { outcome: 'stale', version: Number(result[1]), status: result[2] as RequestStatus }
    return { outcome: 'ok', version: Number(result[1]), streamIds: result.slice(4) }
  }

  /** Requests whose next deadline is at or before `now`, leased to the caller until `leaseUntil`. */
  async claimDueDeadlines (now: number, leaseUntil: number, limit: number): Promise<Array<{ id: string, fireAt: number }>> {
    const reply = await this.redis.rogClaimDueDeadlines(this.keys.deadlines, now, leaseUntil, limit)
    const claimed: Array<{ id: string, fireAt: number }> = []
    for (let i = 0; i < reply.length; i += 2) claimed.push({ id: reply[i], fireAt: Number(reply[i + 1]) })
    return claimed
  }

  /**
   * Sets the next deadline of a request read at `version`; false when the record
   * changed since (that commit set it). `onlyIfMissing` leaves an existing entry.
   */
  async rescheduleDeadline (id: string, version: number, nextDeadlineAt: number | undefined, onlyIfMissing = false): Promise<boolean> {
    const written = await this.redis.rogRescheduleDeadline(this.keys.request(id), this.keys.deadlines, id, version, nextDeadlineAt ?? '-', onlyIfMissing ? '1' : '0')
    return written === 1
  }

  /**
   * Removes the deadline entry of a request whose record is gone. Version −1
   * matches no record, and the script drops the entry when the record is missing;
   * a record that exists keeps its entry.
   */
  async forgetDeadlineIfGone (id: string): Promise<void> {
    await this.rescheduleDeadline(id, -1, undefined)
  }

  /** When the request next needs the deadline worker (ms), if it has an entry. */
  async nextDeadlineOf (id: string): Promise<number | undefined> {
    const score = await this.redis.zscore(this.keys.deadlines, id)
    return score === null ? undefined : Number(score)
  }

  async list (query: ListQuery): Promise<ListPage> {
    const key = this.keys.box(query.box, query.authority, query.closed)
    let maxScore = query.dueBefore === undefined ? '+inf' : `(${query.dueBefore}`
    if (query.overdueOnly && !query.closed) maxScore = String(Math.min(query.now, query.dueBefore ?? Infinity))
    const result = await this.redis.rogListBox(
      key, this.keys.prefix,
      query.cursor?.score ?? '-inf', query.cursor?.id ?? '', maxScore,
      query.limit, maxScanPerPage,
      query.status ?? '', query.type ?? '',
      query.box === 'inbox' ? 'sender' : 'recipient', query.counterpart ?? '',
      query.overdueOnly ? '1' : '0'
    )
    const [lastScore, lastId, exhausted, ...ids] = result
    const items = await this.getMany(ids, { payload: false })
    return { items, next: exhausted === '1' ? undefined : { score: lastScore, id: lastId } }
  }

  async events (request: StoredRequest): Promise<LoggedEvent[]> {
    if (request.eventIds.length === 0) return []
    const pipeline = this.redis.pipeline()
    for (const id of request.eventIds) pipeline.xrange(this.keys.auditStream, id, id)
    const results = (await pipeline.exec()) ?? []
    return results.flatMap(([err, entries]) => {
      if (err) throw err
      return (entries as Array<[string, string[]]>).map(([id, fields]) => decodeStreamEntry(id, fields))
    })
  }
}

export function decodeStreamEntry (id: string, fields: string[]): LoggedEvent & { hash: string, body: string } {
  const map: Record<string, string> = {}
  for (let i = 0; i < fields.length; i += 2) map[fields[i]] = fields[i + 1]
  const body = expandAuditBody(map.body)
  return { ...(JSON.parse(body) as AuditEvent), seq: Number(map.seq), id, hash: map.hash, body }
}
