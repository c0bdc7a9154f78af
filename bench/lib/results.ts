// The shape every benchmark reports, and bench/results.json: one entry per
// benchmark (keyed by its short name), merged so that running one benchmark
// leaves the others' last results in place.
//
// A benchmark module may export
//   run(options?: { quick?: boolean, argv?: string[] }): Promise<BenchResult>
// and, when run on its own, call recordResult(result) and printResults([result]).
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { machineInfo, machineLine, type MachineInfo } from './machine.js'
import { round } from './stats.js'

export interface Figure {
  /** What is measured, e.g. "p99 submission → webhook". */
  name: string
  value: number
  unit: string
  /** The same figure for the baseline, measured in the same run. */
  baseline?: number
  /** Baseline ÷ figure direction: value / baseline unless stated in the name. */
  ratio?: number
  /** Human-readable goal, e.g. "≤ 50 ms" or "ratio ≤ 2". */
  goal?: string
  met?: boolean
  note?: string
}

export interface BenchResult {
  /** Short key: intake, e2e, lists, reports, deadlines, memory. */
  benchmark: string
  title: string
  /** ISO time the benchmark finished. */
  at: string
  durationSeconds: number
  /** The command line that reproduces it. */
  command: string
  params: Record<string, unknown>
  /** What the baseline is, in a sentence. */
  baseline?: string
  figures: Figure[]
  notes?: string[]
  /** Per-round raw figures, for whoever wants to look at the spread. */
  rounds?: unknown[]
  /** Anything else worth keeping (Redis command times, fsync stalls...). */
  diagnostics?: Record<string, unknown>
  machine: MachineInfo
}

/**
 * bench/results.json: one top-level entry per benchmark, keyed by its short
 * name (intake, e2e, lists, reports, deadlines, memory), plus `_meta`. Entries
 * written by other tools in their own shape (bench/reports.ts writes "reports")
 * are kept as they are.
 */
export type ResultsFile = Record<string, unknown> & { _meta?: { updatedAt: string, machine: MachineInfo } }

export const benchDir = dirname(dirname(fileURLToPath(import.meta.url)))
export const resultsPath = join(benchDir, 'results.json')
/** Where --quick runs go, so that reduced-size figures never replace full-size ones. */
export const quickResultsPath = join(benchDir, 'results-quick.json')

export function readResults (path = resultsPath): ResultsFile | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ResultsFile
  } catch {
    return undefined
  }
}

/** Merges results into bench/results.json (atomically: written aside, then renamed); other entries are kept. */
export function recordResults (results: Array<BenchResult | (Record<string, unknown> & { benchmark: string })>, path = resultsPath): void {
  const current = readResults(path) ?? {}
  // Results from before the top-level layout.
  const legacy = (current as { benchmarks?: Record<string, unknown> }).benchmarks ?? {}
  const merged: ResultsFile = { ...legacy, ...current, _meta: { updatedAt: new Date().toISOString(), machine: machineInfo() } }
  delete (merged as { benchmarks?: unknown }).benchmarks
  delete (merged as { updatedAt?: unknown }).updatedAt
  delete (merged as { machine?: unknown }).machine
  for (const result of results) merged[result.benchmark] = result
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(merged, null, 2) + '\n')
  renameSync(tmp, path)
}

export const recordResult = (result: BenchResult, path = resultsPath): void => recordResults([result], path)

/** A figure compared with a baseline; the ratio is value / baseline. */
export function figure (name: string, value: number, unit: string, extra: Omit<Figure, 'name' | 'value' | 'unit'> = {}): Figure {
  const out: Figure = { name, value: round(value), unit, ...extra }
  if (extra.baseline !== undefined) {
    out.baseline = round(extra.baseline)
    if (extra.ratio === undefined && extra.baseline !== 0) out.ratio = round(value / extra.baseline)
  }
  if (out.ratio !== undefined) out.ratio = round(out.ratio)
  return out
}

export function atMost (value: number, target: number): boolean {
  return Number.isFinite(value) && value <= target
}

// ---------------------------------------------------------------------------
// The table: benchmark, figure, value, baseline, ratio, goal, met?

const headers = ['benchmark', 'figure', 'value', 'baseline', 'ratio', 'goal', 'met?']

function show (value: number | undefined, unit = ''): string {
  if (value === undefined) return ''
  if (!Number.isFinite(value)) return String(value)
  const text = Math.abs(value) >= 10_000 ? Math.round(value).toLocaleString('en-US') : String(round(value))
  return unit === '' ? text : `${text} ${unit}`
}

export function tableRows (results: Array<BenchResult | { benchmark: string, title?: string, unavailable: string }>): string[][] {
  const rows: string[][] = []
  for (const result of results) {
    if ('unavailable' in result) {
      rows.push([result.benchmark, result.unavailable, '', '', '', '', ''])
      continue
    }
    for (const f of result.figures) {
      rows.push([
        result.benchmark,
        f.name,
        show(f.value, f.unit),
        show(f.baseline, f.unit),
        f.ratio === undefined ? '' : `${show(f.ratio)}×`,
        f.goal ?? '',
        f.met === undefined ? '' : f.met ? 'yes' : 'NO'
      ])
    }
  }
  return rows
}

export function formatTable (rows: string[][]): string {
  const all = [headers, ...rows]
  const widths = headers.map((_, col) => Math.max(...all.map((row) => (row[col] ?? '').length)))
  const line = (row: string[]): string => row.map((cell, col) => (cell ?? '').padEnd(widths[col])).join(' │ ').trimEnd()
  const rule = widths.map((w) => '─'.repeat(w)).join('─┼─')
  return [line(headers), rule, ...rows.map(line)].join('\n')
}

export function printResults (results: Array<BenchResult | { benchmark: string, unavailable: string }>): void {
  const real = results.find((r): r is BenchResult => !('unavailable' in r))
  process.stdout.write(`\n${formatTable(tableRows(results))}\n`)
  process.stdout.write(`\n${machineLine(real?.machine ?? machineInfo())}\n`)
  for (const r of results) {
    if ('unavailable' in r) continue
    if (r.baseline !== undefined) process.stdout.write(`\n[${r.benchmark}] baseline: ${r.baseline}`)
    for (const note of r.notes ?? []) process.stdout.write(`\n[${r.benchmark}] ${note}`)
  }
  process.stdout.write('\n')
}

/** For `node --import tsx bench/<name>.ts`: true when this module is the entry point. */
export function isMain (moduleUrl: string): boolean {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    return fileURLToPath(moduleUrl) === entry || fileURLToPath(moduleUrl).replace(/\.ts$/, '') === entry.replace(/\.ts$/, '')
  } catch {
    return false
  }
}

/** Runs a benchmark's main as a script: prints, records, exits with 0 (or 1 on failure). */
export function runAsScript (run: (options: { quick?: boolean, argv?: string[] }) => Promise<BenchResult>): void {
  const argv = process.argv.slice(2)
  const quick = argv.includes('--quick')
  run({ argv, quick }).then((result) => {
    const path = quick ? quickResultsPath : resultsPath
    recordResult(result, path)
    printResults([result])
    process.stdout.write(`\nrecorded in ${path}\n`)
    process.exit(0)
  }, (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
    process.exit(1)
  })
}
