// `npm run bench`: runs the six benchmarks one after another, prints one table
// (benchmark, figure, value, baseline, ratio, goal, met?) with the machine's
// description, and merges every result into bench/results.json (keyed by
// benchmark; --quick results go to bench/results-quick.json instead, so that
// reduced sizes never replace full-size figures).
//
//   node --import tsx bench/run.ts [--quick] [--only e2e,lists] [--skip reports] [--spawn] [--out FILE]
//
// A benchmark module that exports run() is imported and called (e2e, lists,
// deadlines and memory take { quick }; others are called without arguments,
// with their --quick flags in process.argv while they load); one without is
// run as `node --import tsx bench/<name>.ts` and its figures are read back
// from bench/results.json. A missing file is reported as "not available".
//
// Duration on the shared 2-core machine, quiet (2026-12-02, from a fresh
// clone): full run 28 min — intake 2.3 min, e2e 2.3 min, lists 6 min (writing
// 1,000,000 requests at ~3,400/s), reports 14 min (its own 1,000,000-request
// seeding), deadlines 2 min, memory 0.5 min; --quick about 3 minutes (results
// in bench/results-quick.json).
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseFlags } from './lib/args.js'
import { log } from './lib/gateway.js'
import { machineInfo, machineLine } from './lib/machine.js'
import { benchDir, figure, printResults, quickResultsPath, readResults, recordResults, resultsPath, type BenchResult, type Figure } from './lib/results.js'

interface Entry {
  key: string
  file: string
  title: string
  /** Flags for --quick, for benchmarks that do not take { quick }. */
  quickArgs?: string[]
}

const entries: Entry[] = [
  { key: 'intake', file: 'intake.ts', title: '1. Intake', quickArgs: ['--duration=5', '--rounds=1'] },
  { key: 'e2e', file: 'e2e.ts', title: '2. End to end' },
  { key: 'lists', file: 'lists.ts', title: '3. Pending lists' },
  { key: 'reports', file: 'reports.ts', title: '4. Reports', quickArgs: ['--small', '1000', '--large', '10000', '--runs', '10'] },
  { key: 'deadlines', file: 'deadlines.ts', title: '5. Deadlines' },
  { key: 'memory', file: 'memory.ts', title: '6. Memory' }
]
const own = new Set(['e2e', 'lists', 'deadlines', 'memory'])

const flagSpec = {
  quick: { type: 'boolean', default: false, help: 'reduced sizes everywhere (4–7 minutes)' },
  only: { type: 'string', default: '', help: 'comma-separated benchmarks to run (intake,e2e,lists,reports,deadlines,memory)' },
  skip: { type: 'string', default: '', help: 'comma-separated benchmarks to leave out' },
  spawn: { type: 'boolean', default: false, help: 'run every benchmark in its own node process' },
  out: { type: 'string', default: '', help: 'results file (default bench/results.json; with --quick bench/results-quick.json)' }
} as const

type Row = BenchResult | { benchmark: string, unavailable: string }

const exportsRun = (source: string): boolean => /export\s+(async\s+)?function\s+run\s*\(|export\s+const\s+run\s*=|export\s*\{[^}]*\brun\b[^}]*\}/.test(source)

const num = (value: unknown): number | undefined => typeof value === 'number' && Number.isFinite(value) ? value : undefined

/** Figures of a result in another shape: the known fields of intake and reports, else every number it holds. */
function adapt (key: string, title: string, raw: unknown, command: string, seconds: number): BenchResult {
  const r = (raw ?? {}) as Record<string, any>
  if (Array.isArray(r.figures) && typeof r.benchmark === 'string') return r as BenchResult
  const figures: Figure[] = []
  if (key === 'intake' && num(r.gatewayRps) !== undefined) {
    const goal = num(r.rpsGoal)
    figures.push(figure('max throughput (gateway ÷ bare)', r.gatewayRps, 'req/s', { baseline: r.bareRps, ratio: num(r.rpsRatio), ...(goal === undefined ? {} : { goal: `ratio ≥ ${goal}`, met: (num(r.rpsRatio) ?? 0) >= goal }) }))
    if (num(r.gatewayP99AtHalfMs) !== undefined) {
      const p99Goal = num(r.p99Goal)
      figures.push(figure(`p99 at ${String(r.halfRate ?? '½ max')} req/s`, r.gatewayP99AtHalfMs, 'ms', { baseline: r.bareP99AtHalfMs, ratio: num(r.p99Ratio), ...(p99Goal === undefined ? {} : { goal: `ratio ≤ ${p99Goal}`, met: (num(r.p99Ratio) ?? Infinity) <= p99Goal }) }))
    }
    const cpu = num(r.gatewayCpuUsPerRequest)
    const bareCpu = num(r.bareCpuUsPerRequest)
    if (cpu !== undefined) figures.push(figure('CPU per request, server process (gateway ÷ bare)', cpu, 'µs', { baseline: bareCpu, ...(bareCpu === undefined || bareCpu === 0 ? {} : { ratio: cpu / bareCpu }) }))
    if (num(r.gatewayRedisCpuUsPerRequest) !== undefined) figures.push(figure('CPU per request, the gateway\'s redis-server', r.gatewayRedisCpuUsPerRequest, 'µs'))
  } else if (key === 'reports' && r.large?.api !== undefined) {
    const goals = r.goals ?? {}
    figures.push(figure(`report via API, ${Number(r.large.requests).toLocaleString('en-US')} requests (median)`, r.large.api.medianMs, 'ms', {
      baseline: r.small?.api?.medianMs,
      ratio: num(r.ratio?.api),
      goal: `ratio ≤ ${String(goals.ratioAtMost ?? 2)} and < ${String(goals.largeBelowMs ?? 100)} ms`,
      ...(typeof r.met === 'boolean' ? { met: r.met } : {})
    }))
    if (r.large.store !== undefined) figures.push(figure('ReportStore.turnaround (median)', r.large.store.medianMs, 'ms', { baseline: r.small?.store?.medianMs, ratio: num(r.ratio?.store) }))
    if (r.large.api.p90Ms !== undefined) figures.push(figure('report via API (p90)', r.large.api.p90Ms, 'ms', { baseline: r.small?.api?.p90Ms }))
  } else {
    for (const [name, value] of Object.entries(r)) if (num(value) !== undefined) figures.push(figure(name, value as number, ''))
  }
  return {
    benchmark: key,
    title,
    at: new Date().toISOString(),
    durationSeconds: seconds,
    command,
    params: {},
    figures,
    notes: figures.length === 0 ? ['ran, but reported no figures in a shape this runner knows'] : [],
    diagnostics: { raw },
    machine: machineInfo()
  }
}

async function spawnBench (file: string, args: string[]): Promise<number | null> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(benchDir, file), ...args], { cwd: join(benchDir, '..'), stdio: ['ignore', 'inherit', 'inherit'] })
  return await new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

/** Imports a module with these flags in process.argv (for modules that read it when they load), not as the entry point. */
async function importWithArgv (file: string, args: string[]): Promise<Record<string, unknown>> {
  const saved = process.argv
  process.argv = [saved[0], saved[1], ...args]
  try {
    return await import(pathToFileURL(join(benchDir, file)).href) as Record<string, unknown>
  } finally {
    process.argv = saved
  }
}

async function main (): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), flagSpec, 'usage: node --import tsx bench/run.ts [flags]')
  const only = new Set(flags.only.split(',').filter(Boolean))
  const skip = new Set(flags.skip.split(',').filter(Boolean))
  for (const name of [...only, ...skip]) if (!entries.some((e) => e.key === name)) throw new Error(`unknown benchmark ${name}`)
  const started = performance.now()
  log(`bench: ${machineLine(machineInfo())}`)
  const out = flags.out !== '' ? flags.out : flags.quick ? quickResultsPath : resultsPath
  const rows: Row[] = []
  const toRecord: Array<BenchResult | (Record<string, unknown> & { benchmark: string })> = []
  for (const entry of entries) {
    if ((only.size > 0 && !only.has(entry.key)) || skip.has(entry.key)) continue
    const path = join(benchDir, entry.file)
    if (!existsSync(path)) {
      log(`bench: ${entry.title}: not available (bench/${entry.file} is missing)`)
      rows.push({ benchmark: entry.key, unavailable: `not available: bench/${entry.file} is missing` })
      continue
    }
    const args = flags.quick ? (own.has(entry.key) ? ['--quick'] : entry.quickArgs ?? []) : []
    const command = `node --import tsx bench/${entry.file}${args.length > 0 ? ` ${args.join(' ')}` : ''}`
    const t0 = performance.now()
    log(`bench: ${entry.title} — ${command}`)
    try {
      const source = readFileSync(path, 'utf8')
      if (exportsRun(source) && !flags.spawn) {
        const mod = await importWithArgv(entry.file, own.has(entry.key) ? [] : args)
        const runFn = mod.run as (options?: { quick?: boolean, argv?: string[] }) => Promise<unknown>
        const raw = own.has(entry.key) ? await runFn({ quick: flags.quick, argv: [] }) : await runFn()
        const result = adapt(entry.key, entry.title, raw, command, Math.round((performance.now() - t0) / 1000))
        rows.push(result)
        toRecord.push(result)
      } else {
        const startedAt = Date.now()
        const code = await spawnBench(entry.file, args)
        if (code !== 0) throw new Error(`exited with code ${String(code)}`)
        // Benchmarks built on bench/lib write --quick results aside; the others write bench/results.json.
        const source = own.has(entry.key) && flags.quick ? quickResultsPath : resultsPath
        const written = readResults(source)?.[entry.key] as Record<string, any> | undefined
        const when = Date.parse(written?.at ?? written?.measuredAt ?? '')
        if (written === undefined || !(when >= startedAt - 1000)) throw new Error(`finished without writing its figures to ${source}${exportsRun(source === resultsPath ? readFileSync(path, 'utf8') : '') ? ' (it exports run(): try without --spawn)' : ''}`)
        // Written by the benchmark itself into bench/results.json, in its own shape: shown, and copied as it is when the results go elsewhere.
        rows.push(adapt(entry.key, entry.title, written, command, Math.round((performance.now() - t0) / 1000)))
        if (out !== source) toRecord.push({ ...written, benchmark: entry.key })
      }
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error)
      log(`bench: ${entry.title} FAILED: ${message}`)
      rows.push({ benchmark: entry.key, unavailable: `FAILED: ${message}` })
    }
    log(`bench: ${entry.title} took ${Math.round((performance.now() - t0) / 1000)} s`)
  }
  if (toRecord.length > 0) recordResults(toRecord, out)
  process.stdout.write(`\nRogatory benchmarks${flags.quick ? ' (--quick: reduced sizes)' : ''}, ${new Date().toISOString()}, ${Math.round((performance.now() - started) / 60_000)} min\n`)
  printResults(rows)
  process.stdout.write(`\nresults merged into ${out}\n`)
}

main().then(() => process.exit(0), (error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
  process.exit(1)
})
