// A realistic request history, generated through the store layer exactly as the
// API and the workers would have written it: every request is submitted through
// RequestService, every step is a RequestService transition, and every deadline
// (reminders, overdue flags, deemed acceptance) is fired by the deadline worker's
// own processor, each at the simulated moment it would have happened. So every
// record, index, audit entry and aggregate comes out of the same Lua commits as
// in production; nothing is written by hand.
//
// Deterministic given the seed: each request draws from its own PRNG, seeded from
// (seed, index), so the history does not depend on the concurrency or on the order
// in which requests finish. Ids (uuidv7) and audit stream ids are not part of it.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../config/env.js'
import { directoryOf } from '../config/gateway-config.js'
import { pendingDeadlines, type Deadline } from '../domain/deadlines.js'
import { addDuration } from '../domain/duration.js'
import { decide, type Action } from '../domain/lifecycle.js'
import type { Principal, Side } from '../domain/permissions.js'
import { refusalCatalogue } from '../domain/refusal-grounds.js'
import type { Agreement, GatewayConfig, RequestStatus, RequestType } from '../domain/types.js'
import { ProblemError } from '../http/problem.js'
import type { PayloadCipher } from '../store/payload-cipher.js'
import type { RequestStore, StoredRequest } from '../store/request-store.js'
import { createDeadlineFirer } from '../../workers/deadlines.js'
import { RequestService, type SubmittedBody } from './request-service.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

// ---------------------------------------------------------------------------
// PRNG

/** mulberry32: a small, fast 32-bit PRNG; uniform in [0, 1). */
export function mulberry32 (state: number): () => number {
  let a = state | 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** murmur3's finaliser over (seed, index): independent streams per request. */
function mix (seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 0x632be5ab, 0xc2b2ae35)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h
}

export class Draw {
  readonly #next: () => number
  constructor (seed: number, index: number) {
    this.#next = mulberry32(mix(seed, index))
  }

  u (): number { return this.#next() }
  between (lo: number, hi: number): number { return lo + (hi - lo) * this.#next() }
  int (lo: number, hi: number): number { return Math.floor(this.between(lo, hi + 1)) }
  chance (p: number): boolean { return this.#next() < p }
  pick<T> (items: readonly T[]): T { return items[Math.floor(this.#next() * items.length)] }
  normal (): number {
    // Box–Muller; 1 − u keeps log() away from 0.
    return Math.sqrt(-2 * Math.log(1 - this.#next())) * Math.cos(2 * Math.PI * this.#next())
  }

  /** Log-normal with this median and shape. */
  logNormal (median: number, sigma: number): number { return median * Math.exp(sigma * this.normal()) }
}

const fnv = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

// ---------------------------------------------------------------------------
// Who sends what to whom

export interface SeedCombo {
  sender: string
  recipient: string
  type: RequestType
  agreement: Agreement
  weight: number
}

/** Every direction of every agreement in the config (wildcards expanded), with a stable weight. */
export function seedCombos (config: GatewayConfig): SeedCombo[] {
  const actors = config.authorities.filter((authority) => authority.oversight !== true).map((authority) => authority.id)
  const combos = new Map<string, SeedCombo>()
  const add = (sender: string, recipient: string, agreement: Agreement): void => {
    if (sender === recipient || !actors.includes(sender) || !actors.includes(recipient)) return
    // The agreement that would govern the request (precedence as the service applies it).
    const governing = directoryOf(config).agreementFor(sender, recipient, agreement.requestType, agreement.legalBasis)
    if (governing?.id !== agreement.id) return
    const key = `${sender}>${recipient}:${agreement.requestType}`
    if (combos.has(key)) return
    // Some directions carry much more traffic than others (1 to 6 parts).
    const weight = 1 + (fnv(key) % 6)
    combos.set(key, { sender, recipient, type: agreement.requestType, agreement, weight })
  }
  for (const agreement of config.agreements) {
    const [a, b] = agreement.parties
    const partners = b === '*' ? actors.filter((id) => id !== a) : [b]
    for (const partner of partners) {
      add(a, partner, agreement)
      add(partner, a, agreement)
    }
  }
  return [...combos.values()].sort((x, y) => (x.sender + x.recipient + x.type < y.sender + y.recipient + y.type ? -1 : 1))
}

/** How quickly an authority works, relative to the median: 0.7 (brisk) to 1.6 (slow). Stable per authority. */
export function speedOf (authority: string): number {
  return 0.7 + (fnv(`speed:${authority}`) % 91) / 100
}

// ---------------------------------------------------------------------------
// Bodies

let examples: { mla: Record<string, any>, repatriation: Record<string, any> } | undefined

function loadExamples (): NonNullable<typeof examples> {
  if (examples === undefined) {
    const read = (name: string): Record<string, any> => JSON.parse(readFileSync(join(packageRoot(), 'schemas', 'examples', `${name}.json`), 'utf8')) as Record<string, any>
    examples = { mla: read('mla-request'), repatriation: read('repatriation-request') }
  }
  return examples
}

const languages: Record<string, string> = { TR: 'tr', DE: 'de', FR: 'fr', NL: 'nl', EU: 'en' }
const languageOf = (authority: string): string => languages[authority.slice(0, 2)] ?? 'en'
const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

/** A valid request body of the combo's type, from schemas/examples, varied by the draw. */
export function seedBody (draw: Draw, combo: SeedCombo, senderReference: string, submittedAt: number): SubmittedBody {
  const base = loadExamples()[combo.type]
  const body = structuredClone(base)
  body.recipient = combo.recipient
  body.senderReference = senderReference
  body.legalBasis = combo.agreement.legalBasis
  body.language = languageOf(combo.sender)
  const translation = languageOf(combo.recipient)
  body.translation = translation === body.language ? { attached: false } : { attached: true, language: translation }
  if (combo.type === 'mla') {
    body.handling = { code: draw.pick(['H0', 'H1', 'H2', 'H2']) }
    if (draw.chance(0.2)) {
      body.priority = 'urgent'
      body.urgency = { reason: base.urgency.reason, requestedBy: isoDate(submittedAt + draw.between(5, 45) * DAY) }
    } else {
      body.priority = 'normal'
      delete body.urgency
    }
    if (draw.chance(0.7)) delete body.relatedRequests
  } else {
    body.priority = 'normal'
    delete body.urgency
    const custody = draw.u()
    if (custody < 0.55) {
      body.custody = { status: 'in_removal_centre', releaseDate: isoDate(submittedAt + draw.between(9, 75) * DAY), facility: base.custody.facility }
    } else if (custody < 0.75) {
      body.custody = { status: 'in_prison', releaseDate: isoDate(submittedAt + draw.between(20, 400) * DAY), facility: 'Prison (seeded)' }
    } else {
      body.custody = { status: 'at_liberty' }
    }
    body.nonRefoulement = { ...base.nonRefoulement, assessedOn: isoDate(submittedAt - draw.between(1, 20) * DAY) }
    body.proposedTransfer = { ...base.proposedTransfer, date: isoDate(submittedAt + draw.between(20, 80) * DAY) }
  }
  return body as SubmittedBody
}

// ---------------------------------------------------------------------------
// The plan of one request: what its parties do, and when

export type StepKind =
  | 'deliver' | 'delivery_failed' | 'retrieve' | 'recipient_fetch' | 'sender_fetch'
  | 'acknowledge' | 'request_clarification' | 'clarify' | 'extend'
  | 'partial' | 'execute' | 'refuse' | 'withdraw'

export interface Step {
  at: number
  kind: StepKind
  /** extend: how far into the allowed extension (0..1]; refuse: the grounds. */
  fraction?: number
  grounds?: string[]
}

/**
 * The steps of one request, in time order, given its deadlines. Pure: the same
 * draw and request give the same plan. Steps after `now` are cut by the caller.
 */
export function planSteps (draw: Draw, request: Pick<StoredRequest, 'type' | 'recipient' | 'legalBasis' | 'submittedAt' | 'ackDue' | 'respDue'>, agreement: Agreement): Step[] {
  const t0 = request.submittedAt
  const speed = speedOf(request.recipient)
  const steps: Step[] = []
  const respWindow = Math.max(request.respDue - t0, HOUR)
  const ackWindow = Math.max((request.ackDue ?? request.respDue) - t0, HOUR)

  // Delivery: the webhook, usually within seconds (retries make a tail of hours);
  // otherwise the recipient's system fetches it (e-CODEX "retrieval"). A few
  // webhooks fail for good: the gateway records it, and the recipient fetches the
  // request days later, or never.
  const delivery = draw.u()
  const byWebhook = delivery < 0.88
  let deliveredAt: number
  if (delivery < 0.975) {
    deliveredAt = t0 + Math.max(200, byWebhook ? draw.logNormal(20_000, 1.4) : draw.logNormal(4 * HOUR, 1.0))
    steps.push({ at: deliveredAt, kind: byWebhook ? 'deliver' : 'retrieve' })
  } else {
    const failedAt = t0 + draw.logNormal(6 * HOUR, 0.4)
    steps.push({ at: failedAt, kind: 'delivery_failed' })
    deliveredAt = draw.chance(0.6) ? failedAt + draw.logNormal(3 * DAY, 1.0) : Infinity
    if (Number.isFinite(deliveredAt)) steps.push({ at: deliveredAt, kind: 'retrieve' })
  }
  // Clerks read the full request (each read is a disclosure).
  if (byWebhook && draw.chance(0.7)) steps.push({ at: deliveredAt + draw.logNormal(2 * HOUR, 1.2), kind: 'recipient_fetch' })
  if (draw.chance(0.1)) steps.push({ at: t0 + draw.logNormal(3 * DAY, 1.0), kind: 'sender_fetch' })
  if (!Number.isFinite(deliveredAt)) {
    // It never reached the recipient: it waits, overdue, unless the sender gives up.
    if (draw.chance(0.3)) steps.push({ at: t0 + draw.logNormal(20 * DAY, 0.5), kind: 'withdraw' })
    return finish(steps)
  }

  // Some requests stall: nobody answers (and half of those never acknowledge).
  const stalled = draw.chance(0.04)
  const silent = stalled && draw.chance(0.5)
  const acknowledges = !silent && draw.chance(0.92)

  // The recipient acknowledges; a few ask their questions straight away instead
  // (which shows receipt as well), most ask, if at all, after acknowledging.
  let ackAt: number | undefined
  const questionsFirst = acknowledges && !stalled && draw.chance(0.03)
  if (acknowledges) {
    ackAt = Math.max(deliveredAt + MINUTE, t0 + ackWindow * 0.3 * speed * Math.exp(0.65 * draw.normal()))
    if (!questionsFirst) steps.push({ at: ackAt, kind: 'acknowledge' })
  }

  let answerAt = stalled ? Infinity : t0 + respWindow * 0.45 * speed * Math.exp(0.45 * draw.normal())
  answerAt = Math.max(answerAt, (ackAt ?? deliveredAt) + HOUR)

  if (ackAt !== undefined && !stalled && (questionsFirst || draw.chance(0.06))) {
    const askedAt = questionsFirst ? ackAt : ackAt + draw.logNormal(2 * DAY, 0.8)
    const answeredAt = askedAt + draw.logNormal(4 * DAY, 0.8)
    steps.push({ at: askedAt, kind: 'request_clarification' }, { at: answeredAt, kind: 'clarify' })
    answerAt = Math.max(answerAt, answeredAt + HOUR) + (answeredAt - askedAt) * 0.5
  }

  if (agreement.extensionMax !== undefined && draw.chance(0.08)) {
    const at = Math.max(deliveredAt + MINUTE, t0 + respWindow * draw.between(0.6, 0.95))
    const fraction = draw.between(0.3, 1)
    steps.push({ at, kind: 'extend', fraction })
    // The recipient asked for more time because it needs it.
    if (Number.isFinite(answerAt)) answerAt = Math.max(answerAt, request.respDue + draw.between(0, 0.9) * fraction * (request.respDue - t0))
  }

  if (draw.chance(0.05)) {
    // Withdrawn before the answer would have come (or, for stalled ones, while waiting).
    const horizon = Number.isFinite(answerAt) ? answerAt - t0 : 2 * respWindow
    steps.push({ at: t0 + Math.max(HOUR, horizon * draw.between(0.05, 0.9)), kind: 'withdraw' })
  }

  if (Number.isFinite(answerAt)) {
    if (draw.chance(0.14)) {
      const catalogue = refusalCatalogue(request.type, request.legalBasis)
      const grounds = [draw.pick(catalogue)]
      if (draw.chance(0.3)) {
        const second = draw.pick(catalogue)
        if (second !== grounds[0]) grounds.push(second)
      }
      steps.push({ at: answerAt, kind: 'refuse', grounds })
    } else {
      if (draw.chance(0.15)) steps.push({ at: t0 + (answerAt - t0) * draw.between(0.4, 0.8), kind: 'partial' })
      steps.push({ at: answerAt, kind: 'execute' })
    }
  }
  return finish(steps)
}

const finish = (steps: Step[]): Step[] => steps.map((step) => ({ ...step, at: Math.round(step.at) })).sort((a, b) => a.at - b.at)

// ---------------------------------------------------------------------------
// Running it

export interface SeedProgress {
  done: number
  total: number
  elapsedMs: number
  /** Requests per second since the start. */
  rate: number
}

export interface SeedOptions {
  store: RequestStore
  cipher: PayloadCipher
  config: GatewayConfig
  requests: number
  /** Submissions spread over the last `days` days before `now` (default 90). */
  days?: number
  seed?: number
  /** Requests in flight at once (default 200). */
  concurrency?: number
  /** The present: nothing happens after it (default Date.now()). */
  now?: number
  /** Index of the first request (references are SEED<seed>-<index>): seeds more of the same history. */
  startIndex?: number
  idempotencyTtlSeconds?: number
  /**
   * Skip the facts that change no turnaround figure (reminders and plain
   * disclosures): a bulk history for benchmarks, through the same commits, with
   * about a third fewer audit entries. Default false.
   */
  lean?: boolean
  onProgress?: (progress: SeedProgress) => void
  progressEveryMs?: number
}

export interface SeedSummary {
  requested: number
  created: number
  /** Already there (same reference): a repeated run adds nothing. */
  skipped: number
  /** Service calls made (submissions, transitions, disclosures, deadline jobs that recorded something). */
  operations: number
  statuses: Partial<Record<RequestStatus, number>>
  overdueNow: number
  elapsedMs: number
  ratePerSecond: number
  from: string
  to: string
}

export const seedReference = (seed: number, index: number): string => `SEED${seed}-${String(index).padStart(7, '0')}`

/** Generates `requests` requests with their whole history up to `now`. */
export async function seedHistory (options: SeedOptions): Promise<SeedSummary> {
  const days = options.days ?? 90
  const seed = options.seed ?? 1
  const now = options.now ?? Date.now()
  const startIndex = options.startIndex ?? 0
  const total = options.requests
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 200, total))
  const ttl = options.idempotencyTtlSeconds ?? 48 * 3600
  const combos = seedCombos(options.config)
  if (combos.length === 0) throw new Error('the gateway config has no agreement to seed requests under')
  const totalWeight = combos.reduce((sum, combo) => sum + combo.weight, 0)
  const pickCombo = (draw: Draw): SeedCombo => {
    let x = draw.u() * totalWeight
    for (const combo of combos) {
      x -= combo.weight
      if (x < 0) return combo
    }
    return combos[combos.length - 1]
  }
  const directory = directoryOf(options.config)
  const periodStart = now - days * DAY

  const summary: SeedSummary = {
    requested: total, created: 0, skipped: 0, operations: 0, statuses: {}, overdueNow: 0, elapsedMs: 0, ratePerSecond: 0,
    from: isoDate(periodStart), to: isoDate(now)
  }
  const started = Date.now()
  let next = 0
  let done = 0
  let failure: unknown
  const report = (): void => {
    const elapsedMs = Date.now() - started
    options.onProgress?.({ done, total, elapsedMs, rate: elapsedMs === 0 ? 0 : done / (elapsedMs / 1000) })
  }
  const timer = options.onProgress === undefined ? undefined : setInterval(report, options.progressEveryMs ?? 1000)
  timer?.unref()

  async function lane (): Promise<void> {
    // Each lane has its own clock, so requests in flight at once each live at their own moment.
    let clock = now
    const service = new RequestService(options.store, options.cipher, options.config, ttl, () => clock)
    const fireDeadline = createDeadlineFirer(service, options.config).fire
    const principal = (authority: string, draw: Draw): Principal => ({ authority, roles: ['agency'], subject: `seed-clerk-${draw.int(1, 6)}@${authority.toLowerCase()}` })

    for (;;) {
      if (failure !== undefined) return
      const offset = next++
      if (offset >= total) return
      const index = startIndex + offset
      const draw = new Draw(seed, index)
      const combo = pickCombo(draw)
      // Submitted at any moment of the period, at least a minute ago.
      const submittedAt = Math.round(periodStart + draw.u() * (now - periodStart - MINUTE))
      const body = seedBody(draw, combo, seedReference(seed, index), submittedAt)
      clock = submittedAt
      const submitted = await service.submit(principal(combo.sender, draw), body).catch((error: unknown) => {
        // The reference is taken (a run with the same seed at another time): leave that request alone.
        if (error instanceof ProblemError && error.problem.type.endsWith('/sender-reference-taken')) return undefined
        throw error
      })
      summary.operations++
      if (submitted?.kind !== 'created') {
        summary.skipped++
        done++
        continue
      }
      let record: StoredRequest = submitted.request
      const agreement = directory.agreementById(record.agreementId) ?? combo.agreement
      const steps = planSteps(draw, record, agreement).filter((step) => step.at <= now)
      const fired = new Set<string>()

      const act = async (step: Step): Promise<void> => {
        const side: Side = ['sender_fetch', 'clarify', 'withdraw'].includes(step.kind) ? 'sender' : 'recipient'
        const who = principal(side === 'sender' ? record.sender : record.recipient, draw)
        const action = actionOf(step)
        if (action !== undefined && !decide(record.status, step.kind === 'deliver' ? 'gateway' : side, action).ok) return
        clock = step.at
        let changed: StoredRequest | undefined
        switch (step.kind) {
          case 'deliver':
            changed = await service.transition(record.id, 'gateway', { kind: 'deliver' })
            break
          case 'delivery_failed': {
            // As the delivery worker records giving up (workers/delivery.ts).
            const eventId = (await options.store.get(record.id))?.eventIds[0] ?? ''
            const marker = `deliveryFailed_${eventId}_${record.recipient}`
            changed = await service.record(record.id, (request) => request.deliveryFailures.includes(marker)
              ? undefined
              : { event: 'request.delivery_failed', fields: { [marker]: 503 }, data: { eventId, event: 'request.submitted', authority: record.recipient, attempts: 8, lastStatus: 503 } })
            break
          }
          case 'retrieve':
          case 'recipient_fetch':
          case 'sender_fetch':
            changed = await service.disclose(who, record)
            break
          case 'acknowledge':
            changed = await service.acknowledge(who, record.id, {
              recipientReference: `${record.recipient}/${new Date(step.at).getUTCFullYear()}/${draw.int(1000, 99999)}`,
              ...(draw.chance(0.5) ? { estimatedAnswerDate: isoDate(record.respDue - draw.between(0, 0.5) * (record.respDue - record.submittedAt)) } : {})
            })
            break
          case 'request_clarification':
            changed = await service.requestClarification(who, record.id, 'Please send the certified translation of the statute and the full details of the account holder.')
            break
          case 'clarify':
            changed = await service.clarify(who, record.id, 'The certified translation is attached; the account holder is named in the annex.')
            break
          case 'extend': {
            const cap = agreement.extensionMax === undefined ? record.respDue : maxExtended(agreement, record)
            if (cap <= record.respDue) return
            const requested = Math.round(record.respDue + (cap - record.respDue) * (step.fraction ?? 1))
            changed = await service.extend(who, record.id, { responseDeadline: new Date(Math.max(requested, record.respDue + 1)).toISOString(), reason: 'Execution requires a court order in the requested state.' })
            break
          }
          case 'partial':
            changed = await service.respond(who, record.id, { outcome: 'partially_executed', text: 'First part of the evidence enclosed; the hearing is scheduled.' })
            break
          case 'execute':
            changed = await service.respond(who, record.id, { outcome: 'executed', text: 'Executed; the results are enclosed.' })
            break
          case 'refuse':
            changed = await service.respond(who, record.id, { outcome: 'refused', grounds: step.grounds, text: 'Refused on the grounds stated.' })
            break
          case 'withdraw':
            changed = await service.withdraw(who, record.id, 'The proceedings were discontinued.')
            break
        }
        summary.operations++
        if (changed !== undefined) record = changed
      }

      // Steps and deadlines interleaved in time order, up to now: a deadline job fires
      // when it falls strictly before the next step, as the worker's delayed job would.
      let stepIndex = 0
      for (;;) {
        const step = steps[stepIndex]
        const job = record.status === 'executed' || record.status === 'refused' || record.status === 'withdrawn' || record.status === 'deemed_accepted'
          ? undefined
          : nextDeadline(record, agreement, fired, Math.min(now, step === undefined ? Infinity : step.at - 1))
        if (job !== undefined) {
          fired.add(firedKey(job))
          const reminder = job.kind === 'acknowledgement_reminder' || job.kind === 'response_reminder'
          if (reminder && options.lean === true) continue
          // A reminder already sent for this deadline would be stale: skip the round trip.
          if ((job.kind === 'acknowledgement_reminder' && record.ackRemindedFor === job.dueAt) ||
            (job.kind === 'response_reminder' && record.respRemindedFor === job.dueAt)) continue
          clock = job.fireAt
          const changed = await fireDeadline(job, record)
          if (changed !== undefined) {
            summary.operations++
            record = changed
          }
          continue
        }
        if (step === undefined) break
        stepIndex++
        if (options.lean === true && (step.kind === 'recipient_fetch' || step.kind === 'sender_fetch')) continue
        await act(step)
      }
      summary.created++
      summary.statuses[record.status] = (summary.statuses[record.status] ?? 0) + 1
      const open = !['executed', 'refused', 'withdrawn', 'deemed_accepted'].includes(record.status)
      if (open && (record.respOverdue || (record.ackOverdue && record.acknowledgedAt === undefined))) summary.overdueNow++
      done++
    }
  }

  try {
    await Promise.all(Array.from({ length: concurrency }, async () => {
      try {
        await lane()
      } catch (error) {
        failure ??= error
      }
    }))
  } finally {
    if (timer !== undefined) clearInterval(timer)
  }
  if (failure !== undefined) throw failure
  report()
  summary.elapsedMs = Date.now() - started
  summary.ratePerSecond = summary.elapsedMs === 0 ? 0 : Math.round(summary.created / (summary.elapsedMs / 1000))
  return summary
}

function actionOf (step: Step): Action | undefined {
  switch (step.kind) {
    case 'deliver': return { kind: 'deliver' }
    case 'delivery_failed': return undefined
    case 'retrieve': return undefined
    case 'recipient_fetch': return undefined
    case 'sender_fetch': return undefined
    case 'acknowledge': return { kind: 'acknowledge' }
    case 'request_clarification': return { kind: 'request_clarification' }
    case 'clarify': return { kind: 'clarify' }
    case 'extend': return { kind: 'extend' }
    case 'partial': return { kind: 'respond', outcome: 'partially_executed' }
    case 'execute': return { kind: 'respond', outcome: 'executed' }
    case 'refuse': return { kind: 'respond', outcome: 'refused' }
    case 'withdraw': return { kind: 'withdraw' }
  }
}

function maxExtended (agreement: Agreement, record: StoredRequest): number {
  // Same cap as checkExtension: the original deadline plus extensionMax; stay a minute inside it.
  const probe = new Date(record.respDueOriginal)
  const max = agreement.extensionMax === undefined ? probe : addDuration(probe, agreement.extensionMax)
  return max.getTime() - MINUTE
}

const firedKey = (deadline: Deadline): string => `${deadline.kind}_${deadline.dueAt}`

/** The earliest deadline of the record that has not fired and fires at or before `until`. */
function nextDeadline (record: StoredRequest, agreement: Agreement, fired: Set<string>, until: number): Deadline | undefined {
  return pendingDeadlines(record, agreement.reminderAtFraction).find((deadline) => deadline.fireAt <= until && !fired.has(firedKey(deadline)))
}
