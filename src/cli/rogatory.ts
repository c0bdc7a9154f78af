#!/usr/bin/env node
import { EnvError } from '../config/env.js'

const help = `rogatory — gateway for mutual legal assistance and repatriation requests

usage: rogatory <command> [options]

  serve                     run the gateway (API, and workers unless RUN_WORKERS=false)
  worker                    run the workers alone (needs REDIS_URL)
  token --authority ID      print a development token (needs AUTH_DEV_SECRET)
  audit verify              walk the audit log's hash chain
  report turnaround --from D --to D [--csv]
                            turnaround per direction of each pair
  seed --requests N         generate a realistic history (demos, benchmarks)

Each command takes --help. Environment: see README.md.
`

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      await import('../server.js')
      return -1
    case 'worker':
      await import('../../workers/main.js')
      return -1
    case 'token':
      return (await import('./token.js')).runTokenCommand(rest)
    case 'audit':
      if (rest[0] === 'verify') return (await import('./audit.js')).runAuditVerify()
      process.stderr.write('usage: rogatory audit verify\n')
      return 2
    case 'report':
      if (rest[0] === 'turnaround') return (await import('./report.js')).runReport(rest.slice(1))
      process.stderr.write('usage: rogatory report turnaround --from D --to D [--csv]\n')
      return 2
    case 'seed':
      return (await import('./seed.js')).runSeed(rest)
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(help)
      return command === undefined ? 2 : 0
    default:
      process.stderr.write(`unknown command ${command}\n\n${help}`)
      return 2
  }
}

main(process.argv.slice(2)).then((code) => {
  // Long-running commands (serve, worker) keep the process alive themselves.
  if (code >= 0) process.exit(code)
}, (error: unknown) => {
  const message = error instanceof EnvError || error instanceof Error ? error.message : String(error)
  process.stderr.write(`rogatory: ${message}\n`)
  process.exit(1)
})
