// What the figures were measured on. Every benchmark records it with its result.
import { execFileSync } from 'node:child_process'
import os from 'node:os'

export interface MachineInfo {
  cpu: string
  cores: number
  memoryGiB: number
  node: string
  redis: string
  os: string
  loadAverage: number[]
}

let redisVersion: string | undefined

/** `redis-server --version` of the binary the benchmarks start (REDIS_SERVER_PATH or PATH). */
export function redisServerVersion (): string {
  if (redisVersion !== undefined) return redisVersion
  try {
    const out = execFileSync(process.env.REDIS_SERVER_PATH ?? 'redis-server', ['--version'], { encoding: 'utf8', timeout: 5000 })
    redisVersion = /v=([0-9.]+)/.exec(out)?.[1] ?? out.trim()
  } catch {
    redisVersion = 'unknown (redis-server not runnable)'
  }
  return redisVersion
}

export function machineInfo (): MachineInfo {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    redis: redisServerVersion(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100)
  }
}

export function machineLine (m: MachineInfo): string {
  return `cpu: ${m.cpu} × ${m.cores} cores, ${m.memoryGiB} GiB; node ${m.node}; redis ${m.redis}; ${m.os}; load ${m.loadAverage.join(' ')}`
}
