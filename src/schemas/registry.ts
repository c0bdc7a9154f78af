// The JSON Schemas under schemas/ (the source of truth for request validation) and an
// Ajv instance that knows all of them. Schemas reference each other by relative $ref,
// resolved against their $id (https://rogatory.eu/schemas/<name>.json).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv2020, type Options } from 'ajv/dist/2020.js'
import formatsModule from 'ajv-formats'
import { packageRoot } from '../config/env.js'

// ajv-formats is CommonJS with a default export; under NodeNext the default import is the module object.
const addFormats = ((formatsModule as unknown as { default?: unknown }).default ?? formatsModule) as typeof formatsModule.default

export const SCHEMA_BASE = 'https://rogatory.eu/schemas/'

let cache: Map<string, Record<string, unknown>> | undefined

function load (): Map<string, Record<string, unknown>> {
  if (cache) return cache
  const dir = join(packageRoot(), 'schemas')
  const schemas = new Map<string, Record<string, unknown>>()
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const name = file.slice(0, -'.json'.length)
    const schema = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>
    if (schema.$id !== schemaId(name)) throw new Error(`schemas/${file}: $id must be ${schemaId(name)}`)
    schemas.set(name, schema)
  }
  cache = schemas
  return schemas
}

/** Names of the schema files, without `.json` (e.g. 'envelope', 'mla-request', 'request'). */
export function schemaNames (): string[] {
  return [...load().keys()]
}

/** The parsed schema, or undefined for an unknown name. Do not mutate it. */
export function getSchema (name: string): Record<string, unknown> | undefined {
  return load().get(name)
}

/** The $id of a schema: https://rogatory.eu/schemas/<name>.json */
export function schemaId (name: string): string {
  return `${SCHEMA_BASE}${name}.json`
}

/**
 * A new Ajv (draft 2020-12) with strict mode, all errors, discriminator support, ajv-formats,
 * and every schema added. Compile with `ajv.getSchema(schemaId('request'))`.
 * `options` may add e.g. a logger; it cannot relax the validation options.
 */
export function createAjv (options: Options = {}): Ajv2020 {
  const ajv = new Ajv2020({ ...options, strict: true, allErrors: true, discriminator: true })
  addFormats(ajv)
  for (const schema of load().values()) ajv.addSchema(schema)
  return ajv
}
