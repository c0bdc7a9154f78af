import { parseArgs } from 'node:util'
import { loadEnv } from '../config/env.js'
import { toCsv } from '../domain/report.js'
import { createKeys } from '../store/keys.js'
import { ReportStore } from '../store/report-store.js'
import { connectForCli } from './store-connection.js'

const datePattern = /^\d{4}-\d{2}-\d{2}$/

/** `rogatory report turnaround --from D --to D [--csv] [--authority X] [--by type|direction]`: every pair unless --authority. */
export async function runReport (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      csv: { type: 'boolean', default: false },
      authority: { type: 'string' },
      by: { type: 'string', default: 'type' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  const usage = 'usage: npm run report -- --from 2026-01-01 --to 2026-12-31 [--csv] [--authority TR-MOJ] [--by type|direction]\n'
  if (values.help === true) {
    process.stdout.write(usage)
    return 0
  }
  if (values.from === undefined || values.to === undefined || !datePattern.test(values.from) || !datePattern.test(values.to) ||
    (values.by !== 'type' && values.by !== 'direction')) {
    process.stderr.write(usage)
    return 2
  }
  const env = loadEnv()
  const { redis, close } = await connectForCli(env)
  try {
    const report = await new ReportStore(redis, createKeys()).turnaround({
      fromDay: values.from,
      toDay: values.to,
      visibleTo: values.authority,
      groupBy: values.by
    })
    process.stdout.write(values.csv === true ? toCsv(report.rows) : JSON.stringify(report, null, 2) + '\n')
    return 0
  } finally {
    await close()
  }
}
