// ISO 8601 durations and exact calendar arithmetic in UTC. Pure, no I/O.
//
// Accepted grammar (ISO 8601-1:2019 "PnYnMnWnDTnHnMnS", every part optional but
// at least one present, in this order):
//
//   P[nY][nM][nW][nD][T[nH][nM][nS]]
//
// - every n is a non-negative integer, except seconds which may carry a
//   fraction with a '.' separator (PT1.5S); at most 3 fraction digits are
//   meaningful (milliseconds) — finer fractions are rounded to the nearest ms;
// - 'P' and 'PT' alone, a 'T' with nothing after it, negative or signed values,
//   lowercase designators, spaces and anything else are rejected.
//
// Arithmetic (addDuration): calendar months first (years count as 12 months;
// the day of month is clamped to the target month's end, so 31 Jan + P1M =
// 28/29 Feb), then weeks and days as calendar days (= 24 h in UTC, which has no
// DST), then the time part in milliseconds. subtractDuration applies the same
// steps with every component negated (as Temporal does), so 31 Mar - P1M = 28/29
// Feb. Month arithmetic is therefore not always reversible, by nature.
// No approximation (a month is never "30 days") is made anywhere.

export interface Duration {
  years: number
  months: number
  weeks: number
  days: number
  hours: number
  minutes: number
  /** May carry a fraction (PT1.5S → 1.5). */
  seconds: number
}

/** Source of the JSON Schema `pattern` for durations (schemas/gateway-config.json uses the same). */
// Written without look-arounds so that any JSON Schema validator (RE2 included) can run it:
// a non-empty date part optionally followed by a non-empty time part, or a time part alone.
export const ISO_DURATION_PATTERN =
  '^P(?:(?:\\d+Y(?:\\d+M)?(?:\\d+W)?(?:\\d+D)?|\\d+M(?:\\d+W)?(?:\\d+D)?|\\d+W(?:\\d+D)?|\\d+D)' +
  '(?:T(?:\\d+H(?:\\d+M)?(?:\\d+(?:\\.\\d+)?S)?|\\d+M(?:\\d+(?:\\.\\d+)?S)?|\\d+(?:\\.\\d+)?S))?' +
  '|T(?:\\d+H(?:\\d+M)?(?:\\d+(?:\\.\\d+)?S)?|\\d+M(?:\\d+(?:\\.\\d+)?S)?|\\d+(?:\\.\\d+)?S))$'

const DURATION_RE =
  /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/

/** Longest string we accept; keeps numbers far away from float trouble. */
const MAX_LENGTH = 64

export class DurationError extends RangeError {
  constructor (message: string) {
    super(message)
    this.name = 'DurationError'
  }
}

/** Parse an ISO 8601 duration; throws DurationError on anything outside the grammar above. */
export function parseDuration (text: string): Duration {
  if (typeof text !== 'string') throw new DurationError(`${String(text)} is not an ISO 8601 duration`)
  const m = text.length <= MAX_LENGTH ? DURATION_RE.exec(text) : null
  // The regex lets 'P' and 'PT' (every group empty) and 'P…T' (nothing after T) through.
  if (m === null || text === 'P' || text.endsWith('T')) {
    throw new DurationError(`"${text}" is not an ISO 8601 duration`)
  }
  const [, y, mo, w, d, h, mi, s] = m
  const num = (v: string | undefined): number => {
    if (v === undefined) return 0
    const n = Number(v)
    if (!Number.isFinite(n) || (!v.includes('.') && !Number.isSafeInteger(n))) {
      throw new DurationError(`"${text}" has a component too large`)
    }
    return n
  }
  return {
    years: num(y),
    months: num(mo),
    weeks: num(w),
    days: num(d),
    hours: num(h),
    minutes: num(mi),
    seconds: num(s)
  }
}

/** Like parseDuration but returns undefined instead of throwing. */
export function tryParseDuration (text: string): Duration | undefined {
  try {
    return parseDuration(text)
  } catch {
    return undefined
  }
}

export function isValidDuration (text: unknown): text is string {
  return typeof text === 'string' && tryParseDuration(text) !== undefined
}

/** Canonical ISO 8601 text of a duration (zero parts omitted; zero duration = 'PT0S'). */
export function formatDuration (d: Duration): string {
  let date = ''
  if (d.years !== 0) date += `${d.years}Y`
  if (d.months !== 0) date += `${d.months}M`
  if (d.weeks !== 0) date += `${d.weeks}W`
  if (d.days !== 0) date += `${d.days}D`
  let time = ''
  if (d.hours !== 0) time += `${d.hours}H`
  if (d.minutes !== 0) time += `${d.minutes}M`
  if (d.seconds !== 0) time += `${d.seconds}S`
  if (date === '' && time === '') return 'PT0S'
  return `P${date}${time === '' ? '' : `T${time}`}`
}

const MS_PER_DAY = 86_400_000

function daysInMonth (year: number, month0: number): number {
  const probe = new Date(0)
  probe.setUTCFullYear(year, month0 + 1, 0) // day 0 of the next month = last day of this one
  return probe.getUTCDate()
}

function addCalendarMonths (date: Date, months: number): Date {
  if (months === 0) return new Date(date.getTime())
  const total = date.getUTCFullYear() * 12 + date.getUTCMonth() + months
  const year = Math.floor(total / 12)
  const month0 = total - year * 12
  const day = Math.min(date.getUTCDate(), daysInMonth(year, month0))
  const out = new Date(date.getTime()) // keeps the time of day
  out.setUTCFullYear(year, month0, day) // setUTCFullYear, unlike Date.UTC, does not remap years 0–99
  return out
}

function timeMs (d: Duration, sign: 1 | -1): number {
  // Round seconds to whole milliseconds; hours and minutes are integers.
  const secondsMs = Math.round(d.seconds * 1000)
  return sign * (d.hours * 3_600_000 + d.minutes * 60_000 + secondsMs)
}

function apply (date: Date, duration: Duration | string, sign: 1 | -1): Date {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new RangeError('addDuration: invalid date')
  }
  const d = typeof duration === 'string' ? parseDuration(duration) : duration
  const monthsDate = addCalendarMonths(date, sign * (d.years * 12 + d.months))
  const ms = monthsDate.getTime() + sign * (d.weeks * 7 + d.days) * MS_PER_DAY + timeMs(d, sign)
  const out = new Date(ms)
  if (Number.isNaN(out.getTime())) throw new RangeError('addDuration: result out of the Date range')
  return out
}

/** date + duration, calendar arithmetic in UTC (see the header comment). Never mutates `date`. */
export function addDuration (date: Date, duration: Duration | string): Date {
  return apply(date, duration, 1)
}

/** date − duration: the same steps as addDuration with every component negated. */
export function subtractDuration (date: Date, duration: Duration | string): Date {
  return apply(date, duration, -1)
}
