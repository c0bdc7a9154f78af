// The demo configuration (config/demo.json) and what the tests and the
// benchmarks do to it: look up an agreement or an authority to adjust it, lift
// the per-authority rate limits, and write it to a file for GATEWAY_CONFIG.
// Imported by bench/lib/gateway.ts too, so it stays free of tap and of the app.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../../src/config/env.js'
import { loadGatewayConfig } from '../../src/config/gateway-config.js'
import type { GatewayConfig } from '../../src/domain/types.js'

/** config/demo.json, loaded and validated (a fresh object each call). */
export function demoConfig (): GatewayConfig {
  return loadGatewayConfig(join(packageRoot(), 'config', 'demo.json'))
}

/** The agreement with this id, to read or adjust in place. */
export function agreementOf (config: GatewayConfig, id: string): GatewayConfig['agreements'][number] {
  const found = config.agreements.find((a) => a.id === id)
  if (found === undefined) throw new Error(`the demo config has no agreement ${id}`)
  return found
}

/** The authority with this id, to read or adjust in place. */
export function authorityOf (config: GatewayConfig, id: string): GatewayConfig['authorities'][number] {
  const found = config.authorities.find((a) => a.id === id)
  if (found === undefined) throw new Error(`the demo config has no authority ${id}`)
  return found
}

/**
 * Gives every authority the highest per-authority rate limit the config allows
 * (1,000,000 per minute): tests, drills and benchmarks send far more than a
 * partner would, and a 429 is not what they are about. The limiter still runs.
 */
export function liftRateLimits (config: GatewayConfig): void {
  for (const authority of config.authorities) authority.rateLimit = { max: 1_000_000, timeWindowSeconds: 60 }
}

/** Writes the config as JSON to `dir`/`name` (not validated here); returns the path, for GATEWAY_CONFIG. */
export function writeConfigFile (dir: string, config: GatewayConfig, name = 'gateway-config.json'): string {
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(config, null, 2))
  return path
}
