// The test harness's own redis-server: a real one, on a random free loopback
// port, in a fresh temporary directory, AOF on with appendfsync always,
// noeviction. Built on EmbeddedRedis (TCP mode, unsupervised) so that kill()
// leaves it dead and restart() brings it back on the same dir and port, and
// clients (ioredis, BullMQ) reconnect by themselves.
//
// Nothing is left behind:
//  - with a tap test, t.teardown stops it and removes the directory, even when
//    the test fails;
//  - if this process exits without teardown, an 'exit' hook SIGKILLs the
//    server and removes the directory;
//  - if this process is killed (SIGTERM from a tap timeout, SIGKILL), a
//    one-line /bin/sh watchdog notices within a second, SIGKILLs the server
//    and removes the directory. The server also stays in this process group,
//    so a Ctrl-C in a terminal reaches it directly.

import { mkdtemp, rm } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { EmbeddedRedis, findFreePort } from '../../src/store/embedded-redis.js'

export interface TestRedis {
  /** `redis://127.0.0.1:PORT` */
  url: string
  port: number
  /** The temporary directory (redis data is in `<dir>/redis/`). */
  dir: string
  /** Current redis-server pid (undefined while stopped or killed). */
  readonly pid: number | undefined
  /** Graceful stop (SIGTERM: final AOF fsync). The directory stays, for restart(). */
  stop(): Promise<void>
  /** SIGKILL, like a crash or power loss (with appendfsync always, acknowledged writes survive). */
  kill(): Promise<void>
  /** Start again on the same dir and port (after stop() or kill()). */
  restart(): Promise<void>
  /** Stop and remove the directory (what teardown does). Idempotent. */
  destroy(): Promise<void>
}

interface Teardownable {
  teardown(fn: () => unknown): void
}

export interface StartRedisOptions {
  appendfsync?: 'always' | 'everysec'
}

const liveDirs = new Map<string, () => number | undefined>()
let exitHookInstalled = false

function installExitHook (): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const [dir, pidOf] of liveDirs) {
      const pid = pidOf()
      if (pid !== undefined) {
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
      try { rmSync(dir, { recursive: true, force: true }) } catch {}
    }
  })
}

export async function startRedis (t?: Teardownable, opts: StartRedisOptions = {}): Promise<TestRedis> {
  installExitHook()
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rogatory-redis-'))
  let server: EmbeddedRedis | undefined
  liveDirs.set(dir, () => server?.pid)
  let destroyed = false

  const destroy = async (): Promise<void> => {
    if (destroyed) return
    destroyed = true
    try {
      await server?.stop()
    } finally {
      liveDirs.delete(dir)
      await rm(dir, { recursive: true, force: true })
    }
  }
  // Registered before starting, so a failed start still cleans up.
  t?.teardown(destroy)

  let port = 0
  let lastErr: unknown
  try {
    // The free port can be taken by someone else between our probe and
    // redis-server's bind (tests run in parallel): retry with another one.
    for (let attempt = 0; attempt < 5; attempt++) {
      port = await findFreePort()
      const candidate = new EmbeddedRedis({
        dataDir: dir,
        port,
        appendfsync: opts.appendfsync ?? 'always',
        supervise: false,
        detached: false,
        exitSignal: 'SIGKILL',
        watchdog: true,
        watchdogRemoveDir: dir,
        startTimeoutMs: 15_000,
        stopTimeoutMs: 10_000,
        logger: quietLogger
      })
      server = candidate
      try {
        await candidate.start()
        lastErr = undefined
        break
      } catch (err) {
        lastErr = err
        server = undefined
        await candidate.stop().catch(() => {})
        if (!/Address already in use|EADDRINUSE|bind/i.test((err as Error).message)) break
      }
    }
    if (lastErr !== undefined || !server) throw lastErr ?? new Error('redis-server did not start')
  } catch (err) {
    if (!t) await destroy()
    throw err
  }

  const s = server
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid () { return s.pid },
    stop: () => s.stop(),
    kill: () => s.kill('SIGKILL'),
    restart: async () => {
      if (destroyed) throw new Error('startRedis: restart() after destroy()')
      await s.start()
    },
    destroy
  }
}

const quietLogger = {
  info () {},
  warn (obj: object, msg?: string) {
    // Expected in tests that kill the server on purpose.
    if (msg && /exited \(not supervised\)/.test(msg)) return
    console.error(`[test-redis] ${msg ?? ''} ${JSON.stringify(obj)}`)
  },
  error (obj: object, msg?: string) { console.error(`[test-redis] ${msg ?? ''} ${JSON.stringify(obj)}`) }
}
