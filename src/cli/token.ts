import { parseArgs } from 'node:util'
import { mintDevToken } from '../auth/dev-token.js'
import { loadEnv } from '../config/env.js'

const ttlPattern = /^(\d+)([smhd])$/
const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }

export function runTokenCommand (argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      authority: { type: 'string' },
      roles: { type: 'string', default: 'agency' },
      sub: { type: 'string' },
      ttl: { type: 'string', default: '1h' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true || values.authority === undefined) {
    process.stdout.write('usage: npm run token -- --authority TR-MOJ [--roles agency,liaison] [--sub clerk-1] [--ttl 1h]\n')
    process.exit(values.help === true ? 0 : 2)
  }
  const env = loadEnv()
  if (env.authDevSecret === undefined) {
    process.stderr.write('AUTH_DEV_SECRET is not set: export the same value the gateway runs with.\n')
    process.exit(2)
  }
  const ttl = ttlPattern.exec(values.ttl)
  if (ttl === null) {
    process.stderr.write('--ttl must look like 30s, 15m, 1h or 7d\n')
    process.exit(2)
  }
  const roles = values.roles.split(',').map((role) => role.trim()).filter(Boolean)
  const token = mintDevToken(env.authDevSecret, { authority: values.authority, roles, sub: values.sub ?? `dev-${values.authority.toLowerCase()}` }, Number(ttl[1]) * unitSeconds[ttl[2]])
  process.stdout.write(token + '\n')
}

runTokenCommand(process.argv.slice(2))
