// Time blocks (src/domain/time-blocks.ts): any period of days is covered by
// maximal aligned blocks of 1, 4, 16, 64, 256 and 1024 days, disjoint and
// exactly covering it, few of them whatever its length.
import t from 'tap'
import fc from 'fast-check'
import { blockDaysByLevel, blocksContaining, decompose, epochDayOfIso, firstDayOf, isoOfEpochDay, lastDayOf, topLevel, type TimeBlock } from '../../src/domain/time-blocks.js'

const day = (iso: string): number => epochDayOfIso(iso)
const span = (block: TimeBlock): [number, number] => [firstDayOf(block), lastDayOf(block)]

t.test('epoch days: 1970-01-01 is day 0, UTC', async (t) => {
  t.equal(day('1970-01-01'), 0)
  t.equal(day('1970-01-02'), 1)
  t.equal(day('1969-12-31'), -1)
  t.equal(isoOfEpochDay(day('2026-10-14')), '2026-10-14')
})

t.test('the blocks containing a day: one per level, each covering it, aligned on its size', async (t) => {
  fc.assert(fc.property(fc.integer({ min: -100_000, max: 100_000 }), (d) => {
    const blocks = blocksContaining(d)
    return blocks.length === blockDaysByLevel.length && blocks.every((block, level) => {
      const [first, last] = span(block)
      return block.level === level && first <= d && d <= last && last - first + 1 === blockDaysByLevel[level] && first % blockDaysByLevel[level] === 0
    })
  }), { numRuns: 5000 })
  t.same(blockDaysByLevel, [1, 4, 16, 64, 256, 1024], 'base 4, six levels')
})

t.test('a period decomposes into disjoint aligned blocks covering it exactly, in day order', async (t) => {
  fc.assert(fc.property(fc.integer({ min: -5000, max: 30_000 }), fc.integer({ min: 0, max: 3660 }), (from, length) => {
    const to = from + length
    const blocks = decompose(from, to)
    let next = from
    for (const block of blocks) {
      const [first, last] = span(block)
      if (first !== next) return false // contiguous and disjoint: each starts right after the previous one
      if (first % blockDaysByLevel[block.level] !== 0) return false // aligned
      next = last + 1
    }
    return next === to + 1
  }), { numRuns: 10_000 })
  t.pass('10,000 periods of up to ten years')
})

t.test('the blocks are maximal: no block\'s parent lies within the period', async (t) => {
  fc.assert(fc.property(fc.integer({ min: -5000, max: 30_000 }), fc.integer({ min: 0, max: 3660 }), (from, length) => {
    const to = from + length
    return decompose(from, to).every((block) => {
      if (block.level === topLevel) return true
      const parent = { level: block.level + 1, index: Math.floor(firstDayOf(block) / blockDaysByLevel[block.level + 1]) }
      return firstDayOf(parent) < from || lastDayOf(parent) > to
    })
  }), { numRuns: 10_000 })
  t.pass('10,000 periods')
})

t.test('few blocks whatever the length: at most three per level at each edge, plus whole top-level blocks', async (t) => {
  const top = blockDaysByLevel[topLevel]
  fc.assert(fc.property(fc.integer({ min: -5000, max: 30_000 }), fc.integer({ min: 0, max: 3660 }), (from, length) => {
    const blocks = decompose(from, from + length)
    const perLevel = blockDaysByLevel.map((_, level) => blocks.filter((block) => block.level === level).length)
    const edges = perLevel.slice(0, topLevel).every((count) => count <= 2 * 3)
    return edges && perLevel[topLevel] <= Math.ceil((length + 1) / top) && blocks.length <= 2 * 3 * topLevel + Math.ceil((length + 1) / top)
  }), { numRuns: 10_000 })
  t.ok(decompose(day('2016-01-01'), day('2025-12-31')).length <= 35, 'ten years: at most 35 blocks')
  t.ok(decompose(day('2026-01-01'), day('2026-03-31')).length <= 12, 'a quarter: a dozen blocks at most')
})

t.test('examples: a single day, an aligned block, a period starting and ending mid-block', async (t) => {
  const d = day('2026-10-14')
  t.same(decompose(d, d), [{ level: 0, index: d }], 'one day is its own block')
  const aligned = 64 * Math.floor(d / 64)
  t.same(decompose(aligned, aligned + 63), [{ level: 3, index: aligned / 64 }], 'an aligned 64-day period is one block')
  // From 5 days before a 64-aligned day to 22 days after the next one:
  const blocks = decompose(aligned - 5, aligned + 64 + 22)
  t.same(blocks.map((block) => [block.level, firstDayOf(block) - aligned, lastDayOf(block) - aligned]), [
    [0, -5, -5], [1, -4, -1], // the tail of the previous blocks: one day, then four
    [3, 0, 63], // a whole 64-day block
    [2, 64, 79], // a 16-day block
    [1, 80, 83], // the head of the next 16-day block: a four-day block, then days
    [0, 84, 84], [0, 85, 85], [0, 86, 86]
  ])
})
