// CPU time of a process (all its threads), from /proc/<pid>/stat: user + system.
// A figure far less sensitive to a noisy shared machine than latency: it counts
// the work done, not the waiting for a core.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let ticks: number | undefined

function clockTicks (): number {
  if (ticks !== undefined) return ticks
  try {
    ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    ticks = 100
  }
  return ticks
}

/** Seconds of CPU the process has used so far (NaN where /proc is unavailable). */
export function cpuSeconds (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / clockTicks()
  } catch {
    return Number.NaN
  }
}

export class CpuMeter {
  #start = Number.NaN
  total = 0
  constructor (private readonly pid: number) {}
  begin (): void { this.#start = cpuSeconds(this.pid) }
  end (): void { const now = cpuSeconds(this.pid); if (Number.isFinite(now - this.#start)) this.total += now - this.#start }
}
