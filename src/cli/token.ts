import { parseArgs } from 'node:util'
import { mintDevToken } from '../auth/dev-token.js'
import { loadEnv } from '../config/env.js'

const ttlPattern = /^(\d+)([smhd])$/
const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }
const usage = 'usage: npm run token -- --authority TR-MOJ [--roles agency,liaison] [--sub clerk-1] [--ttl 1h]\n'

/** `rogatory token`: prints an HS256 development token signed with AUTH_DEV_SECRET. */
export function runTokenCommand (argv: string[]): number {
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
  if (values.help === true) {
    process.stdout.write(usage)
    return 0
  }
  if (values.authority === undefined) {
    process.stderr.write(usage)
    return 2
  }
  const env = loadEnv()
  if (env.authDevSecret === undefined) {
    process.stderr.write('AUTH_DEV_SECRET is not set: export the same value the gateway runs with.\n')
    return 2
  }
  const ttl = ttlPattern.exec(values.ttl)
  if (ttl === null) {
    process.stderr.write('--ttl must look like 30s, 15m, 1h or 7d\n')
    return 2
  }
  const roles = values.roles.split(',').map((role) => role.trim()).filter(Boolean)
  const sub = values.sub ?? `dev-${values.authority.toLowerCase()}`
  process.stdout.write(mintDevToken(env.authDevSecret, { authority: values.authority, roles, sub }, Number(ttl[1]) * unitSeconds[ttl[2]]) + '\n')
  return 0
}
