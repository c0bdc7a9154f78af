// Time blocks: the aggregates of each submission day are also added into the
// aligned blocks of 4, 16, 64, 256 and 1024 days that contain it, so that any
// period [from, to] is covered by a bounded number of blocks (at most three per
// level at each edge, plus whole top-level blocks) instead of one per day.
// Pure: no I/O.
//
// Base 4 rather than 2: a transition updates one block per level, so fewer
// levels make intake cheaper (6 writes instead of 11), while a report reads at
// most 2 × 3 × 5 edge blocks + ⌈span / 1024⌉ + 1 top blocks (≤ 35 for the ten-year
// maximum, ~10 for a quarter) instead of ~2 × 10 + 2.

const dayMs = 86_400_000

/** How many days a block covers at each level: 4^level. */
export const blockDaysByLevel: readonly number[] = [1, 4, 16, 64, 256, 1024]
export const topLevel = blockDaysByLevel.length - 1

/** Days counted from 1970-01-01 (day 0), UTC. Blocks are aligned on multiples of their size from there. */
export type EpochDay = number

export interface TimeBlock {
  level: number
  /** The block covers epoch days [index × blockDays, (index + 1) × blockDays − 1]. */
  index: number
}

export const epochDayOf = (ms: number): EpochDay => Math.floor(ms / dayMs)

/** 'YYYY-MM-DD' (UTC) → epoch day. */
export const epochDayOfIso = (day: string): EpochDay => epochDayOf(Date.parse(`${day}T00:00:00Z`))

export const isoOfEpochDay = (day: EpochDay): string => new Date(day * dayMs).toISOString().slice(0, 10)

/** How the store names a block inside its keys: `<level>:<index>`. */
export const blockId = (block: TimeBlock): string => `${block.level}:${block.index}`

export const firstDayOf = (block: TimeBlock): EpochDay => block.index * blockDaysByLevel[block.level]
export const lastDayOf = (block: TimeBlock): EpochDay => firstDayOf(block) + blockDaysByLevel[block.level] - 1

/** The block of each level that holds this day, level 0 (the day itself) first. */
export function blocksContaining (day: EpochDay): TimeBlock[] {
  return blockDaysByLevel.map((blockDays, level) => ({ level, index: Math.floor(day / blockDays) }))
}

/**
 * The days fromDay..toDay (inclusive) as maximal aligned blocks, in day order:
 * from each start, the largest block that starts there and ends within the
 * range. Disjoint, covering the range exactly.
 */
export function decompose (fromDay: EpochDay, toDay: EpochDay): TimeBlock[] {
  const blocks: TimeBlock[] = []
  let start = fromDay
  while (start <= toDay) {
    let level = topLevel
    for (; level > 0; level--) {
      const blockDays = blockDaysByLevel[level]
      const aligned = ((start % blockDays) + blockDays) % blockDays === 0
      if (aligned && start + blockDays - 1 <= toDay) break
    }
    const blockDays = blockDaysByLevel[level]
    blocks.push({ level, index: Math.floor(start / blockDays) })
    start += blockDays
  }
  return blocks
}
