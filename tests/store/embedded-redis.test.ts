import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Redis } from 'ioredis'
import {
  EmbeddedRedis,
  RedisBinaryMissingError,
  checkExternalRedis,
  redactRedisUrl,
  MAX_UNIX_SOCKET_PATH_BYTES
} from '../../src/store/embedded-redis.js'
import { startRedis } from '../helpers/redis.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const modulePath = path.resolve(here, '../../src/store/embedded-redis.ts')
const repoRoot = path.resolve(here, '../..')

type Tt = Test

async function tempDir (tt: Tt, prefix = 'rogatory-er-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  tt.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function quiet (): { info(): void; warn(o: object, m?: string): void; error(o: object, m?: string): void; lines: string[] } {
  const lines: string[] = []
  return {
    lines,
    info () {},
    warn (_o: object, m?: string) { lines.push(`warn: ${m ?? ''}`) },
    error (_o: object, m?: string) { lines.push(`error: ${m ?? ''}`) }
  }
}

/** An EmbeddedRedis stopped at teardown. */
function embedded (tt: Tt, opts: ConstructorParameters<typeof EmbeddedRedis>[0]): EmbeddedRedis {
  const er = new EmbeddedRedis({ logger: quiet(), ...opts })
  tt.teardown(() => er.stop())
  return er
}

function client (tt: Tt, url: string): Redis {
  const c = new Redis(url, { lazyConnect: false })
  c.on('error', () => {})
  tt.teardown(() => { c.disconnect() })
  return c
}

/** Alive and not a zombie. */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    return !/^State:\s+Z/m.test(status)
  } catch {
    return true
  }
}

async function waitFor (what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await fn()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function configGet (c: Redis, key: string): Promise<string | undefined> {
  const r = (await c.config('GET', key)) as string[]
  return r[1]
}

t.test('starts under DATA_DIR on a unix socket with AOF always and noeviction', async (tt) => {
  const dataDir = path.join(await tempDir(tt), 'data') // does not exist yet: mkdir -p
  const er = embedded(tt, { dataDir })
  const url = await er.start()
  tt.equal(url, path.join(dataDir, 'redis', 'redis.sock'), 'url is the socket path inside DATA_DIR')
  tt.equal(er.url, url)
  tt.same(er.connectionOptions, { path: url })
  tt.type(er.pid, 'number')
  tt.ok(er.running)
  tt.match(er.version ?? '', /^\d+\.\d+\.\d+$/)

  const c = client(tt, url)
  tt.equal(await c.ping(), 'PONG')
  tt.equal(await configGet(c, 'appendonly'), 'yes')
  tt.equal(await configGet(c, 'appendfsync'), 'always')
  tt.equal(await configGet(c, 'maxmemory-policy'), 'noeviction')
  tt.equal(await configGet(c, 'port'), '0', 'no TCP listener')
  tt.equal(await configGet(c, 'unixsocket'), url)
  tt.equal(await configGet(c, 'unixsocketperm'), '700')
  tt.equal(await configGet(c, 'dir'), path.join(dataDir, 'redis'))
  tt.equal(await configGet(c, 'save'), '')

  const sockMode = (await stat(url)).mode & 0o777
  tt.equal(sockMode, 0o700, 'socket is private to the user')
  const dirMode = (await stat(path.join(dataDir, 'redis'))).mode & 0o777
  tt.equal(dirMode, 0o700, 'redis dir is private to the user')
  tt.ok(existsSync(path.join(dataDir, 'redis', 'appendonlydir')), 'AOF directory exists')

  // No TCP socket owned by the redis-server process.
  if (existsSync('/proc/net/tcp')) {
    const fds = readdirSync(`/proc/${er.pid}/fd`)
    const inodes = new Set<string>()
    for (const fd of fds) {
      try {
        const link = readlinkSync(`/proc/${er.pid}/fd/${fd}`)
        const m = /^socket:\[(\d+)\]$/.exec(link)
        if (m) inodes.add(m[1])
      } catch {}
    }
    const tcp = ['/proc/net/tcp', '/proc/net/tcp6'].filter(existsSync)
      .flatMap((f) => readFileSync(f, 'utf8').trim().split('\n').slice(1))
      .map((l) => l.trim().split(/\s+/))
      .filter((cols) => cols[3] === '0A' && inodes.has(cols[9])) // LISTEN
    tt.equal(tcp.length, 0, 'redis-server listens on no TCP port')
  }

  await er.stop()
  tt.notOk(er.running)
  tt.equal(er.pid, undefined)
  tt.notOk(existsSync(url), 'socket removed on stop')
})

t.test('data survives stop() and a new EmbeddedRedis on the same dir', async (tt) => {
  const dataDir = await tempDir(tt)
  const a = embedded(tt, { dataDir })
  const c1 = client(tt, await a.start())
  await c1.set('rogatory:test:k', 'v1')
  await c1.hset('rogatory:test:h', { a: '1', b: '2' })
  c1.disconnect()
  await a.stop()

  const b = embedded(tt, { dataDir })
  const c2 = client(tt, await b.start())
  tt.equal(await c2.get('rogatory:test:k'), 'v1')
  tt.same(await c2.hgetall('rogatory:test:h'), { a: '1', b: '2' })
})

t.test('the supervisor restarts a SIGKILLed redis-server and no acknowledged write is lost', async (tt) => {
  const dataDir = await tempDir(tt)
  const log = quiet()
  const er = embedded(tt, { dataDir, logger: log })
  const url = await er.start()
  const c = client(tt, url)
  for (let i = 0; i < 100; i++) await c.rpush('rogatory:test:list', String(i))
  const firstPid = er.pid as number

  const restarted = once(er, 'restart')
  const exited = once(er, 'exit')
  process.kill(firstPid, 'SIGKILL')
  const [exitInfo] = await exited
  tt.equal(exitInfo.signal, 'SIGKILL')
  await restarted
  tt.not(er.pid, firstPid, 'a new redis-server process')
  tt.notOk(alive(firstPid))
  tt.ok(log.lines.some((l) => /exited unexpectedly/.test(l)), 'the crash is logged as an error')
  tt.equal(er.url, url, 'same URL after restart')

  // The same client reconnects by itself.
  tt.equal(await c.llen('rogatory:test:list'), 100)
  tt.same(await c.lrange('rogatory:test:list', 98, 99), ['98', '99'])
})

t.test('supervision gives up after too many crashes within a minute', async (tt) => {
  const dataDir = await tempDir(tt)
  const er = embedded(tt, { dataDir, maxRestartsPerMinute: 1 })
  let fatal: Error | undefined
  er.on('fatal', (err: Error) => { fatal = err })
  await er.start()
  const restarted = once(er, 'restart')
  await er.kill('SIGKILL')
  await restarted
  await er.kill('SIGKILL')
  await waitFor('fatal', () => fatal !== undefined)
  tt.match(fatal?.message, /giving up/)
  tt.notOk(er.running)
})

t.test('a missing binary gives RedisBinaryMissingError with an install hint', async (tt) => {
  const dataDir = await tempDir(tt)
  for (const redisServerPath of ['/nonexistent/redis-server', 'redis-server-that-does-not-exist']) {
    const er = embedded(tt, { dataDir, redisServerPath })
    const err = await er.start().then(() => undefined, (e: unknown) => e)
    tt.ok(err instanceof RedisBinaryMissingError, `${redisServerPath}: RedisBinaryMissingError`)
    const msg = (err as Error).message
    tt.match(msg, /^redis-server not found/)
    tt.match(msg, 'Install Redis 7: `sudo apt-get install redis-server` (Debian/Ubuntu), `brew install redis` (macOS), ' +
      'or run `docker compose up -d redis` and set REDIS_URL=redis://127.0.0.1:6379.')
    tt.equal(er.pid, undefined)
  }
})

t.test('a startup failure reports the tail of the redis log', async (tt) => {
  const dataDir = await tempDir(tt)
  // A corrupt AOF manifest makes redis-server exit at startup.
  await mkdir(path.join(dataDir, 'redis', 'appendonlydir'), { recursive: true })
  await writeFile(path.join(dataDir, 'redis', 'appendonlydir', 'appendonly.aof.manifest'), 'garbage\n')
  const er = embedded(tt, { dataDir })
  const err = await er.start().then(() => undefined, (e: unknown) => e as Error)
  tt.ok(err, 'start() rejects')
  tt.match(err?.message, /exited during startup/)
  tt.match(err?.message, /last lines of .*redis\.log/)
  tt.equal(er.pid, undefined)
})

t.test('stale pidfile and socket file from a SIGKILLed run are ignored', async (tt) => {
  const dataDir = await tempDir(tt)
  const redisDir = path.join(dataDir, 'redis')
  const a = embedded(tt, { dataDir, supervise: false })
  const c = client(tt, await a.start())
  await c.set('before-crash', '1')
  c.disconnect()
  // Simulate a redis SIGKILLed with nobody to restart it.
  const pid = a.pid as number
  process.kill(pid, 'SIGKILL')
  await waitFor('redis to die', () => !alive(pid))
  await a.stop()
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid
  await writeFile(path.join(redisDir, 'redis.pid'), `${deadPid}\n`)
  tt.ok(existsSync(path.join(redisDir, 'redis.sock')), 'a stale socket file is left behind')
  await writeFile(path.join(redisDir, 'supervisor.pid'), `${deadPid}\n`)

  const b = embedded(tt, { dataDir })
  const c2 = client(tt, await b.start())
  tt.equal(await c2.get('before-crash'), '1')
  tt.equal(readFileSync(path.join(redisDir, 'redis.pid'), 'utf8').trim(), String(b.pid))
})

t.test('a second instance on a data dir that is in use is refused', async (tt) => {
  const dataDir = await tempDir(tt)
  const a = embedded(tt, { dataDir })
  await a.start()
  const b = embedded(tt, { dataDir })
  await tt.rejects(b.start(), /is in use/)
  tt.ok(a.running, 'the first one is untouched')
  const c = client(tt, a.url)
  tt.equal(await c.ping(), 'PONG')
})

interface GatewayLike { nodePid: number; redisPid: number; sigkill: () => Promise<void> }

function startGatewayLike (tt: Tt, dataDir: string, watchdog: boolean): Promise<GatewayLike> {
  const code = `
    const { EmbeddedRedis } = await import(process.env.ER_MODULE)
    const er = new EmbeddedRedis({ dataDir: process.env.ER_DIR, watchdog: process.env.ER_WATCHDOG === '1' })
    await er.start()
    process.stdout.write(JSON.stringify({ redisPid: er.pid }) + '\\n')
    setInterval(() => {}, 1000)
  `
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot,
    env: { ...process.env, ER_MODULE: pathToFileURL(modulePath).href, ER_DIR: dataDir, ER_WATCHDOG: watchdog ? '1' : '0' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  tt.teardown(() => { try { child.kill('SIGKILL') } catch {} })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (s: string) => {
      out += s
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line) {
        const { redisPid } = JSON.parse(line) as { redisPid: number }
        tt.teardown(() => { try { process.kill(redisPid, 'SIGKILL') } catch {} })
        // Resolves once the whole process (all threads) is gone and reaped.
        const sigkill = async (): Promise<void> => {
          const exited = once(child, 'exit')
          child.kill('SIGKILL')
          await exited
        }
        resolve({ nodePid: child.pid as number, redisPid, sigkill })
      }
    })
    child.once('exit', (code) => reject(new Error(`gateway-like child exited early (${String(code)})`)))
  })
}

t.test('an orphaned redis-server left by a SIGKILLed gateway is shut down and its data reused', async (tt) => {
  const dataDir = await tempDir(tt)
  const { nodePid, redisPid, sigkill } = await startGatewayLike(tt, dataDir, false)
  const c = client(tt, path.join(dataDir, 'redis', 'redis.sock'))
  await c.set('written-by-old-gateway', 'yes')
  c.disconnect()
  await sigkill()
  tt.notOk(alive(nodePid), 'old gateway is gone')
  tt.ok(alive(redisPid), 'without the watchdog, its redis-server is orphaned')

  const log = quiet()
  const er = embedded(tt, { dataDir, logger: log })
  const c2 = client(tt, await er.start())
  tt.notOk(alive(redisPid), 'the orphan is gone')
  tt.not(er.pid, redisPid)
  tt.ok(log.lines.some((l) => /orphaned redis-server/.test(l)), 'and that was logged')
  tt.equal(await c2.get('written-by-old-gateway'), 'yes')
})

t.test('the watchdog takes redis-server down when the gateway is SIGKILLed', async (tt) => {
  const dataDir = await tempDir(tt)
  const { redisPid, sigkill } = await startGatewayLike(tt, dataDir, true)
  await sigkill()
  await waitFor('redis-server to follow its parent', () => !alive(redisPid), 8_000)
  tt.pass('redis-server exited')
  // And the next start is clean.
  const er = embedded(tt, { dataDir })
  const c = client(tt, await er.start())
  tt.equal(await c.ping(), 'PONG')
})

t.test('a socket path that is too long falls back to loopback TCP with a password', async (tt) => {
  const base = await tempDir(tt)
  const dataDir = path.join(base, 'x'.repeat(60), 'y'.repeat(60))
  tt.ok(Buffer.byteLength(path.join(dataDir, 'redis', 'redis.sock')) > MAX_UNIX_SOCKET_PATH_BYTES)
  const er = embedded(tt, { dataDir })
  const url = await er.start()
  tt.match(url, /^redis:\/\/:[0-9a-f]{48}@127\.0\.0\.1:\d+$/)
  tt.equal(redactRedisUrl(url), url.replace(/:[0-9a-f]{48}@/, ''))
  const c = client(tt, url)
  tt.equal(await c.ping(), 'PONG')
  tt.equal(await configGet(c, 'bind'), '127.0.0.1')
  tt.equal(await configGet(c, 'unixsocket'), '')
  tt.equal(await configGet(c, 'appendfsync'), 'always')
  const noAuth = new Redis(url.replace(/:[0-9a-f]{48}@/, ''), {
    maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true, enableReadyCheck: false
  })
  noAuth.on('error', () => {})
  tt.teardown(() => { noAuth.disconnect() })
  await noAuth.connect().catch(() => {})
  await tt.rejects(noAuth.ping(), /NOAUTH|Authentication/)
})

t.test('appendfsync everysec can be chosen', async (tt) => {
  const er = embedded(tt, { dataDir: await tempDir(tt), appendfsync: 'everysec' })
  const c = client(tt, await er.start())
  tt.equal(await configGet(c, 'appendfsync'), 'everysec')
})

t.test('checkExternalRedis', async (tt) => {
  const r = await startRedis(tt)
  const c = client(tt, r.url)

  await tt.resolves(checkExternalRedis(r.url), 'noeviction is accepted')

  await c.config('SET', 'maxmemory-policy', 'allkeys-lru')
  await tt.rejects(checkExternalRedis(r.url), {
    message: `Redis at ${r.url} has maxmemory-policy=allkeys-lru; Rogatory needs noeviction ` +
      '(queues and records must never be evicted). Set `maxmemory-policy noeviction`.'
  })

  // The password never appears in the message.
  await c.config('SET', 'requirepass', 's3cret-pw')
  await c.auth('s3cret-pw')
  const withPw = `redis://:s3cret-pw@127.0.0.1:${r.port}`
  const err = await checkExternalRedis(withPw).then(() => undefined, (e: Error) => e)
  tt.match(err?.message, `Redis at redis://127.0.0.1:${r.port} has maxmemory-policy=allkeys-lru`)
  tt.notMatch(err?.message, /s3cret/)

  await c.config('SET', 'maxmemory-policy', 'noeviction')
  await tt.resolves(checkExternalRedis(withPw))

  // CONFIG forbidden by ACL: warn and continue.
  await c.call('ACL', 'SETUSER', 'noconfig', 'on', '>pw2', '~*', '&*', '+@all', '-config')
  const warnings: string[] = []
  await tt.resolves(checkExternalRedis(`redis://noconfig:pw2@127.0.0.1:${r.port}`, {
    logger: { info () {}, warn (_o, m) { warnings.push(m ?? '') }, error () {} }
  }))
  tt.match(warnings.join('\n'), /cannot read the Redis configuration/)

  // Unreachable: a clear error.
  await r.stop()
  await tt.rejects(checkExternalRedis(`redis://:s3cret-pw@127.0.0.1:${r.port}`), {
    message: new RegExp(`^Cannot connect to Redis at redis://127\\.0\\.0\\.1:${r.port}`)
  })
})

t.test('test harness: startRedis kill/restart keeps data and port; teardown removes everything', async (tt) => {
  let dir = ''
  let pid: number | undefined
  await tt.test('inner', async (t2) => {
    const r = await startRedis(t2)
    dir = r.dir
    t2.match(r.url, /^redis:\/\/127\.0\.0\.1:\d+$/)
    const c = new Redis(r.url, { maxRetriesPerRequest: null })
    c.on('error', () => {})
    t2.teardown(() => { c.disconnect() })
    t2.equal(await configGet(c, 'appendonly'), 'yes')
    t2.equal(await configGet(c, 'appendfsync'), 'always')
    t2.equal(await configGet(c, 'maxmemory-policy'), 'noeviction')
    await c.set('k', 'before-kill')
    const first = r.pid as number
    await r.kill()
    t2.notOk(alive(first), 'killed')
    t2.equal(r.pid, undefined)
    await r.restart()
    t2.equal(await c.get('k'), 'before-kill', 'same client reconnects on the same port; the write survived SIGKILL')
    await r.stop()
    await r.restart()
    t2.equal(await c.get('k'), 'before-kill')
    pid = r.pid
  })
  tt.ok(dir)
  tt.notOk(existsSync(dir), 'temporary directory removed')
  tt.ok(pid && !alive(pid), 'redis-server stopped')
})

t.test('test harness: cleans up even when the test process is SIGKILLed', async (tt) => {
  const helper = pathToFileURL(path.resolve(here, '../helpers/redis.ts')).href
  const code = `
    const { startRedis } = await import(${JSON.stringify(helper)})
    const r = await startRedis()
    process.stdout.write(JSON.stringify({ pid: r.pid, dir: r.dir }) + '\\n')
    setInterval(() => {}, 1000)
  `
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', code], {
    cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit']
  })
  tt.teardown(() => { try { child.kill('SIGKILL') } catch {} })
  const info = await new Promise<{ pid: number; dir: string }>((resolve, reject) => {
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (s: string) => {
      out += s
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line) resolve(JSON.parse(line))
    })
    child.once('exit', (c) => reject(new Error(`child exited early (${String(c)})`)))
  })
  tt.teardown(() => { try { process.kill(info.pid, 'SIGKILL') } catch {} })
  tt.ok(alive(info.pid))
  tt.ok(existsSync(info.dir))
  child.kill('SIGKILL')
  await waitFor('redis-server to die', () => !alive(info.pid), 8_000)
  await waitFor('directory to be removed', () => !existsSync(info.dir), 8_000)
  tt.pass('no process and no directory left behind')
})
