import type { Redis } from 'ioredis'
import { expandAuditBody } from '../domain/audit-body.js'
import { ChainVerifier, type ChainEntry, type VerificationResult } from '../domain/audit-chain.js'
import type { AuditEvent, EventType } from '../domain/events.js'
import type { Keys } from './keys.js'
import { decodeStreamEntry, type LoggedEvent } from './request-store.js'

export interface AuditQuery {
  /** Stream ids are milliseconds: a time range is an id range. */
  fromMs?: number
  toMs?: number
  /** Only events of requests between these parties; undefined = every pair (gateway-wide oversight). */
  visibleTo?: string
  authority?: string
  requestId?: string
  types?: EventType[]
  limit: number
  /** Last stream id of the previous page (exclusive). */
  after?: string
}

export interface AuditPage {
  items: Array<LoggedEvent & { hash: string }>
  /** Where the next page starts; absent when the range is exhausted. */
  next?: string
}

const batchSize = 1000
const maxScanPerPage = 20_000
const verifyBatchSize = 5000

const involves = (event: AuditEvent, authority: string): boolean => event.sender === authority || event.recipient === authority || event.actor.authority === authority

/** Reading and verifying the audit stream (appends happen only inside the commit scripts). */
export class AuditLog {
  constructor (private readonly redis: Redis, private readonly keys: Keys) {}

  async list (query: AuditQuery): Promise<AuditPage> {
    const end = query.toMs === undefined ? '+' : String(query.toMs)
    let start = query.after === undefined ? (query.fromMs === undefined ? '-' : String(query.fromMs)) : `(${query.after}`
    const items: AuditPage['items'] = []
    let scanned = 0
    let lastId: string | undefined
    while (items.length < query.limit && scanned < maxScanPerPage) {
      const entries = await this.redis.xrange(this.keys.auditStream, start, end, 'COUNT', batchSize) as Array<[string, string[]]>
      if (entries.length === 0) return { items }
      for (const [id, fields] of entries) {
        scanned++
        lastId = id
        const event = decodeStreamEntry(id, fields)
        const visible = query.visibleTo === undefined || involves(event, query.visibleTo)
        const matches = visible &&
          (query.authority === undefined || involves(event, query.authority)) &&
          (query.requestId === undefined || event.requestId === query.requestId) &&
          (query.types === undefined || query.types.includes(event.type))
        if (matches) {
          const { body: _body, ...logged } = event
          items.push(logged)
          if (items.length >= query.limit) return { items, next: id }
        }
      }
      if (entries.length < batchSize) return { items }
      start = `(${lastId as string}`
    }
    return { items, next: lastId }
  }

  /** Walks the whole chain in order; reports ok with the count, or the first entry that does not fit. */
  async verify (): Promise<VerificationResult> {
    const verifier = new ChainVerifier()
    let start = '-'
    for (;;) {
      const entries = await this.redis.xrange(this.keys.auditStream, start, '+', 'COUNT', verifyBatchSize) as Array<[string, string[]]>
      const chain = entries.map(toChainEntry)
      for (let i = 0; i < chain.length; i++) {
        verifier.feed(chain[i])
        if (verifier.failed) {
          verifier.refine(chain[i + 1] ?? (await this.#entryAfter(chain[i].id)))
          return verifier.finish(undefined)
        }
      }
      if (entries.length < verifyBatchSize) break
      start = `(${entries[entries.length - 1][0]}`
    }
    const tip = await this.redis.hmget(this.keys.auditTip, 'seq', 'hash')
    return verifier.finish(tip[0] === null ? { seq: 0, hash: '' } : { seq: Number(tip[0]), hash: tip[1] ?? '' })
  }

  async #entryAfter (id: string): Promise<ChainEntry | undefined> {
    const [entry] = await this.redis.xrange(this.keys.auditStream, `(${id}`, '+', 'COUNT', 1) as Array<[string, string[]]>
    return entry === undefined ? undefined : toChainEntry(entry)
  }
}

function toChainEntry ([id, fields]: [string, string[]]): ChainEntry {
  const map: Record<string, string> = {}
  for (let i = 0; i < fields.length; i += 2) map[fields[i]] = fields[i + 1]
  return { id, seq: Number(map.seq), hash: map.hash ?? '', body: expandAuditBody(map.body ?? '') }
}
