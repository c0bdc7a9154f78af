// Loading and indexing the gateway configuration (GATEWAY_CONFIG): authorities
// and agreements. Validation is two-staged: the JSON Schema
// (schemas/gateway-config.json, which also fills in defaults) and then the
// checks a schema cannot express. Every problem is collected and reported at
// once, each line naming the JSON pointer of the offending value.

import { readFileSync, existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createPublicKey } from 'node:crypto'
import Ajv2020Import from 'ajv/dist/2020.js'
import type { ErrorObject, ValidateFunction } from 'ajv'
import addFormatsImport from 'ajv-formats'
import type {
  Agreement,
  Authority,
  AuthorityKey,
  GatewayConfig,
  LegalBasis,
  RequestType
} from '../domain/types.js'
import { isValidDuration, addDuration } from '../domain/duration.js'

// ajv and ajv-formats are CommonJS; depending on the loader the default import
// is the constructor/plugin itself or a namespace holding it under `default`.
const Ajv2020 = ((Ajv2020Import as unknown as { default?: unknown }).default ?? Ajv2020Import) as typeof Ajv2020Import.default
const addFormats = ((addFormatsImport as unknown as { default?: unknown }).default ?? addFormatsImport) as typeof addFormatsImport.default

export class ConfigError extends Error {
  /** One line per problem, "<json pointer>: <what is wrong>". Empty for read/parse failures. */
  readonly problems: string[]
  readonly path: string
  constructor (message: string, path: string, problems: string[] = []) {
    super(message)
    this.name = 'ConfigError'
    this.path = path
    this.problems = problems
  }
}

// ---------------------------------------------------------------------------
// Schema

/** Where the schema lives: next to src/ when run from source, two levels up from dist/src/config when built. */
function schemaFile (): string {
  const candidates = [
    new URL('../../schemas/gateway-config.json', import.meta.url),
    new URL('../../../schemas/gateway-config.json', import.meta.url)
  ].map(u => fileURLToPath(u))
  const found = candidates.find(p => existsSync(p))
  if (found === undefined) throw new Error(`schemas/gateway-config.json not found (looked in ${candidates.join(', ')})`)
  return found
}

let validator: ValidateFunction | undefined

function getValidator (): ValidateFunction {
  if (validator === undefined) {
    const schema = JSON.parse(readFileSync(schemaFile(), 'utf8')) as Record<string, unknown>
    const ajv = new Ajv2020({ strict: true, allErrors: true, useDefaults: true })
    addFormats(ajv)
    validator = ajv.compile(schema)
  }
  return validator
}

const PRIVATE_JWK_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'])
const JWK_PATH_RE = /\/keys\/\d+\/publicKeyJwk$/

function valueAt (root: unknown, pointer: string): unknown {
  if (pointer === '') return root
  let cur: unknown = root
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<string, unknown>)[key]
  }
  return cur
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v)
  if (s === undefined) return String(v)
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}

const notDuration = (ptr: string, v: unknown): string => `${ptr}: ${show(v)} is not an ISO 8601 duration`

/** Turn Ajv errors into "<pointer>: <message>" lines, friendlier than Ajv's defaults where it matters. */
const SECOND_PARTY_RE = /^\/agreements\/\d+\/parties\/1$/
const FIRST_PARTY_RE = /^\/agreements\/\d+\/parties\/0$/

function schemaProblems (errors: ErrorObject[], data: unknown): string[] {
  const out: string[] = []
  // A failed pattern says all there is to say about a string; its length errors are noise.
  const patternFailed = new Set(errors.filter(e => e.keyword === 'pattern').map(e => e.instancePath))
  for (const e of errors) {
    const ptr = e.instancePath === '' ? '/' : e.instancePath
    const value = valueAt(data, e.instancePath)
    if ((e.keyword === 'minLength' || e.keyword === 'maxLength') && patternFailed.has(e.instancePath)) continue
    // parties[1] is "authority id or '*'": report once, from the const branch, not per branch.
    if (SECOND_PARTY_RE.test(e.instancePath) && e.keyword !== 'const' && typeof value === 'string') continue
    if (FIRST_PARTY_RE.test(e.instancePath) && value === '*') {
      if (e.keyword === 'pattern') out.push(`${ptr}: "*" may only stand in second place`)
      continue
    }
    switch (e.keyword) {
      case 'if':
        continue // always accompanied by the failing `then` keyword's own error
      case 'anyOf':
        continue // the parties' second entry: reported through its sub-errors below
      case 'const':
        if (e.schemaPath.includes('/prefixItems/1/anyOf/')) {
          out.push(`${ptr}: ${show(value)} is neither an authority id nor "*"`)
          continue
        }
        out.push(`${ptr}: must be ${show((e.params as { allowedValue: unknown }).allowedValue)}`)
        continue
      case 'additionalProperties': {
        const prop = (e.params as { additionalProperty: string }).additionalProperty
        // private key material is reported by the semantic check, with a better message
        if (JWK_PATH_RE.test(e.instancePath) && PRIVATE_JWK_MEMBERS.has(prop)) continue
        out.push(`${ptr}: unknown property ${show(prop)}`)
        continue
      }
      case 'required':
        out.push(`${ptr}: missing required property ${show((e.params as { missingProperty: string }).missingProperty)}`)
        continue
      case 'pattern':
        if (e.schemaPath.startsWith('#/$defs/duration/')) out.push(notDuration(ptr, value))
        else if (e.schemaPath === '#/$defs/webhook/properties/url/pattern') out.push(`${ptr}: ${show(value)} is not an http(s) URL`)
        else if (e.schemaPath.startsWith('#/$defs/authorityId/')) {
          out.push(`${ptr}: ${show(value)} is not an authority id (like "TR-MOJ": ${(e.params as { pattern: string }).pattern})`)
        } else out.push(`${ptr}: ${show(value)} does not match ${(e.params as { pattern: string }).pattern}`)
        continue
      case 'enum':
        out.push(`${ptr}: ${show(value)} is not one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map(show).join(', ')}`)
        continue
      default:
        out.push(`${ptr}: ${e.message ?? e.keyword}${value === null || (value !== undefined && typeof value !== 'object') ? ` (got ${show(value)})` : ''}`)
    }
  }
  return out
}

// ---------------------------------------------------------------------------
// Semantic checks. They run whether or not the schema passed, so they never
// trust a shape: every access is guarded.

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v)
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

const EPOCH = new Date(0)

function checkJwk (ptr: string, alg: unknown, kid: unknown, jwk: Obj, problems: string[]): void {
  const priv = Object.keys(jwk).filter(k => PRIVATE_JWK_MEMBERS.has(k))
  if (priv.length > 0) {
    problems.push(`${ptr}: contains private key material (${priv.map(show).join(', ')}); only the public key belongs in the config`)
    return
  }
  if (typeof jwk.alg === 'string' && typeof alg === 'string' && jwk.alg !== alg) {
    problems.push(`${ptr}/alg: ${show(jwk.alg)} differs from the key's alg ${show(alg)}`)
  }
  if (typeof jwk.kid === 'string' && typeof kid === 'string' && jwk.kid !== kid) {
    problems.push(`${ptr}/kid: ${show(jwk.kid)} differs from the key's kid ${show(kid)}`)
  }
  // Incomplete JWKs are reported by the schema ("missing required property"); don't pile on.
  const members = jwk.kty === 'EC' ? ['crv', 'x', 'y'] : jwk.kty === 'RSA' ? ['n', 'e'] : undefined
  if (members === undefined || !members.every(m => typeof jwk[m] === 'string')) return
  let key
  try {
    key = createPublicKey({ key: jwk as never, format: 'jwk' })
  } catch (err) {
    problems.push(`${ptr}: not an importable public JWK (${(err as Error).message})`)
    return
  }
  if (alg === 'ES256') {
    const curve = key.asymmetricKeyDetails?.namedCurve
    if (key.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'P-256')) {
      problems.push(`${ptr}: ES256 needs an EC P-256 key, got ${key.asymmetricKeyType ?? 'unknown'}${curve !== undefined ? ` ${curve}` : ''}`)
    }
  } else if (alg === 'RS256') {
    const bits = key.asymmetricKeyDetails?.modulusLength
    if (key.asymmetricKeyType !== 'rsa') {
      problems.push(`${ptr}: RS256 needs an RSA key, got ${key.asymmetricKeyType ?? 'unknown'}`)
    } else if (bits !== undefined && bits < 2048) {
      problems.push(`${ptr}: RS256 key of ${bits} bits is too short (at least 2048)`)
    }
  }
}

const AUTHORITY_ID_RE = /^[A-Z]{2}-[A-Z0-9]{2,12}$/
const DURATION_FIELDS = ['acknowledgeWithin', 'respondWithin', 'extensionMax', 'custodyLeadTime'] as const
const POSITIVE_FIELDS = new Set(['acknowledgeWithin', 'respondWithin'])

function semanticProblems (data: unknown): string[] {
  const problems: string[] = []
  if (!isObj(data)) return problems

  // authorities: unique ids, unique kids per authority, importable keys
  const authorityAt = new Map<string, number>()
  arr(data.authorities).forEach((a, i) => {
    if (!isObj(a)) return
    const id = str(a.id)
    if (id !== undefined) {
      const first = authorityAt.get(id)
      if (first !== undefined) problems.push(`/authorities/${i}/id: duplicate authority id ${show(id)} (first at /authorities/${first})`)
      else authorityAt.set(id, i)
    }
    if (isObj(a.webhook) && typeof a.webhook.url === 'string' && /^https?:\/\//.test(a.webhook.url)) {
      let host = ''
      try { host = new URL(a.webhook.url).hostname } catch { /* reported below */ }
      if (host === '') problems.push(`/authorities/${i}/webhook/url: ${show(a.webhook.url)} is not a usable http(s) URL (no host)`)
    }
    const kidAt = new Map<string, number>()
    arr(a.keys).forEach((k, j) => {
      if (!isObj(k)) return
      const ptr = `/authorities/${i}/keys/${j}`
      const kid = str(k.kid)
      if (kid !== undefined) {
        const first = kidAt.get(kid)
        if (first !== undefined) problems.push(`${ptr}/kid: duplicate kid ${show(kid)} in authority ${id ?? `#${i}`} (first at /authorities/${i}/keys/${first})`)
        else kidAt.set(kid, j)
      }
      if (isObj(k.publicKeyJwk)) checkJwk(`${ptr}/publicKeyJwk`, k.alg, k.kid, k.publicKeyJwk, problems)
    })
  })

  // agreements: unique ids, known parties, no self-pairing, no duplicates, durations
  const agreementAt = new Map<string, number>()
  const comboAt = new Map<string, number>()
  arr(data.agreements).forEach((g, i) => {
    if (!isObj(g)) return
    const ptr = `/agreements/${i}`
    const id = str(g.id)
    if (id !== undefined) {
      const first = agreementAt.get(id)
      if (first !== undefined) problems.push(`${ptr}/id: duplicate agreement id ${show(id)} (first at /agreements/${first})`)
      else agreementAt.set(id, i)
    }
    const parties = arr(g.parties)
    const [a, b] = [str(parties[0]), str(parties[1])]
    parties.slice(0, 2).forEach((p, j) => {
      // ids that are not even well-formed were reported by the schema already
      if (typeof p === 'string' && AUTHORITY_ID_RE.test(p) && !authorityAt.has(p)) {
        problems.push(`${ptr}/parties/${j}: unknown authority ${show(p)}`)
      }
    })
    // With other than two parties the schema has reported it; pair checks would only guess.
    const pairOk = parties.length === 2 && a !== undefined && b !== undefined
    if (pairOk && a === b) problems.push(`${ptr}/parties: authority ${show(a)} is paired with itself`)
    if (pairOk && a !== b && typeof g.requestType === 'string' && typeof g.legalBasis === 'string') {
      const pair = b === '*' ? `${a}|*` : [a, b].sort().join('|')
      const combo = `${pair}|${g.requestType}|${g.legalBasis}`
      const first = comboAt.get(combo)
      if (first !== undefined) {
        problems.push(`${ptr}: another agreement for ${a} and ${b === '*' ? 'every partner' : b}, ${g.requestType}, ${g.legalBasis} exists at /agreements/${first}`)
      } else comboAt.set(combo, i)
    }
    for (const f of DURATION_FIELDS) {
      const v = g[f]
      if (v === undefined) continue
      if (!isValidDuration(v)) {
        problems.push(notDuration(`${ptr}/${f}`, v))
      } else if (POSITIVE_FIELDS.has(f) && addDuration(EPOCH, v).getTime() === 0) {
        problems.push(`${ptr}/${f}: ${show(v)} is zero; a clock must be longer than that`)
      }
    }
  })
  return problems
}

// ---------------------------------------------------------------------------
// Public API

/**
 * Validate (and fill in defaults of) an already-parsed config. `source` names it in messages.
 * Mutates `data` by applying schema defaults; returns it typed.
 */
export function parseGatewayConfig (data: unknown, source = '<inline config>'): GatewayConfig {
  const validate = getValidator()
  const ok = validate(data)
  const problems = ok ? [] : schemaProblems(validate.errors ?? [], data)
  for (const p of semanticProblems(data)) problems.push(p)
  const unique = [...new Set(problems)]
  if (unique.length > 0) {
    throw new ConfigError(`GATEWAY_CONFIG ${source} is invalid:\n${unique.map(p => `  ${p}`).join('\n')}`, source, unique)
  }
  return data as GatewayConfig
}

/** Read, parse and validate a gateway config file. Throws ConfigError listing every problem. */
export function loadGatewayConfig (path: string): GatewayConfig {
  const full = resolve(path)
  let text: string
  try {
    text = readFileSync(full, 'utf8')
  } catch (err) {
    throw new ConfigError(`GATEWAY_CONFIG ${full} cannot be read: ${(err as Error).message}`, full)
  }
  let data: unknown
  try {
    data = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  } catch (err) {
    throw new ConfigError(`GATEWAY_CONFIG ${full} is not valid JSON: ${(err as Error).message}`, full)
  }
  return parseGatewayConfig(data, full)
}

/** The demo config that ships with the project (config/demo.json), the gateway's default. */
export function demoConfigPath (): string {
  const candidates = [
    new URL('../../config/demo.json', import.meta.url),
    new URL('../../../config/demo.json', import.meta.url)
  ].map(u => fileURLToPath(u))
  return candidates.find(p => existsSync(p)) ?? candidates[0]
}

interface Indexed { agreement: Agreement; order: number }

/**
 * O(1) lookups over a loaded config, built once. Treat the config as immutable
 * once a directory has been built from it.
 */
export class GatewayDirectory {
  readonly config: GatewayConfig
  private readonly authorities = new Map<string, Authority>()
  private readonly keys = new Map<string, AuthorityKey>()
  private readonly agreementsById = new Map<string, Agreement>()
  /** "A|B|type" with A < B → agreements for that exact pair, in file order. */
  private readonly exact = new Map<string, Indexed[]>()
  /** "A|type" → wildcard agreements of A (A, '*'), in file order. */
  private readonly wildcard = new Map<string, Indexed[]>()

  constructor (config: GatewayConfig) {
    this.config = config
    for (const a of config.authorities) {
      this.authorities.set(a.id, a)
      for (const k of a.keys) this.keys.set(`${a.id}\u0000${k.kid}`, k)
    }
    config.agreements.forEach((agreement, order) => {
      this.agreementsById.set(agreement.id, agreement)
      const [a, b] = agreement.parties
      const key = b === '*'
        ? `${a}|${agreement.requestType}`
        : `${a < b ? a : b}|${a < b ? b : a}|${agreement.requestType}`
      const map = b === '*' ? this.wildcard : this.exact
      const list = map.get(key)
      if (list === undefined) map.set(key, [{ agreement, order }])
      else list.push({ agreement, order })
    })
  }

  authority (id: string): Authority | undefined {
    return this.authorities.get(id)
  }

  /** An authority's registered public key by kid (for JWT verification). */
  key (authorityId: string, kid: string): AuthorityKey | undefined {
    return this.keys.get(`${authorityId}\u0000${kid}`)
  }

  agreementById (id: string): Agreement | undefined {
    return this.agreementsById.get(id)
  }

  /**
   * Every agreement that covers `sender` → `recipient` for `type` (and
   * `legalBasis` when given), in order of precedence: agreements for the exact
   * unordered pair first, then wildcard ones ('*'), each group in file order.
   * Empty when sender and recipient are the same authority.
   */
  agreementsFor (sender: string, recipient: string, type: RequestType, legalBasis?: LegalBasis): Agreement[] {
    if (sender === recipient) return []
    const match = (x: Indexed): boolean => legalBasis === undefined || x.agreement.legalBasis === legalBasis
    const [lo, hi] = sender < recipient ? [sender, recipient] : [recipient, sender]
    const exact = (this.exact.get(`${lo}|${hi}|${type}`) ?? []).filter(match)
    const wild = [
      ...(this.wildcard.get(`${sender}|${type}`) ?? []),
      ...(this.wildcard.get(`${recipient}|${type}`) ?? [])
    ].filter(match).sort((x, y) => x.order - y.order)
    return [...exact, ...wild].map(x => x.agreement)
  }

  /** The agreement that governs a request: see agreementsFor for precedence. */
  agreementFor (sender: string, recipient: string, type: RequestType, legalBasis?: LegalBasis): Agreement | undefined {
    return this.agreementsFor(sender, recipient, type, legalBasis)[0]
  }
}

const directories = new WeakMap<GatewayConfig, GatewayDirectory>()

/** The directory of a config, built on first use and cached per config object. */
export function directoryOf (config: GatewayConfig): GatewayDirectory {
  let dir = directories.get(config)
  if (dir === undefined) {
    dir = new GatewayDirectory(config)
    directories.set(config, dir)
  }
  return dir
}

/**
 * The agreement for a request from `sender` to `recipient`: an agreement for
 * the exact unordered pair wins over a wildcard one; with `legalBasis`, only
 * agreements on that basis match; among several matches, the first in file order.
 */
export function findAgreement (
  config: GatewayConfig,
  sender: string,
  recipient: string,
  type: RequestType,
  legalBasis?: LegalBasis
): Agreement | undefined {
  return directoryOf(config).agreementFor(sender, recipient, type, legalBasis)
}

export function authorityById (config: GatewayConfig, id: string): Authority | undefined {
  return directoryOf(config).authority(id)
}
