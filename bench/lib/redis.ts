// A redis-server for one benchmark, configured as production runs it: the
// gateway's own EmbeddedRedis (AOF on, appendfsync always, noeviction, unix
// socket only) in a fresh temporary directory that is removed afterwards, even
// when the benchmark dies (exit hook, and EmbeddedRedis's watchdog for SIGKILL).
import { readFileSync, rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import { EmbeddedRedis } from '../../src/store/embedded-redis.js'

export interface BenchRedis {
  /** The socket path (what REDIS_URL takes) or redis://127.0.0.1:PORT. */
  url: string
  dir: string
  server: EmbeddedRedis
  /** A fresh ioredis client (closed by stop()). */
  client: () => Redis
  info: (section: string) => Promise<Record<string, string>>
  stop: () => Promise<void>
}

const liveDirs = new Set<string>()
let hooked = false

/** A temporary directory removed on exit (short, so that unix socket paths fit). */
export async function tempDir (label: string): Promise<string> {
  if (!hooked) {
    hooked = true
    process.on('exit', () => { for (const dir of liveDirs) try { rmSync(dir, { recursive: true, force: true }) } catch {} })
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), `rog-${label}-`))
  liveDirs.add(dir)
  return dir
}

export async function removeTempDir (dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
  liveDirs.delete(dir)
}

/** Bytes the kernel says can be allocated without swapping (MemAvailable), else os.freemem(). */
export function availableMemory (): number {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))
    if (m !== null) return Number(m[1]) * 1024
  } catch {}
  return os.freemem()
}

/** Waits while Redis rewrites its AOF in the background (a fork that competes for CPU and disk). */
export async function aofRewriteDone (info: (section: string) => Promise<Record<string, string>>, timeoutMs = 30 * 60_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    const p = await info('persistence')
    if (p.aof_rewrite_in_progress !== '1' && p.aof_rewrite_scheduled !== '1') return
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

export function parseInfo (text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':')
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1)
  }
  return out
}

export async function startBenchRedis (opts: { label?: string, appendfsync?: 'always' | 'everysec' } = {}): Promise<BenchRedis> {
  const dir = await tempDir(opts.label ?? 'bench')
  const server = new EmbeddedRedis({
    dataDir: dir,
    appendfsync: opts.appendfsync ?? 'always',
    supervise: false,
    detached: false,
    watchdog: true,
    watchdogRemoveDir: dir,
    startTimeoutMs: 20_000,
    // A big AOF takes a while to close.
    stopTimeoutMs: 60_000,
    logger: { info () {}, warn (obj, msg) { if (!/not supervised/.test(msg ?? '')) process.stderr.write(`[bench-redis] ${msg ?? ''} ${JSON.stringify(obj)}\n`) }, error (obj, msg) { process.stderr.write(`[bench-redis] ${msg ?? ''} ${JSON.stringify(obj)}\n`) } }
  })
  const url = await server.start()
  const clients: Redis[] = []
  const client = (): Redis => {
    const c = new Redis(url, { maxRetriesPerRequest: null })
    c.on('error', () => {})
    clients.push(c)
    return c
  }
  const admin = client()
  return {
    url,
    dir,
    server,
    client,
    info: async (section) => parseInfo(await admin.info(section)),
    stop: async () => {
      for (const c of clients) c.disconnect()
      await server.stop()
      await removeTempDir(dir)
    }
  }
}
