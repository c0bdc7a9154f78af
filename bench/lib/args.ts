// Tiny command-line flag parser for the benchmarks: `--name value`, `--name=value`,
// `--flag` (boolean). Unknown flags are an error, so a typo never silently runs
// the default (and possibly very long) configuration.

export type FlagSpec = Record<string, { type: 'number' | 'string' | 'boolean', default: number | string | boolean, help: string }>

export type Flags<S extends FlagSpec> = { [K in keyof S]: S[K]['default'] extends number ? number : S[K]['default'] extends boolean ? boolean : string }

export function parseFlags<S extends FlagSpec> (argv: string[], spec: S, usage: string): Flags<S> {
  const out: Record<string, number | string | boolean> = {}
  for (const [name, s] of Object.entries(spec)) out[name] = s.default
  const fail = (message: string): never => {
    process.stderr.write(`${message}\n\n${helpText(spec, usage)}`)
    process.exit(2)
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(helpText(spec, usage))
      process.exit(0)
    }
    if (!arg.startsWith('--')) fail(`unexpected argument ${arg}`)
    const eq = arg.indexOf('=')
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
    const s = spec[name]
    if (s === undefined) fail(`unknown flag --${name}`)
    let raw: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1)
    if (s.type === 'boolean') {
      out[name] = raw === undefined ? true : !['0', 'false', 'no'].includes(raw)
      continue
    }
    if (raw === undefined) {
      raw = argv[++i]
      if (raw === undefined) fail(`--${name} needs a value`)
    }
    if (s.type === 'number') {
      const n = Number(String(raw).replace(/_/g, ''))
      if (!Number.isFinite(n)) fail(`--${name} must be a number, got ${String(raw)}`)
      out[name] = n
    } else {
      out[name] = String(raw)
    }
  }
  return out as Flags<S>
}

export function helpText (spec: FlagSpec, usage: string): string {
  const lines = Object.entries(spec).map(([name, s]) => `  --${name}${s.type === 'boolean' ? '' : ` <${s.type}>`}`.padEnd(30) + `${s.help} (default ${String(s.default)})`)
  return `${usage}\n\n${lines.join('\n')}\n`
}
