// Benchmark 1 — intake: POST /v1/requests on the production configuration
// (JWT, schema, AES-GCM, one Lua commit with appendfsync always) against a bare
// Fastify route validating the same body with the same compiled schema.
// Figures are ratios against that baseline, measured in the same run.
import autocannon from 'autocannon'
import { execSync, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { mintDevToken } from '../src/auth/dev-token.js'
import { packageRoot } from '../src/config/env.js'
import { CpuMeter } from './lib/proc.js'

/** cpuUs: CPU time per answered request of the server process, and of its redis-server (gateway only), in µs. */
interface Round { rps: number, p50: number, p99: number, cpuUs: number, redisCpuUs: number }
interface Server { port: number, child: ChildProcess, redisPid?: number }

const root = packageRoot()
const args = new Map(process.argv.slice(2).map((arg) => arg.replace(/^--/, '').split('=') as [string, string]))
const durationSeconds = Number(args.get('duration') ?? 10)
const rounds = Number(args.get('rounds') ?? 3)
const connections = Number(args.get('connections') ?? 50)
const profile = args.has('cpu-prof')
// The compiled build, as `npm start` runs it (built first); --src runs the sources through tsx instead.
const fromSources = args.has('src')

const token = mintDevToken('bench-dev-secret-0123456789abcdef', { authority: 'TR-MOJ', roles: ['agency'], sub: 'bench' }, 3600)
const example = JSON.parse(readFileSync(join(root, 'schemas', 'examples', 'mla-request.json'), 'utf8')) as Record<string, unknown>
// About 1.5 KB, as the issue asks: the example with one person, one measure and
// one offence, and without its optional related requests and formalities.
const { relatedRequests: _related, formalities: _formalities, ...required } = example
const body = { ...required, persons: (example.persons as unknown[]).slice(0, 1), measures: (example.measures as unknown[]).slice(0, 1), offences: (example.offences as unknown[]).slice(0, 1) }
const sizeBytes = Buffer.byteLength(JSON.stringify(body))

async function startServer (mode: 'gateway' | 'bare'): Promise<Server> {
  const nodeArgs = ['--import', 'tsx', ...(profile && mode === 'gateway' ? ['--cpu-prof', '--cpu-prof-dir', join(root, 'bench')] : []), fileURLToPath(new URL('./intake-server.ts', import.meta.url)), mode]
  const child = spawn(process.execPath, nodeArgs, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_DIST: fromSources ? '0' : '1' } })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)))
  })
  const { port, redisPid } = JSON.parse(line) as { port: number, redisPid?: number }
  return { port, child, redisPid }
}

async function stopServer (child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

let counter = 0
async function load ({ port, child, redisPid }: Server, seconds: number, rate?: number): Promise<Round> {
  const cpu = new CpuMeter(child.pid ?? 0)
  const redisCpu = new CpuMeter(redisPid ?? 0)
  cpu.begin()
  redisCpu.begin()
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/v1/requests`,
    method: 'POST',
    connections,
    pipelining: 1,
    duration: seconds,
    ...(rate === undefined ? {} : { overallRate: rate }),
    requests: [{
      setupRequest: (request: Record<string, unknown>) => {
        const n = ++counter
        return {
          ...request,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': `bench-${process.pid}-${n}` },
          body: JSON.stringify({ ...body, senderReference: `BENCH-${process.pid}-${n}` })
        }
      }
    }]
  })
  cpu.end()
  redisCpu.end()
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx answers and ${result.errors} errors on port ${port}`)
  const answered = Math.max(result.requests.total, 1)
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, cpuUs: cpu.total / answered * 1e6, redisCpuUs: redisPid === undefined ? 0 : redisCpu.total / answered * 1e6 }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

export async function run (): Promise<Record<string, unknown>> {
  if (!fromSources) execSync('npm run build --silent', { cwd: root, stdio: 'inherit' })
  const servers = { bare: await startServer('bare'), gateway: await startServer('gateway') }
  try {
    for (const server of Object.values(servers)) await load(server, 3)
    const measured: Record<'bare' | 'gateway', Round[]> = { bare: [], gateway: [] }
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['bare', 'gateway'] as const) measured[mode].push(await load(servers[mode], durationSeconds))
    }
    const max = { bare: median(measured.bare.map((r) => r.rps)), gateway: median(measured.gateway.map((r) => r.rps)) }
    // Latency at half the gateway's maximum rate, the same rate for both.
    const halfRate = Math.max(1, Math.floor(max.gateway / 2))
    const atHalf: Record<'bare' | 'gateway', Round[]> = { bare: [], gateway: [] }
    for (let round = 0; round < rounds; round++) {
      for (const mode of ['bare', 'gateway'] as const) atHalf[mode].push(await load(servers[mode], durationSeconds, halfRate))
    }
    const p99 = { bare: median(atHalf.bare.map((r) => r.p99)), gateway: median(atHalf.gateway.map((r) => r.p99)) }
    return {
      gatewayCode: fromSources ? 'src via tsx' : 'dist (compiled)',
      bodyBytes: sizeBytes,
      connections,
      durationSeconds,
      rounds,
      bareRps: max.bare,
      gatewayRps: max.gateway,
      rpsRatio: max.gateway / max.bare,
      // Work per request at full load, whatever the machine's other load: the gateway process, its redis-server, the bare route.
      gatewayCpuUsPerRequest: median(measured.gateway.map((r) => r.cpuUs)),
      gatewayRedisCpuUsPerRequest: median(measured.gateway.map((r) => r.redisCpuUs)),
      bareCpuUsPerRequest: median(measured.bare.map((r) => r.cpuUs)),
      rpsGoal: 0.4,
      halfRate,
      bareP99AtHalfMs: p99.bare,
      gatewayP99AtHalfMs: p99.gateway,
      p99Ratio: p99.gateway / Math.max(p99.bare, 1),
      p99Goal: 3
    }
  } finally {
    await Promise.all(Object.values(servers).map((server) => stopServer(server.child)))
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await run()
  console.table(result)
}
