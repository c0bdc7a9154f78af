// The gateway's own supervised redis-server, used when REDIS_URL is unset.
//
// Layout under DATA_DIR:
//   <dataDir>/redis/redis.conf       generated on every start (mode 600)
//   <dataDir>/redis/redis.log        redis-server's log
//   <dataDir>/redis/redis.pid        written by redis-server itself
//   <dataDir>/redis/supervisor.pid   the process supervising it (this process)
//   <dataDir>/redis/redis.sock       the unix socket (when the path is short enough)
//   <dataDir>/redis/appendonlydir/   the AOF: the system of record
//
// Redis listens on a unix socket only (port 0, unixsocketperm 700). When the
// socket path would exceed the platform limit it falls back to a free loopback
// TCP port with a random `requirepass` (the password is part of the URL).
//
// This module needs no Redis client library for the embedded server: startup,
// identity probes and version checks speak RESP over a raw socket. Only
// checkExternalRedis uses ioredis (URLs, TLS, ACL users).

import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { constants as fsConstants, existsSync, readFileSync } from 'node:fs'
import { access, chmod, mkdir, open, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'

export interface EmbeddedRedisLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface EmbeddedRedisOptions {
  /** DATA_DIR. Redis data lives in `<dataDir>/redis/`. Created if missing. */
  dataDir: string
  /** Path or command name of redis-server. Default: $REDIS_SERVER_PATH or `redis-server` on PATH. */
  redisServerPath?: string
  logger?: EmbeddedRedisLogger
  /** Default `always`: an accepted request is on disk. */
  appendfsync?: 'always' | 'everysec'
  /**
   * 0 or unset: unix socket only (loopback TCP on a free port, with a random
   * password, if the socket path is too long). > 0: loopback TCP on that port
   * only, no unix socket (used by the test harness so clients can reconnect
   * after a restart).
   */
  port?: number
  /** `requirepass`. Generated automatically for the TCP fallback. */
  password?: string
  /** Bound on waiting for the first PONG (extended while Redis reports LOADING). Default 10 s. */
  startTimeoutMs?: number
  /** Bound on waiting for exit after SIGTERM before SIGKILL. Default 10 s. */
  stopTimeoutMs?: number
  /** Restart the child when it exits unexpectedly. Default true. */
  supervise?: boolean
  /** Restarts allowed within any 60 s window before giving up. Default 5. */
  maxRestartsPerMinute?: number
  /**
   * Start redis-server in its own process group (default true) so a Ctrl-C
   * aimed at the gateway does not kill Redis before the gateway has drained.
   */
  detached?: boolean
  /** Signal sent to the child if this process exits without stop(). Default SIGTERM. */
  exitSignal?: 'SIGTERM' | 'SIGKILL'
  /**
   * Spawn a tiny `/bin/sh` watchdog that sends exitSignal to redis-server when
   * this process dies (even by SIGKILL). Default true (POSIX only).
   */
  watchdog?: boolean
  /** Directory the watchdog removes after killing redis-server (test harness only). */
  watchdogRemoveDir?: string
  /** Called when supervision gives up (too many restarts). */
  onFatal?: (err: Error) => void
}

export type RedisEndpoint = { path: string } | { host: string; port: number }

const INSTALL_HINT =
  'Install Redis 7: `sudo apt-get install redis-server` (Debian/Ubuntu), `brew install redis` (macOS), ' +
  'or run `docker compose up -d redis` and set REDIS_URL=redis://127.0.0.1:6379.'

export class RedisBinaryMissingError extends Error {
  readonly code = 'REDIS_BINARY_MISSING'
  readonly binary: string
  constructor (binary: string) {
    const looked = binary === 'redis-server' ? ' on PATH' : ` (looked for ${binary})`
    super(`redis-server not found${looked}. ${INSTALL_HINT}`)
    this.name = 'RedisBinaryMissingError'
    this.binary = binary
  }
}

/** Longest unix socket path accepted (sun_path is 108 bytes on Linux, 104 on macOS, both with a NUL). */
export const MAX_UNIX_SOCKET_PATH_BYTES = 103

const noopLogger: EmbeddedRedisLogger = {
  info () {},
  warn (obj, msg) { process.emitWarning(`${msg ?? ''} ${safeJson(obj)}`.trim(), 'EmbeddedRedis') },
  error (obj, msg) { console.error(`[embedded-redis] ${msg ?? ''} ${safeJson(obj)}`.trim()) }
}

// ---------------------------------------------------------------------------
// Children to take down if this process exits without stop(): one listener for
// all instances (many instances in one test process must not trip the
// MaxListeners warning).

const liveChildren = new Map<ChildProcess, NodeJS.Signals>()
let exitHookInstalled = false

function trackChild (child: ChildProcess, signal: NodeJS.Signals): void {
  liveChildren.set(child, signal)
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const [c, sig] of liveChildren) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try { process.kill(c.pid, sig) } catch {}
      }
    }
  })
}

function untrackChild (child: ChildProcess | undefined): void {
  if (child) liveChildren.delete(child)
}

// ---------------------------------------------------------------------------

export class EmbeddedRedis extends EventEmitter {
  readonly dataDir: string
  readonly redisDir: string
  readonly #opts: Required<Pick<EmbeddedRedisOptions,
    'appendfsync' | 'startTimeoutMs' | 'stopTimeoutMs' | 'supervise' | 'maxRestartsPerMinute' | 'detached' | 'exitSignal' | 'watchdog'>> & EmbeddedRedisOptions

  readonly #log: EmbeddedRedisLogger
  #endpoint: RedisEndpoint | undefined
  #password: string | undefined
  #url: string | undefined
  #binary: string | undefined
  #child: ChildProcess | undefined
  #readyChild: ChildProcess | undefined
  #watchdogProc: ChildProcess | undefined
  #outputTail = ''
  #startPromise: Promise<string> | undefined
  #stopping = false
  #restartTimer: NodeJS.Timeout | undefined
  #restartTimes: number[] = []
  #version: string | undefined

  constructor (opts: EmbeddedRedisOptions) {
    super()
    if (!opts || !opts.dataDir) throw new TypeError('EmbeddedRedis: dataDir is required')
    this.#opts = {
      appendfsync: 'always',
      startTimeoutMs: 10_000,
      stopTimeoutMs: 10_000,
      supervise: true,
      maxRestartsPerMinute: 5,
      detached: true,
      exitSignal: 'SIGTERM',
      watchdog: process.platform !== 'win32',
      ...stripUndefined(opts),
      dataDir: opts.dataDir
    }
    if (opts.port !== undefined && (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535)) {
      throw new TypeError(`EmbeddedRedis: invalid port ${String(opts.port)}`)
    }
    this.#log = opts.logger ?? noopLogger
    this.dataDir = path.resolve(opts.dataDir)
    this.redisDir = path.join(this.dataDir, 'redis')
  }

  /** A URL for ioredis: the absolute socket path (ioredis accepts `new Redis('/path/redis.sock')`) or `redis://[:password@]127.0.0.1:PORT`. */
  get url (): string {
    if (this.#url === undefined) throw new Error('EmbeddedRedis: not started')
    return this.#url
  }

  /** Connection options for ioredis / BullMQ (`{ path }` or `{ host, port, password? }`). */
  get connectionOptions (): { path: string; password?: string } | { host: string; port: number; password?: string } {
    if (this.#endpoint === undefined) throw new Error('EmbeddedRedis: not started')
    return this.#password === undefined ? { ...this.#endpoint } : { ...this.#endpoint, password: this.#password }
  }

  get pid (): number | undefined {
    return this.#child?.pid
  }

  /** redis_version reported by the running server (after start). */
  get version (): string | undefined {
    return this.#version
  }

  get running (): boolean {
    return this.#readyChild !== undefined && this.#readyChild === this.#child
  }

  start (): Promise<string> {
    if (this.#startPromise) return this.#startPromise
    this.#stopping = false
    const p = this.#initialStart()
    this.#startPromise = p
    p.catch(() => { if (this.#startPromise === p) this.#startPromise = undefined })
    return p
  }

  async stop (): Promise<void> {
    this.#stopping = true
    if (this.#restartTimer) { clearTimeout(this.#restartTimer); this.#restartTimer = undefined }
    const child = this.#child
    if (child && isRunning(child)) {
      child.kill('SIGTERM')
      if (!(await waitForExit(child, this.#opts.stopTimeoutMs))) {
        this.#log.warn({ redisPid: child.pid, timeoutMs: this.#opts.stopTimeoutMs }, 'redis-server did not exit after SIGTERM; sending SIGKILL')
        try { child.kill('SIGKILL') } catch {}
        await waitForExit(child, 5_000)
      }
    }
    this.#killWatchdog()
    untrackChild(child)
    this.#child = undefined
    this.#readyChild = undefined
    this.#startPromise = undefined
    await rm(path.join(this.redisDir, 'supervisor.pid'), { force: true }).catch(() => {})
  }

  /**
   * Send a signal to the current redis-server and wait until it has exited.
   * With supervision on, the supervisor then restarts it (listen for 'restart').
   */
  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child
    if (!child || !isRunning(child)) return
    child.kill(signal)
    await waitForExit(child, 10_000)
  }

  // -------------------------------------------------------------------------

  async #initialStart (): Promise<string> {
    this.#binary ??= await resolveRedisBinary(this.#opts.redisServerPath ?? process.env.REDIS_SERVER_PATH ?? 'redis-server')
    await mkdir(this.redisDir, { recursive: true, mode: 0o700 })
    await chmod(this.redisDir, 0o700).catch(() => {})

    await this.#dealWithPreviousInstance()
    if (this.#endpoint === undefined) await this.#chooseEndpoint()
    await this.#writeConfig()
    await writeFile(path.join(this.redisDir, 'supervisor.pid'), `${process.pid}\n`, { mode: 0o600 })

    await this.#spawnAndWait()
    const url = this.#url as string
    this.#log.info({ redisPid: this.pid, url: redactRedisUrl(url), dir: this.redisDir, version: this.#version },
      'embedded redis-server ready')
    return url
  }

  async #chooseEndpoint (): Promise<void> {
    const port = this.#opts.port ?? 0
    if (port > 0) {
      this.#endpoint = { host: '127.0.0.1', port }
      this.#password = this.#opts.password
    } else {
      const socketPath = path.join(this.redisDir, 'redis.sock')
      if (Buffer.byteLength(socketPath) <= MAX_UNIX_SOCKET_PATH_BYTES) {
        this.#endpoint = { path: socketPath }
        this.#password = this.#opts.password
      } else {
        const free = await findFreePort()
        this.#endpoint = { host: '127.0.0.1', port: free }
        // Loopback is reachable by every local user: protect it.
        this.#password = this.#opts.password ?? randomBytes(24).toString('hex')
        this.#log.info({ socketPath, bytes: Buffer.byteLength(socketPath), max: MAX_UNIX_SOCKET_PATH_BYTES, port: free },
          'unix socket path too long; embedded redis-server listens on loopback TCP with a generated password')
      }
    }
    const ep = this.#endpoint
    this.#url = 'path' in ep
      ? ep.path
      : `redis://${this.#password !== undefined ? `:${encodeURIComponent(this.#password)}@` : ''}${ep.host}:${ep.port}`
  }

  async #writeConfig (): Promise<void> {
    const ep = this.#endpoint as RedisEndpoint
    const d = this.redisDir
    const lines: Array<[string, ...string[]]> = [
      ['daemonize', 'no'],
      ['supervised', 'no'],
      ['protected-mode', 'yes'],
      ['dir', d],
      ['logfile', path.join(d, 'redis.log')],
      ['pidfile', path.join(d, 'redis.pid')],
      ['loglevel', 'notice'],
      ['always-show-logo', 'no'],
      ['appendonly', 'yes'],
      ['appendfsync', this.#opts.appendfsync],
      ['aof-load-truncated', 'yes'],
      ['save', ''],
      ['maxmemory-policy', 'noeviction'],
      // Request records are hashes of short fields plus a few longer ones (the
      // metadata, the event id list, sealed messages): up to 512 bytes a value
      // they stay listpacks, about a fifth of a hashtable's size.
      ['hash-max-listpack-value', '512'],
      // Audit entries are ~350 bytes (their stored form, see domain/audit-body.ts):
      // 16 KB stream nodes hold ~45 of them, so the per-node overhead (radix
      // tree, master entry) is spread over more entries.
      ['stream-node-max-bytes', '16384']
    ]
    if ('path' in ep) {
      lines.push(['port', '0'], ['unixsocket', ep.path], ['unixsocketperm', '700'])
    } else {
      lines.push(['bind', '127.0.0.1'], ['port', String(ep.port)])
    }
    if (this.#password !== undefined) lines.push(['requirepass', this.#password])
    const text = '# Generated by Rogatory (src/store/embedded-redis.ts) on every start. Do not edit.\n' +
      lines.map(([k, ...v]) => [k, ...v.map(quoteConfValue)].join(' ')).join('\n') + '\n'
    const confPath = path.join(d, 'redis.conf')
    await writeFile(confPath, text, { mode: 0o600 })
    await chmod(confPath, 0o600).catch(() => {})
  }

  async #spawnAndWait (): Promise<void> {
    if (this.#stopping) throw new Error('EmbeddedRedis: stopped during startup')
    const bin = this.#binary as string
    const confPath = path.join(this.redisDir, 'redis.conf')
    this.#outputTail = ''
    const child = spawn(bin, [confPath], {
      cwd: this.redisDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: this.#opts.detached,
      env: process.env
    })
    const spawnError = await new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined))
      child.once('error', (err) => resolve(err))
    })
    if (spawnError) {
      const code = (spawnError as NodeJS.ErrnoException).code
      if (code === 'ENOENT') throw new RedisBinaryMissingError(bin)
      throw new Error(`cannot start redis-server (${bin}): ${spawnError.message}`)
    }
    child.on('error', (err) => this.#log.warn({ err: errInfo(err), redisPid: child.pid }, 'redis-server child process error'))
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue
      stream.setEncoding('utf8')
      stream.on('data', (chunk: string) => { this.#outputTail = (this.#outputTail + chunk).slice(-4096) })
      ;(stream as unknown as { unref?: () => void }).unref?.()
    }
    child.unref()
    this.#child = child
    trackChild(child, this.#opts.exitSignal)
    child.once('exit', (code, signal) => this.#onChildExit(child, code, signal))

    try {
      await this.#waitReady(child)
    } catch (err) {
      if (isRunning(child)) {
        try { child.kill('SIGKILL') } catch {}
        await waitForExit(child, 5_000)
      }
      throw err
    }
    this.#readyChild = child
    this.#startWatchdog(child)
    await this.#checkVersion()
  }

  async #waitReady (child: ChildProcess): Promise<void> {
    const ep = this.#endpoint as RedisEndpoint
    const timeout = this.#opts.startTimeoutMs
    let deadline = Date.now() + timeout
    let delay = 10
    let lastLoadingLog = 0
    for (;;) {
      if (!isRunning(child)) {
        throw await this.#startupError(`redis-server exited during startup (${describeExit(child.exitCode, child.signalCode)})`)
      }
      if (this.#stopping) throw new Error('EmbeddedRedis: stopped during startup')
      let reply: RespReply
      try {
        reply = (await redisCommands(ep, this.#password, [['PING']], 1_000))[0]
      } catch (err) {
        reply = err as Error
      }
      if (reply === 'PONG') return
      if (reply instanceof Error && reply.message.startsWith('LOADING')) {
        // A large AOF is being loaded: progress, not a hang.
        deadline = Date.now() + timeout
        if (Date.now() - lastLoadingLog > 5_000) {
          lastLoadingLog = Date.now()
          this.#log.info({ redisPid: child.pid }, 'redis-server is loading its AOF')
        }
      } else if (reply instanceof Error && /^(NOAUTH|WRONGPASS|ERR AUTH|ERR invalid password)/.test(reply.message)) {
        throw await this.#startupError(`redis-server rejected authentication: ${reply.message}`)
      }
      if (Date.now() > deadline) {
        throw await this.#startupError(`redis-server did not answer PING within ${timeout} ms`)
      }
      await sleep(delay)
      delay = Math.min(delay * 2, 200)
    }
  }

  async #checkVersion (): Promise<void> {
    try {
      const [info] = await redisCommands(this.#endpoint as RedisEndpoint, this.#password, [['INFO', 'server']], 2_000)
      if (typeof info !== 'string') return
      const m = /redis_version:(\d+)\.(\d+)\.(\d+)/.exec(info)
      if (!m) return
      this.#version = `${m[1]}.${m[2]}.${m[3]}`
      if (Number(m[1]) < 7) {
        this.#log.warn({ version: this.#version }, 'redis-server is older than 7; Rogatory is built and tested with Redis 7')
      }
    } catch {}
  }

  async #startupError (what: string): Promise<Error> {
    const logTail = await tailFile(path.join(this.redisDir, 'redis.log'), 20)
    const out = this.#outputTail.trim()
    let msg = `${what}.`
    if (logTail) msg += `\n--- last lines of ${path.join(this.redisDir, 'redis.log')} ---\n${logTail}`
    if (out) msg += `\n--- redis-server output ---\n${out.split('\n').slice(-20).join('\n')}`
    if (/Bad file format|Unrecoverable error reading the append only file|AOF.*corrupt/i.test(logTail + out)) {
      msg += `\nThe AOF in ${path.join(this.redisDir, 'appendonlydir')} looks damaged: back it up, then inspect it with redis-check-aof.`
    }
    return new Error(msg)
  }

  #onChildExit (child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    untrackChild(child)
    if (this.#watchdogProc && this.#watchdogFor === child) this.#killWatchdog()
    if (this.#child === child) this.#child = undefined
    const wasReady = this.#readyChild === child
    if (wasReady) this.#readyChild = undefined
    if (!wasReady || this.#stopping) return
    this.emit('exit', { pid: child.pid, code, signal })
    if (this.#opts.supervise) {
      void tailFile(path.join(this.redisDir, 'redis.log'), 10).then((logTail) => {
        this.#log.error({ redisPid: child.pid, code, signal, logTail }, 'embedded redis-server exited unexpectedly; restarting it')
      })
      this.#scheduleRestart()
    } else {
      this.#log.warn({ redisPid: child.pid, code, signal }, 'embedded redis-server exited (not supervised)')
      this.#startPromise = undefined
    }
  }

  #scheduleRestart (): void {
    if (this.#stopping) return
    const now = Date.now()
    this.#restartTimes = this.#restartTimes.filter((t) => now - t < 60_000)
    if (this.#restartTimes.length >= this.#opts.maxRestartsPerMinute) {
      const err = new Error(`embedded redis-server crashed ${this.#restartTimes.length + 1} times within a minute; ` +
        `giving up. See ${path.join(this.redisDir, 'redis.log')}.`)
      this.#log.error({ err: errInfo(err) }, 'embedded redis-server supervision gave up')
      this.#startPromise = undefined
      this.emit('fatal', err)
      this.#opts.onFatal?.(err)
      return
    }
    this.#restartTimes.push(now)
    const delay = Math.min(250 * 2 ** (this.#restartTimes.length - 1), 5_000)
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined
      if (this.#stopping) return
      this.#spawnAndWait().then(() => {
        this.#log.info({ redisPid: this.pid }, 'embedded redis-server restarted')
        this.emit('restart', { pid: this.pid })
      }, (err: Error) => {
        if (this.#stopping) return
        this.#log.error({ err: errInfo(err) }, 'embedded redis-server failed to restart')
        this.#scheduleRestart()
      })
    }, delay)
  }

  #watchdogFor: ChildProcess | undefined

  #startWatchdog (child: ChildProcess): void {
    this.#killWatchdog()
    if (!this.#opts.watchdog || child.pid === undefined || !existsSync('/bin/sh')) return
    // Polls once a second; exits by itself when redis-server is gone. Arguments
    // are positional parameters, never interpolated into the script.
    const script =
      'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done\n' +
      'if ! kill -0 "$1" 2>/dev/null; then\n' +
      '  kill -s "$3" "$2" 2>/dev/null\n' +
      '  if [ -n "$4" ]; then sleep 1; rm -rf -- "$4"; fi\n' +
      'fi\n'
    const args = ['-c', script, 'rogatory-redis-watchdog', String(process.pid), String(child.pid),
      this.#opts.exitSignal.replace(/^SIG/, ''), this.#opts.watchdogRemoveDir ?? '']
    try {
      const w = spawn('/bin/sh', args, { stdio: 'ignore', detached: true })
      w.on('error', () => {})
      w.unref()
      this.#watchdogProc = w
      this.#watchdogFor = child
    } catch {}
  }

  #killWatchdog (): void {
    const w = this.#watchdogProc
    this.#watchdogProc = undefined
    this.#watchdogFor = undefined
    if (w && isRunning(w) && w.pid !== undefined) {
      // Its own process group (detached): take its `sleep` down with it, so
      // no orphan is left for PID 1 to reap.
      try { process.kill(-w.pid, 'SIGKILL') } catch {
        try { w.kill('SIGKILL') } catch {}
      }
    }
  }

  /**
   * A previous run may have left a pidfile and a socket file behind (redis
   * SIGKILLed), or a live orphaned redis-server (gateway SIGKILLed with the
   * watchdog also gone). Two servers on one AOF would corrupt it, so: an
   * orphan serving this directory is shut down (SIGTERM: final AOF fsync); a
   * server still supervised by a live process is an error; stale files go.
   */
  async #dealWithPreviousInstance (): Promise<void> {
    const d = this.redisDir
    const pidFile = path.join(d, 'redis.pid')
    const prev = await readPreviousEndpoint(path.join(d, 'redis.conf'))
    let identity: { pid: number; dir: string } | undefined
    if (prev) identity = await probeIdentity(prev.endpoint, prev.password)
    const ourDir = await realpath(d).catch(() => d)

    if (identity && identity.dir === ourDir) {
      const supervisor = await readPidFile(path.join(d, 'supervisor.pid'))
      const ppid = parentPid(identity.pid)
      const supervisedBy = ppid === undefined
        ? (supervisor !== undefined && supervisor !== identity.pid && isAlive(supervisor) ? supervisor : undefined)
        : (supervisor !== undefined && ppid === supervisor && isAlive(supervisor) ? supervisor : undefined)
      if (supervisedBy !== undefined) {
        throw new Error(`DATA_DIR ${this.dataDir} is in use: its redis-server (pid ${identity.pid}) is supervised by ` +
          `process ${supervisedBy}${supervisedBy === process.pid ? ' (this process)' : ''}. Stop that process or use another DATA_DIR.`)
      }
      this.#log.warn({ redisPid: identity.pid, dir: d },
        'found an orphaned redis-server from a previous run serving this data dir; shutting it down before starting a new one')
      await terminatePid(identity.pid, this.#opts.stopTimeoutMs)
    } else {
      const pid = await readPidFile(pidFile)
      if (pid !== undefined && isAlive(pid) && looksLikeRedis(pid)) {
        // Alive, called redis-server, but not answering on the endpoint it was
        // configured with: maybe shutting down. Give it a moment.
        const until = Date.now() + 5_000
        while (Date.now() < until && isAlive(pid)) await sleep(100)
        if (isAlive(pid)) {
          throw new Error(`a redis-server process (pid ${pid}) from a previous run still seems to be running for ` +
            `${d} but does not answer. Stop it (kill ${pid}) and start again.`)
        }
      }
    }
    await rm(pidFile, { force: true })
    if (prev && 'path' in prev.endpoint) await rm(prev.endpoint.path, { force: true })
    await rm(path.join(d, 'redis.sock'), { force: true })
  }
}

// ---------------------------------------------------------------------------
// External Redis

export interface CheckExternalRedisOptions {
  logger?: EmbeddedRedisLogger
  connectTimeoutMs?: number
}

/**
 * Connects to an external REDIS_URL and refuses one that may evict keys.
 * If CONFIG is disabled, renamed or forbidden by ACL, it warns and continues:
 * the operator is then responsible for `maxmemory-policy noeviction`.
 */
export async function checkExternalRedis (url: string, opts: CheckExternalRedisOptions = {}): Promise<void> {
  const log = opts.logger ?? noopLogger
  const shown = redactRedisUrl(url)
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: opts.connectTimeoutMs ?? 5_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    reconnectOnError: () => false
  })
  client.on('error', () => {})
  try {
    try {
      await client.connect()
    } catch (err) {
      throw new Error(`Cannot connect to Redis at ${shown}: ${(err as Error).message}`)
    }
    let policy: string | undefined
    let appendonly: string | undefined
    try {
      const r = (await client.config('GET', 'maxmemory-policy')) as string[]
      policy = r[1]
      const a = (await client.config('GET', 'appendonly')) as string[]
      appendonly = a[1]
    } catch (err) {
      log.warn({ url: shown, err: errInfo(err) },
        'cannot read the Redis configuration (CONFIG disabled?); make sure it has maxmemory-policy noeviction and AOF on')
      return
    }
    if (policy === undefined) {
      log.warn({ url: shown }, 'Redis did not report maxmemory-policy; make sure it is noeviction')
      return
    }
    if (policy !== 'noeviction') {
      throw new Error(`Redis at ${shown} has maxmemory-policy=${policy}; Rogatory needs noeviction ` +
        '(queues and records must never be evicted). Set `maxmemory-policy noeviction`.')
    }
    if (appendonly !== undefined && appendonly !== 'yes') {
      log.warn({ url: shown, appendonly },
        'Redis has AOF off: accepted requests may be lost on a crash. Set `appendonly yes` and `appendfsync always`.')
    }
  } finally {
    client.disconnect()
  }
}

/** The URL with any password removed, for logs and messages. Socket paths are returned as they are. */
export function redactRedisUrl (url: string): string {
  if (url.startsWith('/')) return url
  // ioredis reads `user:pw@host:port` (no scheme) as redis://user:pw@host:port.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return redactRedisUrl(`redis://${url}`).slice('redis://'.length)
  try {
    const u = new URL(url)
    if (u.password) {
      u.password = ''
      let s = u.toString()
      if (!u.username) s = s.replace('://@', '://')
      return s
    }
    return url
  } catch {
    return url.replace(/(\/\/[^:@/]*):[^@/]*@/, '$1@')
  }
}

// ---------------------------------------------------------------------------
// Helpers

export async function resolveRedisBinary (name: string): Promise<string> {
  if (name.includes('/') || name.includes(path.sep)) {
    const abs = path.resolve(name)
    try {
      await access(abs, fsConstants.X_OK)
      return abs
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new RedisBinaryMissingError(name)
      throw new Error(`redis-server at ${abs} is not executable (${code ?? String(err)}). ${INSTALL_HINT}`)
    }
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue
    const candidate = path.join(dir, name)
    try {
      await access(candidate, fsConstants.X_OK)
      if ((await stat(candidate)).isFile()) return candidate
    } catch {}
  }
  throw new RedisBinaryMissingError(name)
}

/** A free loopback TCP port chosen by the OS (listen on 0, read it, close). */
export async function findFreePort (host = '127.0.0.1'): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, host, () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => port ? resolve(port) : reject(new Error('could not determine a free port')))
    })
  })
}

function quoteConfValue (v: string): string {
  if (v !== '' && /^[A-Za-z0-9_./:@+,=-]+$/.test(v)) return v
  return '"' + v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r') + '"'
}

function unquoteConfValue (v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    return v.slice(1, -1).replace(/\\(.)/g, (_m, c: string) => c === 'n' ? '\n' : c === 'r' ? '\r' : c)
  }
  return v
}

async function readPreviousEndpoint (confPath: string): Promise<{ endpoint: RedisEndpoint; password?: string } | undefined> {
  let text: string
  try { text = await readFile(confPath, 'utf8') } catch { return undefined }
  const get = (key: string): string | undefined => {
    const m = new RegExp(`^${key} (.*)$`, 'm').exec(text)
    return m ? unquoteConfValue(m[1].trim()) : undefined
  }
  const password = get('requirepass')
  const sock = get('unixsocket')
  const port = Number(get('port') ?? '0')
  const endpoint: RedisEndpoint | undefined = sock ? { path: sock } : port > 0 ? { host: '127.0.0.1', port } : undefined
  return endpoint ? { endpoint, ...(password !== undefined ? { password } : {}) } : undefined
}

async function probeIdentity (ep: RedisEndpoint, password: string | undefined): Promise<{ pid: number; dir: string } | undefined> {
  try {
    const replies = await redisCommands(ep, password, [['INFO', 'server'], ['CONFIG', 'GET', 'dir']], 1_000)
    const info = replies[0]
    const cfg = replies[1]
    if (typeof info !== 'string' || !Array.isArray(cfg) || typeof cfg[1] !== 'string') return undefined
    const m = /process_id:(\d+)/.exec(info)
    if (!m) return undefined
    return { pid: Number(m[1]), dir: await realpath(cfg[1]).catch(() => cfg[1] as string) }
  } catch {
    return undefined
  }
}

async function readPidFile (file: string): Promise<number | undefined> {
  try {
    const n = Number.parseInt((await readFile(file, 'utf8')).trim(), 10)
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  // A zombie (or a dying process whose main thread already is one) is not alive.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X' && state !== 'x'
  } catch {
    return true
  }
}

function parentPid (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ppid = Number(fields[1])
    return Number.isInteger(ppid) ? ppid : undefined
  } catch {}
  try {
    const out = execFileSync('ps', ['-o', 'ppid=', '-p', String(pid)], { encoding: 'utf8', timeout: 2_000, stdio: ['ignore', 'pipe', 'ignore'] })
    const ppid = Number(out.trim())
    return Number.isInteger(ppid) && ppid > 0 ? ppid : undefined
  } catch {
    return undefined
  }
}

function looksLikeRedis (pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis')
  } catch {
    return false
  }
}

async function terminatePid (pid: number, timeoutMs: number): Promise<void> {
  try { process.kill(pid, 'SIGTERM') } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return
    throw new Error(`cannot stop the orphaned redis-server (pid ${pid}): ${(err as Error).message}`)
  }
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (!isAlive(pid)) return
    await sleep(50)
  }
  try { process.kill(pid, 'SIGKILL') } catch {}
  const until2 = Date.now() + 5_000
  while (Date.now() < until2 && isAlive(pid)) await sleep(50)
  if (isAlive(pid)) throw new Error(`the orphaned redis-server (pid ${pid}) did not exit`)
}

function isRunning (child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null
}

function waitForExit (child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (!isRunning(child)) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.off('exit', onExit); resolve(false) }, timeoutMs)
    const onExit = (): void => { clearTimeout(timer); resolve(true) }
    child.once('exit', onExit)
  })
}

function describeExit (code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `exit code ${String(code)}`
}

async function tailFile (file: string, lines: number): Promise<string> {
  try {
    const fh = await open(file, 'r')
    try {
      const { size } = await fh.stat()
      const len = Math.min(size, 8192)
      const buf = Buffer.alloc(len)
      await fh.read(buf, 0, len, size - len)
      return buf.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n')
    } finally {
      await fh.close()
    }
  } catch {
    return ''
  }
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function errInfo (err: unknown): { message: string; code?: string } {
  const e = err as NodeJS.ErrnoException
  return { message: e?.message ?? String(err), ...(e?.code ? { code: e.code } : {}) }
}

function safeJson (o: unknown): string {
  try { return JSON.stringify(o) } catch { return '' }
}

function stripUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

// ---------------------------------------------------------------------------
// Minimal RESP client for probes (PING/INFO/CONFIG GET on one short connection).

export type RespReply = string | number | null | Error | RespReply[]

/** Sends the commands (pipelined, after AUTH when a password is given) and returns their replies. */
export function redisCommands (ep: RedisEndpoint, password: string | undefined, commands: string[][], timeoutMs: number): Promise<RespReply[]> {
  const all = password !== undefined ? [['AUTH', password], ...commands] : commands
  return new Promise((resolve, reject) => {
    const sock = 'path' in ep ? net.createConnection({ path: ep.path }) : net.createConnection({ host: ep.host, port: ep.port })
    let buf = Buffer.alloc(0)
    const replies: RespReply[] = []
    let done = false
    const finish = (err: Error | undefined): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      if (err) { reject(err); return }
      const out = password !== undefined ? replies.slice(1) : replies
      const authReply = password !== undefined ? replies[0] : undefined
      if (authReply instanceof Error) { resolve(out.map(() => authReply)); return }
      resolve(out)
    }
    const timer = setTimeout(() => finish(new Error(`redis probe timed out after ${timeoutMs} ms`)), timeoutMs)
    sock.on('connect', () => {
      sock.write(all.map(encodeCommand).join(''))
    })
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        let parsed: [RespReply, number] | undefined
        try { parsed = parseReply(buf, 0) } catch (err) { finish(err as Error); return }
        if (!parsed) break
        replies.push(parsed[0])
        buf = buf.subarray(parsed[1])
        if (replies.length === all.length) { finish(undefined); return }
      }
    })
    sock.on('error', (err) => finish(err))
    sock.on('close', () => finish(new Error('redis probe: connection closed')))
  })
}

function encodeCommand (args: string[]): string {
  return `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')
}

function parseReply (buf: Buffer, pos: number): [RespReply, number] | undefined {
  const eol = buf.indexOf('\r\n', pos)
  if (eol < 0) return undefined
  const type = String.fromCharCode(buf[pos])
  const line = buf.toString('utf8', pos + 1, eol)
  const next = eol + 2
  switch (type) {
    case '+': return [line, next]
    case '-': return [new Error(line), next]
    case ':': return [Number(line), next]
    case '$': {
      const len = Number(line)
      if (len < 0) return [null, next]
      if (buf.length < next + len + 2) return undefined
      return [buf.toString('utf8', next, next + len), next + len + 2]
    }
    case '*': {
      const n = Number(line)
      if (n < 0) return [null, next]
      const items: RespReply[] = []
      let p = next
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, p)
        if (!r) return undefined
        items.push(r[0])
        p = r[1]
      }
      return [items, p]
    }
    default:
      throw new Error(`redis probe: unexpected reply type ${JSON.stringify(type)}`)
  }
}
