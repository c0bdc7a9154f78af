import { loadEnv } from '../config/env.js'
import { AuditLog } from '../store/audit-log.js'
import { createKeys } from '../store/keys.js'
import { connectForCli } from './store-connection.js'

/** `rogatory audit verify`: walks the hash chain; exit 0 when intact, 1 at the first bad entry. */
export async function runAuditVerify (): Promise<number> {
  const env = loadEnv()
  const { redis, close } = await connectForCli(env)
  try {
    const result = await new AuditLog(redis, createKeys()).verify()
    process.stdout.write(JSON.stringify(result, null, 2) + '\n')
    if (result.ok) process.stderr.write(`audit log intact: ${result.checked} entries checked, head ${result.tipHash}\n`)
    else process.stderr.write(`audit log BROKEN (${result.fault}): ${result.detail}\n`)
    return result.ok ? 0 : 1
  } finally {
    await close()
  }
}
