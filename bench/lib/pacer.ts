// An open-loop, fixed-rate sender: request i is due at start + i / rate, and is
// fired when due whether or not earlier ones were answered (unlike autocannon's
// closed loop, a slow server does not slow the arrivals down). Timer jitter is
// measured: `lag` is how late each request left compared with its slot.
import { sleep } from './stats.js'

export interface PacedRun { sent: number, seconds: number, lagMs: number[] }

export async function paced (rate: number, durationSeconds: number, fire: (i: number) => void): Promise<PacedRun> {
  const interval = 1000 / rate
  const total = Math.round(durationSeconds * rate)
  const start = performance.now() + 5
  const lagMs: number[] = []
  let i = 0
  while (i < total) {
    const now = performance.now()
    while (i < total && start + i * interval <= now) {
      lagMs.push(now - (start + i * interval))
      fire(i)
      i++
    }
    if (i >= total) break
    const wait = start + i * interval - performance.now()
    await sleep(Math.max(1, Math.floor(wait)))
  }
  return { sent: total, seconds: (performance.now() - start) / 1000, lagMs }
}
