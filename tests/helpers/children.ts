// Node child processes (the real gateway, the standalone worker, helper
// servers) as the fault drills (tests/helpers/processes.ts) and the benchmarks
// (bench/lib/gateway.ts) start them: from the package root, with this
// process's environment plus their own, output kept for error messages, and
// SIGKILLed if this process exits while they still run.
// Imported by bench/ too, so it stays free of tap.
import { spawn, type ChildProcess } from 'node:child_process'
import { packageRoot } from '../../src/config/env.js'

const live = new Set<ChildProcess>()
let exitHookInstalled = false

function track (child: ChildProcess): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const c of live) {
      if (c.exitCode === null && c.signalCode === null) {
        try { c.kill('SIGKILL') } catch {}
      }
    }
  })
}

export interface SpawnedNode {
  child: ChildProcess
  /** The last characters of stdout and stderr together. */
  output: () => string
}

export interface SpawnNodeOptions {
  /** Variables of this process's environment the child must not inherit. */
  unset?: string[]
  /** How much of the output to keep (characters). */
  keep?: number
}

/**
 * Spawns this node binary with `args` (e.g. ['--import', 'tsx', 'src/cli/rogatory.ts', 'serve'])
 * from the package root, with this process's environment plus `env`, stdout and
 * stderr piped and kept (the tail).
 */
export function spawnNode (args: string[], env: Record<string, string>, { unset = [], keep = 8000 }: SpawnNodeOptions = {}): SpawnedNode {
  const fullEnv: NodeJS.ProcessEnv = { ...process.env, ...env }
  for (const name of unset) delete fullEnv[name]
  const child = spawn(process.execPath, args, { cwd: packageRoot(), env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  track(child)
  let tail = ''
  const collect = (chunk: Buffer): void => { tail = (tail + chunk.toString('utf8')).slice(-keep) }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  return { child, output: () => tail }
}
