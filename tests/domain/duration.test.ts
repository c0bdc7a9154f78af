import t from 'tap'
import fc from 'fast-check'
import {
  addDuration,
  subtractDuration,
  parseDuration,
  tryParseDuration,
  isValidDuration,
  formatDuration,
  ISO_DURATION_PATTERN,
  DurationError
} from '../../src/domain/duration.js'

const iso = (s: string): Date => new Date(s)
const add = (at: string, d: string): string => addDuration(iso(at), d).toISOString()
const sub = (at: string, d: string): string => subtractDuration(iso(at), d).toISOString()

t.test('parseDuration: structured value', async t => {
  t.same(parseDuration('P1Y2M3W4DT5H6M7.25S'), {
    years: 1, months: 2, weeks: 3, days: 4, hours: 5, minutes: 6, seconds: 7.25
  })
  t.same(parseDuration('PT30S'), { years: 0, months: 0, weeks: 0, days: 0, hours: 0, minutes: 0, seconds: 30 })
  t.equal(parseDuration('P1M').months, 1, 'M before T is months')
  t.equal(parseDuration('PT1M').minutes, 1, 'M after T is minutes')
  t.equal(parseDuration('P1W').weeks, 1)
  t.equal(parseDuration('PT1.5S').seconds, 1.5)
  t.equal(parseDuration('PT0S').seconds, 0, 'a zero duration is still a duration')
})

t.test('invalid inputs are rejected', async t => {
  const bad = [
    '', 'P', 'PT', 'P1DT', 'T1H', '1D', 'p1d', 'P1d', ' P1D', 'P1D ', 'P-1D', '-P1D', 'P+1D',
    'P1.5D', 'PT1,5S', 'PT.5S', 'PT1.S', 'P1H', 'PT1D', 'P1D1Y', 'PT1S1M', 'P1M1Y', 'P1Y1Y',
    'P2X', 'PXD', 'P1DT1X', 'P1e3D', 'P0x10D', 'P1 D', 'PT1H-5M', 'P99999999999999999999D',
    'P' + '1'.repeat(70) + 'D'
  ]
  for (const s of bad) {
    t.equal(isValidDuration(s), false, `${JSON.stringify(s)} is invalid`)
    t.equal(tryParseDuration(s), undefined)
    t.throws(() => parseDuration(s), DurationError)
  }
  t.equal(isValidDuration(undefined), false)
  t.equal(isValidDuration(7), false)
  t.throws(() => addDuration(iso('2026-01-01T00:00:00Z'), 'P2X'), /not an ISO 8601 duration/)
})

t.test('seconds, days, weeks', async t => {
  t.equal(add('2026-03-01T10:00:00.000Z', 'PT30S'), '2026-03-01T10:00:30.000Z')
  t.equal(add('2026-03-01T10:00:00.000Z', 'PT1.5S'), '2026-03-01T10:00:01.500Z')
  t.equal(add('2026-03-01T10:00:00.000Z', 'PT0.0004S'), '2026-03-01T10:00:00.000Z', 'sub-ms fraction rounds')
  t.equal(add('2026-03-01T10:00:00.000Z', 'PT0.0006S'), '2026-03-01T10:00:00.001Z')
  t.equal(add('2026-01-10T08:30:00.000Z', 'P7D'), '2026-01-17T08:30:00.000Z')
  t.equal(add('2026-01-10T08:30:00.000Z', 'P1W'), add('2026-01-10T08:30:00.000Z', 'P7D'), 'P1W = P7D')
  t.equal(add('2026-01-10T08:30:00.000Z', 'P25D'), '2026-02-04T08:30:00.000Z')
  t.equal(add('2026-03-28T12:00:00.000Z', 'P2D'), '2026-03-30T12:00:00.000Z', 'no DST in UTC')
  t.equal(add('2026-12-31T23:59:59.000Z', 'PT1S'), '2027-01-01T00:00:00.000Z')
  t.equal(add('2026-01-01T00:00:00.000Z', 'PT36H'), '2026-01-02T12:00:00.000Z', 'hours overflow days')
  t.equal(add('2026-01-01T00:00:00.000Z', 'P1DT2H3M4S'), '2026-01-02T02:03:04.000Z')
})

t.test('months and years are calendar months, clamped to month end', async t => {
  t.equal(add('2026-01-31T09:00:00.000Z', 'P1M'), '2026-02-28T09:00:00.000Z', 'Jan 31 + P1M, common year')
  t.equal(add('2028-01-31T09:00:00.000Z', 'P1M'), '2028-02-29T09:00:00.000Z', 'Jan 31 + P1M, leap year')
  t.equal(add('2026-01-15T00:00:00.000Z', 'P1M'), '2026-02-15T00:00:00.000Z')
  t.equal(add('2026-03-31T00:00:00.000Z', 'P1M'), '2026-04-30T00:00:00.000Z')
  t.equal(add('2026-11-30T00:00:00.000Z', 'P3M'), '2027-02-28T00:00:00.000Z', 'across a year end')
  t.equal(add('2028-02-29T00:00:00.000Z', 'P1Y'), '2029-02-28T00:00:00.000Z', 'Feb 29 + P1Y')
  t.equal(add('2028-02-29T00:00:00.000Z', 'P4Y'), '2032-02-29T00:00:00.000Z', 'Feb 29 + P4Y')
  t.equal(add('2100-02-28T00:00:00.000Z', 'P1D'), '2100-03-01T00:00:00.000Z', '2100 is not a leap year')
  t.equal(add('2000-02-28T00:00:00.000Z', 'P1D'), '2000-02-29T00:00:00.000Z', '2000 is a leap year')
  t.equal(add('2026-01-01T00:00:00.000Z', 'P1Y2M'), '2027-03-01T00:00:00.000Z')
  t.equal(add('2026-01-31T00:00:00.000Z', 'P1M1D'), '2026-03-01T00:00:00.000Z', 'months first, then days')
  t.equal(add('2028-01-01T00:00:00.000Z', 'P1Y'), '2029-01-01T00:00:00.000Z', '366-day year is one year')
})

t.test('subtractDuration', async t => {
  t.equal(sub('2026-06-10T00:00:00.000Z', 'P3D'), '2026-06-07T00:00:00.000Z')
  t.equal(sub('2026-03-01T00:00:00.000Z', 'P1D'), '2026-02-28T00:00:00.000Z')
  t.equal(sub('2028-03-01T00:00:00.000Z', 'P1D'), '2028-02-29T00:00:00.000Z')
  t.equal(sub('2026-03-31T00:00:00.000Z', 'P1M'), '2026-02-28T00:00:00.000Z', 'clamped backwards too')
  t.equal(sub('2026-01-01T00:00:00.000Z', 'PT1.5S'), '2025-12-31T23:59:58.500Z')
  t.equal(sub('2026-01-15T00:00:00.000Z', 'P1Y1M'), '2024-12-15T00:00:00.000Z')
})

t.test('does not mutate its input; rejects invalid dates', async t => {
  const d = iso('2026-01-31T00:00:00.000Z')
  addDuration(d, 'P1M')
  subtractDuration(d, 'P1Y')
  t.equal(d.toISOString(), '2026-01-31T00:00:00.000Z')
  t.throws(() => addDuration(new Date('nope'), 'P1D'), RangeError)
  t.throws(() => addDuration(iso('2026-01-01T00:00:00Z'), 'P999999999Y'), RangeError)
})

t.test('accepts a structured duration, formatDuration round-trips', async t => {
  const d = parseDuration('P1Y2M3W4DT5H6M7.5S')
  t.equal(formatDuration(d), 'P1Y2M3W4DT5H6M7.5S')
  t.equal(formatDuration(parseDuration('P0D')), 'PT0S')
  t.equal(addDuration(iso('2026-01-01T00:00:00Z'), d).toISOString(),
    add('2026-01-01T00:00:00Z', 'P1Y2M3W4DT5H6M7.5S'))
})

t.test('property: the schema pattern and the parser agree', async t => {
  const re = new RegExp(ISO_DURATION_PATTERN, 'u')
  const part = (d: string): fc.Arbitrary<string> =>
    fc.option(fc.nat({ max: 400 }).map(n => `${n}${d}`), { nil: '' })
  const candidate = fc.tuple(
    part('Y'), part('M'), part('W'), part('D'), fc.boolean(), part('H'), part('M'),
    fc.option(fc.tuple(fc.nat(90), fc.option(fc.nat(999), { nil: undefined }))
      .map(([s, f]) => (f === undefined ? `${s}S` : `${s}.${f}S`)), { nil: '' }),
    fc.constantFrom('', '', '', 'X', '-', '.', 'T')
  ).map(([y, mo, w, d, t, h, mi, s, junk]) => `P${y}${mo}${w}${d}${t ? 'T' : ''}${h}${mi}${s}${junk}`)
  fc.assert(fc.property(fc.oneof(candidate, fc.string({ maxLength: 12 })), s => re.test(s) === isValidDuration(s)))
  t.pass('agreed on every sample')
})

t.test('property: adding days then subtracting them is the identity', async t => {
  fc.assert(fc.property(
    fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }),
    fc.nat(5000), fc.nat(86_399),
    (date, days, secs) => {
      const d = `P${days}DT${secs}S`
      return subtractDuration(addDuration(date, d), d).getTime() === date.getTime()
    }
  ))
  t.pass()
})
