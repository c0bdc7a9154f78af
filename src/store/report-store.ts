import type { Redis } from 'ioredis'
import { accumulate, mergeAccumulators, newAccumulator, toRow, type Accumulator, type ReportRow } from '../domain/report.js'
import type { Keys } from './keys.js'

export interface TurnaroundQuery {
  fromDay: string
  toDay: string
  /** Only pairs involving this authority; undefined = every pair. */
  visibleTo?: string
  groupBy: 'type' | 'direction'
}

export interface ReciprocityRow {
  authorities: [string, string]
  type: string
  forward: ReportRow | null
  backward: ReportRow | null
}

export interface TurnaroundReport {
  from: string
  to: string
  rows: ReportRow[]
  reciprocity: ReciprocityRow[]
}

const dayMs = 86_400_000

export function daysBetween (fromDay: string, toDay: string): string[] {
  const days: string[] = []
  for (let t = Date.parse(`${fromDay}T00:00:00Z`); t <= Date.parse(`${toDay}T00:00:00Z`); t += dayMs) days.push(new Date(t).toISOString().slice(0, 10))
  return days
}

function parseCombo (combo: string): { sender: string, recipient: string, type: string } {
  const [pair, type] = combo.split(':')
  const [sender, recipient] = pair.split('>')
  return { sender, recipient, type }
}

/**
 * Reads the per-day aggregates of the period and the live gauges: the work is
 * proportional to days × active pairs, not to the number of requests.
 */
export class ReportStore {
  constructor (private readonly redis: Redis, private readonly keys: Keys) {}

  async turnaround (query: TurnaroundQuery): Promise<TurnaroundReport> {
    const prefix = this.keys.prefix
    const days = daysBetween(query.fromDay, query.toDay)
    const visible = (combo: string): boolean => {
      if (query.visibleTo === undefined) return true
      const { sender, recipient } = parseCombo(combo)
      return sender === query.visibleTo || recipient === query.visibleTo
    }
    const membership = this.redis.pipeline()
    for (const day of days) membership.smembers(`${prefix}agg:days:${day}`)
    membership.smembers(`${prefix}live:combos`)
    const sets = ((await membership.exec()) ?? []).map(([err, members]) => {
      if (err) throw err
      return (members as string[]).filter(visible)
    })
    const liveCombos = sets.pop() ?? []
    const reads = this.redis.pipeline()
    const dayCombos: string[] = []
    days.forEach((day, index) => {
      for (const combo of sets[index]) {
        reads.hgetall(`${prefix}agg:${day}:${combo}`)
        dayCombos.push(combo)
      }
    })
    const combos = [...new Set([...dayCombos, ...liveCombos])].sort()
    for (const combo of combos) reads.hgetall(`${prefix}live:${combo}`)
    const results = ((await reads.exec()) ?? []).map(([err, hash]) => {
      if (err) throw err
      return hash as Record<string, string>
    })
    const perCombo = new Map<string, Accumulator>()
    dayCombos.forEach((combo, index) => {
      let accumulator = perCombo.get(combo)
      if (accumulator === undefined) perCombo.set(combo, accumulator = newAccumulator())
      accumulate(accumulator, results[index])
    })
    const live = new Map(combos.map((combo, index) => {
      const hash = results[dayCombos.length + index]
      return [combo, { open: Number(hash.open ?? 0), overdue: Number(hash.overdue ?? 0) }]
    }))
    const groups = new Map<string, { key: { sender: string, recipient: string, type: string }, accumulator: Accumulator, live: { open: number, overdue: number } }>()
    for (const combo of combos) {
      const parsed = parseCombo(combo)
      const key = query.groupBy === 'direction' ? { ...parsed, type: '*' } : parsed
      const id = `${key.sender}>${key.recipient}:${key.type}`
      let group = groups.get(id)
      if (group === undefined) groups.set(id, group = { key, accumulator: newAccumulator(), live: { open: 0, overdue: 0 } })
      const accumulator = perCombo.get(combo)
      if (accumulator !== undefined) mergeAccumulators(group.accumulator, accumulator)
      const gauges = live.get(combo) ?? { open: 0, overdue: 0 }
      group.live.open += gauges.open
      group.live.overdue += gauges.overdue
    }
    const rows = [...groups.values()].map((group) => toRow(group.key, group.accumulator, group.live))
    return { from: query.fromDay, to: query.toDay, rows, reciprocity: reciprocityOf(rows) }
  }
}

/** A → B beside B → A, for each pair and type. */
export function reciprocityOf (rows: ReportRow[]): ReciprocityRow[] {
  const byKey = new Map(rows.map((row) => [`${row.sender}>${row.recipient}:${row.type}`, row]))
  const seen = new Set<string>()
  const out: ReciprocityRow[] = []
  for (const row of rows) {
    const [a, b] = [row.sender, row.recipient].sort() as [string, string]
    const id = `${a}|${b}|${row.type}`
    if (seen.has(id)) continue
    seen.add(id)
    out.push({ authorities: [a, b], type: row.type, forward: byKey.get(`${a}>${b}:${row.type}`) ?? null, backward: byKey.get(`${b}>${a}:${row.type}`) ?? null })
  }
  return out
}
