import type { Redis } from 'ioredis'
import { addCounters, addDenseHistogram, addSparseHistogram, newAccumulator, resetAccumulator, toRow, type ReportRow } from '../domain/report.js'
import { blockId, decompose, epochDayOfIso } from '../domain/time-blocks.js'
import { clockCodes, type ClockCode } from '../domain/turnaround.js'
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

/** What a report read from Redis (for benchmarks and tests). */
export interface ReadCost {
  /** Time blocks the period decomposes into. */
  blocks: number
  /** Counters hashes of (block, combo) read. */
  counterHashes: number
  sparseHistograms: number
  denseHistograms: number
  /** Hash fields read, counters and sparse histograms. */
  hashFields: number
  /** Bytes of dense histograms read. */
  denseBytes: number
}

function parseCombo (combo: string): { sender: string, recipient: string, type: string } {
  const [pair, type] = combo.split(':')
  const [sender, recipient] = pair.split('>')
  return { sender, recipient, type }
}

function values<T> (replies: Array<[Error | null, unknown]> | null): T[] {
  return (replies ?? []).map(([err, value]) => {
    if (err) throw err
    return value as T
  })
}

/** One block's aggregates of one combo, as read. */
interface BlockRead {
  counters: Record<string, string>
  sparse: Partial<Record<ClockCode, Record<string, string>>>
  dense: Partial<Record<ClockCode, Buffer | null>>
}

/**
 * Reads the aggregates of the time blocks the period decomposes into, and the
 * live gauges: the work is proportional to blocks × active pairs (a few dozen
 * blocks at most), and a busy histogram is a fixed-size array, so it does not
 * grow with the number of requests.
 */
export class ReportStore {
  constructor (private readonly redis: Redis, private readonly keys: Keys) {}

  async turnaround (query: TurnaroundQuery): Promise<TurnaroundReport> {
    return (await this.turnaroundWithCost(query)).report
  }

  async turnaroundWithCost (query: TurnaroundQuery): Promise<{ report: TurnaroundReport, cost: ReadCost }> {
    const prefix = this.keys.prefix
    const blocks = decompose(epochDayOfIso(query.fromDay), epochDayOfIso(query.toDay)).map(blockId)
    const visible = (combo: string): boolean => {
      if (query.visibleTo === undefined) return true
      const { sender, recipient } = parseCombo(combo)
      return sender === query.visibleTo || recipient === query.visibleTo
    }
    const cost: ReadCost = { blocks: blocks.length, counterHashes: 0, sparseHistograms: 0, denseHistograms: 0, hashFields: 0, denseBytes: 0 }

    // 1. Which combos have requests in each block, and which have live gauges.
    const membership = this.redis.pipeline()
    for (const block of blocks) membership.smembers(`${prefix}agg:${block}:combos`)
    membership.smembers(`${prefix}live:combos`)
    const sets = values<string[]>(await membership.exec()).map((members) => members.filter(visible))
    const liveCombos = sets.pop() ?? []

    // 2. The counters of each (block, combo), and the live gauges.
    const reads: Array<{ combo: string, key: string, read: BlockRead }> = []
    const counters = this.redis.pipeline()
    blocks.forEach((block, index) => {
      for (const combo of sets[index]) {
        const key = `${prefix}agg:${block}:${combo}`
        counters.hgetall(key)
        reads.push({ combo, key, read: { counters: {}, sparse: {}, dense: {} } })
      }
    })
    const combos = [...new Set([...reads.map((entry) => entry.combo), ...liveCombos])].sort()
    for (const combo of combos) counters.hgetall(`${prefix}live:${combo}`)
    const hashes = values<Record<string, string>>(await counters.exec())
    reads.forEach((entry, index) => { entry.read.counters = hashes[index] })
    const live = new Map(combos.map((combo, index) => {
      const hash = hashes[reads.length + index]
      return [combo, { open: Number(hash.open ?? 0), overdue: Number(hash.overdue ?? 0) }]
    }))

    // 3. The histograms that hold durations (a max is kept for them). A dense one
    //    never turns back, so its flag suffices; for a sparse one both keys are
    //    read in one MULTI, in case it turned dense since step 2.
    const histograms = this.redis.multi()
    const fills: Array<(value: unknown) => void> = []
    for (const { key, read } of reads) {
      for (const clock of clockCodes) {
        if (read.counters[`max:${clock}`] === undefined) continue
        if (read.counters[`dense:${clock}`] === undefined) {
          histograms.hgetall(`${key}:h:${clock}`)
          fills.push((value) => { read.sparse[clock] = value as Record<string, string> })
        }
        histograms.getBuffer(`${key}:hd:${clock}`)
        fills.push((value) => { read.dense[clock] = value as Buffer | null })
      }
    }
    if (fills.length > 0) values<unknown>(await histograms.exec()).forEach((value, index) => { fills[index](value) })
    else histograms.discard()

    // 4. Rows: the blocks of each row's combos summed into one reused accumulator.
    const readsByCombo = new Map<string, BlockRead[]>()
    for (const { combo, read } of reads) {
      let list = readsByCombo.get(combo)
      if (list === undefined) readsByCombo.set(combo, list = [])
      list.push(read)
    }
    const groups = new Map<string, { key: { sender: string, recipient: string, type: string }, combos: string[] }>()
    for (const combo of combos) {
      const parsed = parseCombo(combo)
      const key = query.groupBy === 'direction' ? { ...parsed, type: '*' } : parsed
      const id = `${key.sender}>${key.recipient}:${key.type}`
      let group = groups.get(id)
      if (group === undefined) groups.set(id, group = { key, combos: [] })
      group.combos.push(combo)
    }
    const accumulator = newAccumulator()
    const rows: ReportRow[] = []
    for (const group of groups.values()) {
      resetAccumulator(accumulator)
      const gauges = { open: 0, overdue: 0 }
      for (const combo of group.combos) {
        for (const read of readsByCombo.get(combo) ?? []) {
          addCounters(accumulator, read.counters)
          cost.counterHashes++
          cost.hashFields += Object.keys(read.counters).length
          for (const clock of clockCodes) {
            const sparse = read.sparse[clock]
            if (sparse !== undefined && Object.keys(sparse).length > 0) {
              addSparseHistogram(accumulator, clock, sparse)
              cost.sparseHistograms++
              cost.hashFields += Object.keys(sparse).length
            }
            const dense = read.dense[clock]
            if (dense !== undefined && dense !== null) {
              addDenseHistogram(accumulator, clock, dense)
              cost.denseHistograms++
              cost.denseBytes += dense.byteLength
            }
          }
        }
        const comboGauges = live.get(combo) ?? { open: 0, overdue: 0 }
        gauges.open += comboGauges.open
        gauges.overdue += comboGauges.overdue
      }
      rows.push(toRow(group.key, accumulator, gauges))
    }
    return { report: { from: query.fromDay, to: query.toDay, rows, reciprocity: reciprocityOf(rows) }, cost }
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
