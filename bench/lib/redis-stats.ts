// Where Redis spends its time during a measured phase: main-thread CPU, the
// commands that cost the most, and (with appendfsync always) how long the
// fsync of each write batch blocked the main thread, from Redis's own latency
// monitor (event "aof-fsync-always", one maximum per second).
import type { Redis } from 'ioredis'
import { parseInfo } from './redis.js'
import { median } from './stats.js'

export interface RedisSnapshot {
  at: number
  cpuMainSeconds: number
  commands: Map<string, { calls: number, usec: number }>
}

export async function redisSnapshot (redis: Redis): Promise<RedisSnapshot> {
  const [cpu, stats] = await Promise.all([redis.info('cpu'), redis.info('commandstats')])
  const c = parseInfo(cpu)
  const commands = new Map<string, { calls: number, usec: number }>()
  for (const [key, value] of Object.entries(parseInfo(stats))) {
    const m = /calls=(\d+),usec=(\d+)/.exec(value)
    if (m !== null) commands.set(key.replace(/^cmdstat_/, ''), { calls: Number(m[1]), usec: Number(m[2]) })
  }
  const main = Number(c.used_cpu_user_main_thread ?? c.used_cpu_user) + Number(c.used_cpu_sys_main_thread ?? c.used_cpu_sys)
  return { at: performance.now(), cpuMainSeconds: main, commands }
}

export interface RedisUsage {
  seconds: number
  cpuMainSeconds: number
  /** Main-thread CPU ÷ wall time. */
  cpuShare: number
  /** Commands by total time, descending: [name, calls, usec]. */
  top: Array<{ command: string, calls: number, usec: number }>
}

export class RedisUsageMeter {
  seconds = 0
  cpu = 0
  readonly commands = new Map<string, { calls: number, usec: number }>()
  #start: RedisSnapshot | undefined

  constructor (private readonly redis: Redis) {}

  async begin (): Promise<void> { this.#start = await redisSnapshot(this.redis) }

  async end (): Promise<void> {
    if (this.#start === undefined) return
    const end = await redisSnapshot(this.redis)
    this.seconds += (end.at - this.#start.at) / 1000
    this.cpu += end.cpuMainSeconds - this.#start.cpuMainSeconds
    for (const [name, after] of end.commands) {
      const before = this.#start.commands.get(name) ?? { calls: 0, usec: 0 }
      const acc = this.commands.get(name) ?? { calls: 0, usec: 0 }
      acc.calls += after.calls - before.calls
      acc.usec += after.usec - before.usec
      this.commands.set(name, acc)
    }
    this.#start = undefined
  }

  usage (): RedisUsage {
    const top = [...this.commands].map(([command, v]) => ({ command, ...v })).filter((c) => c.calls > 0).sort((a, b) => b.usec - a.usec)
    return { seconds: this.seconds, cpuMainSeconds: this.cpu, cpuShare: this.seconds > 0 ? this.cpu / this.seconds : 0, top }
  }
}

/** Turns on Redis's latency monitor (events of at least `thresholdMs`). */
export async function enableLatencyMonitor (redis: Redis, thresholdMs = 1): Promise<void> {
  await redis.config('SET', 'latency-monitor-threshold', String(thresholdMs))
  await redis.call('LATENCY', 'RESET')
}

/** Per-second maxima of one latency event (ms) since the monitor was enabled or reset. */
export async function latencyHistory (redis: Redis, event = 'aof-fsync-always'): Promise<{ seconds: number, medianMaxMs: number, maxMs: number }> {
  const history = await redis.call('LATENCY', 'HISTORY', event) as Array<[number, number]>
  const maxima = history.map(([, ms]) => Number(ms))
  return { seconds: maxima.length, medianMaxMs: median(maxima), maxMs: maxima.length === 0 ? 0 : Math.max(...maxima) }
}
