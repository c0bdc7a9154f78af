// Builds once when dist/ is missing, so that `npm run token` and friends work on a fresh clone.
import { execSync } from 'node:child_process'
import { existsSync } from 'node:fs'

if (!existsSync(new URL('../dist/src/cli/rogatory.js', import.meta.url))) {
  execSync('npm run build --silent', { stdio: 'inherit', cwd: new URL('..', import.meta.url) })
}
