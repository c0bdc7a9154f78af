// Order statistics for latency samples. Percentiles are nearest-rank on the
// sorted sample (no interpolation), so p99 of 6000 samples is the 5940th value.

export function sorted (values: number[]): number[] {
  return Float64Array.from(values).sort() as unknown as number[]
}

export function percentile (sortedValues: ArrayLike<number>, p: number): number {
  const n = sortedValues.length
  if (n === 0) return Number.NaN
  const rank = Math.min(n, Math.max(1, Math.ceil((p / 100) * n)))
  return sortedValues[rank - 1]
}

export function median (values: number[]): number {
  if (values.length === 0) return Number.NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

export function mean (values: number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length
}

export interface Summary { n: number, min: number, p50: number, p90: number, p99: number, max: number, mean: number }

export function summarize (values: number[]): Summary {
  const s = sorted(values)
  return {
    n: s.length,
    min: s.length === 0 ? Number.NaN : s[0],
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length === 0 ? Number.NaN : s[s.length - 1],
    mean: mean(values)
  }
}

/** Rounds for display: 3 significant decimals under 10, 1 under 1000, none above. */
export function round (value: number): number {
  if (!Number.isFinite(value)) return value
  const abs = Math.abs(value)
  const digits = abs < 10 ? 3 : abs < 1000 ? 1 : 0
  const f = 10 ** digits
  return Math.round(value * f) / f
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
