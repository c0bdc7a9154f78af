import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js'
import { createAjv, getSchema, schemaId, schemaNames } from '../../src/schemas/registry.js'

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
type Obj = { [k: string]: Json }
type Schema = Record<string, any>

const REQUEST_SCHEMAS = ['envelope', 'mla-request', 'repatriation-request', 'request']
const TYPE_SCHEMAS = { mla: 'mla-request', repatriation: 'repatriation-request' } as const

const warnings: unknown[][] = []
const ajv = createAjv({
  logger: {
    log: () => {},
    warn: (...args: unknown[]) => { warnings.push(args) },
    error: (...args: unknown[]) => { warnings.push(args) }
  }
})
const validate = ajv.getSchema(schemaId('request')) as ValidateFunction

const example = (type: keyof typeof TYPE_SCHEMAS): Obj =>
  JSON.parse(readFileSync(new URL(`../../schemas/examples/${TYPE_SCHEMAS[type]}.json`, import.meta.url), 'utf8'))

const clone = <T>(v: T): T => structuredClone(v)

function errorsOf (body: unknown): ErrorObject[] {
  return validate(body) ? [] : [...(validate.errors ?? [])]
}

/** JSON pointer of what an error is about: the missing/unknown property when there is one. */
function pointerOf (e: ErrorObject): string {
  const p = e.params as Record<string, unknown>
  const prop = p.missingProperty ?? p.additionalProperty ?? p.unevaluatedProperty
  return prop === undefined ? e.instancePath : `${e.instancePath}/${String(prop)}`
}

function rejects (tt: Test, body: unknown, pointer: string, keyword: string, msg: string): void {
  const errors = errorsOf(body)
  tt.ok(
    errors.some((e) => pointerOf(e) === pointer && e.keyword === keyword),
    `${msg}: ${keyword} error at ${pointer}`,
    { errors: errors.map((e) => `${pointerOf(e)} ${e.keyword} ${e.message}`) }
  )
}

/** Sets (or with value undefined deletes) the value at a JSON pointer. */
function at (body: Obj, pointer: string, value: Json | undefined): Obj {
  const copy = clone(body)
  const path = pointer.split('/').slice(1)
  const last = path.pop()!
  let node: any = copy
  for (const key of path) node = node[key]
  if (value === undefined) delete node[last]
  else node[last] = value
  return copy
}

// ---------- schema walking (refs between our schema files, allOf) ----------

function resolve (schema: Schema, doc: string): { schema: Schema, doc: string } {
  if (typeof schema.$ref !== 'string') return { schema, doc }
  const [file, fragment] = schema.$ref.split('#')
  const target = file ? file.replace(/\.json$/, '') : doc
  let node: any = getSchema(target)
  for (const key of (fragment ?? '').split('/').filter(Boolean)) node = node[key]
  return resolve({ ...node, ...omit(schema, '$ref') }, target)
}

function omit (o: Schema, ...keys: string[]): Schema {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)))
}

/** The object schemas that apply to one instance location: the schema, plus its allOf branches. */
function parts (schema: Schema, doc: string): Array<{ schema: Schema, doc: string }> {
  const r = resolve(schema, doc)
  return [r, ...((r.schema.allOf ?? []) as Schema[]).flatMap((s) => parts(s, r.doc))]
}

/** Every (pointer, field) that a `required` list demands and that is present in the instance. */
function requiredFields (schema: Schema, doc: string, instance: Json, pointer = ''): Array<[string, string]> {
  const out: Array<[string, string]> = []
  const ps = parts(schema, doc)
  if (Array.isArray(instance)) {
    const items = ps.find((p) => p.schema.items)
    if (items) instance.forEach((v, i) => out.push(...requiredFields(items.schema.items, items.doc, v, `${pointer}/${i}`)))
    return out
  }
  if (instance === null || typeof instance !== 'object') return out
  for (const p of ps) {
    for (const key of (p.schema.required ?? []) as string[]) out.push([pointer, key])
    for (const [key, sub] of Object.entries((p.schema.properties ?? {}) as Record<string, Schema>)) {
      if (key in instance && typeof sub === 'object') out.push(...requiredFields(sub, p.doc, instance[key], `${pointer}/${key}`))
    }
  }
  return [...new Map(out.map((f) => [f.join('/'), f])).values()]
}

// ---------- tests ----------

t.test('the registry knows the request schemas, with their $id', async (t) => {
  for (const name of REQUEST_SCHEMAS) {
    t.ok(schemaNames().includes(name), name)
    const schema = getSchema(name)!
    t.equal(schema.$id, `https://rogatory.eu/schemas/${name}.json`)
    t.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema')
  }
  t.equal(getSchema('nope'), undefined)
})

t.test('every request schema compiles under strict mode with no warning', async (t) => {
  for (const name of REQUEST_SCHEMAS) t.type(ajv.getSchema(schemaId(name)), 'function', name)
  t.same(warnings, [], 'the logger got no warnings')
})

t.test('the examples are valid', async (t) => {
  for (const type of ['mla', 'repatriation'] as const) {
    t.same(errorsOf(example(type)), [], `${type} example`)
    const size = readFileSync(new URL(`../../schemas/examples/${TYPE_SCHEMAS[type]}.json`, import.meta.url)).length
    t.ok(size > 1000 && size < 3500, `${type} example is ${size} bytes`)
  }
  t.notOk('sender' in example('mla'), 'the sender is not part of the body')
})

for (const type of ['mla', 'repatriation'] as const) {
  t.test(`${type}: removing any required field is reported at its pointer`, async (t) => {
    const body = example(type)
    const fields = requiredFields(getSchema(TYPE_SCHEMAS[type])!, TYPE_SCHEMAS[type], body)
    t.ok(fields.length > 15, `${fields.length} required fields found in the example`)
    // the walk covers the envelope, the type schema and nested objects (and array items)
    for (const f of ['/senderReference', '/handling/code', '/translation/attached']) {
      t.ok(fields.some(([p, k]) => `${p}/${k}` === f), `walk includes ${f}`)
    }
    for (const [pointer, key] of fields) {
      rejects(t, at(body, `${pointer}/${key}`, undefined), `${pointer}/${key}`, 'required', 'missing')
    }
  })
}

t.test('a body of one type gets only that type\'s errors (discriminator)', async (t) => {
  const missing = errorsOf({ type: 'mla' }).map(pointerOf).sort()
  t.same(missing, [
    '/facts', '/handling', '/issuingAuthority', '/language', '/measures', '/offences', '/persons',
    '/priority', '/proceedings', '/recipient', '/senderReference', '/translation'
  ])
  const rep = errorsOf({ type: 'repatriation' }).map(pointerOf)
  t.ok(rep.includes('/nonRefoulement') && !rep.includes('/facts'))
  t.notOk(errorsOf({ type: 'mla' }).some((e) => e.keyword === 'oneOf'), 'no oneOf error')
  rejects(t, at(example('mla'), '/type', 'extradition'), '/type', 'enum', 'unknown type')
  rejects(t, at(example('mla'), '/type', 'repatriation'), '/person', 'required', 'mla body sent as repatriation')
  rejects(t, at(example('mla'), '/type', 'repatriation'), '/facts', 'unevaluatedProperties', 'mla body sent as repatriation')
})

t.test('wrong formats and patterns are rejected', async (t) => {
  const mla = example('mla')
  const rep = example('repatriation')
  rejects(t, at(mla, '/urgency/requestedBy', '2027-02-30'), '/urgency/requestedBy', 'format', 'impossible date')
  rejects(t, at(mla, '/persons/0/dateOfBirth', '04.06.1981'), '/persons/0/dateOfBirth', 'format', 'non-ISO date')
  rejects(t, at(rep, '/custody/releaseDate', '2027-05-28T00:00:00Z'), '/custody/releaseDate', 'format', 'date-time for date')
  rejects(t, at(mla, '/issuingAuthority/contactPerson/email', 'elif.demirtas@'), '/issuingAuthority/contactPerson/email', 'format', 'bad email')
  rejects(t, at(mla, '/relatedRequests/0/requestId', 'not-a-uuid'), '/relatedRequests/0/requestId', 'format', 'bad uuid')
  for (const recipient of ['de-bfj', 'DEBFJ', 'D-BFJ', 'DE-B', 'DE-ABCDEFGHIJKLM', ' DE-BFJ']) {
    rejects(t, at(mla, '/recipient', recipient), '/recipient', 'pattern', `recipient ${JSON.stringify(recipient)}`)
  }
  rejects(t, at(mla, '/language', 'tur'), '/language', 'pattern', 'three-letter language')
  rejects(t, at(mla, '/persons/0/nationalities', ['tr']), '/persons/0/nationalities/0', 'pattern', 'lower-case country')
  rejects(t, at(mla, '/issuingAuthority/phone', '0212 000 00 00'), '/issuingAuthority/phone', 'pattern', 'national phone format')
  for (const ref of [' 2026/1', '2026/1 ', 'a\nb', 'a\u0000b']) {
    rejects(t, at(mla, '/senderReference', ref), '/senderReference', 'pattern', `senderReference ${JSON.stringify(ref)}`)
  }
  t.same(errorsOf(at(mla, '/senderReference', 'Ç-2026/48213 (ek 2)')), [], 'printable non-ASCII reference accepted')
  rejects(t, at(mla, '/measures/0/measure', 'torture'), '/measures/0/measure', 'enum', 'unknown measure')
  rejects(t, at(mla, '/legalBasis', 'eu-readmission-agreement'), '/legalBasis', 'enum', 'readmission basis for mla')
  rejects(t, at(rep, '/legalBasis', 'coe-1959-convention'), '/legalBasis', 'enum', 'mla basis for repatriation')
  rejects(t, at(rep, '/security/escortCount', 1.5), '/security/escortCount', 'type', 'fractional escort')
  rejects(t, at(rep, '/family/0/minor', 'yes'), '/family/0/minor', 'type', 'string for boolean')
})

t.test('unknown fields are rejected at the top level and nested', async (t) => {
  const mla = example('mla')
  const rep = example('repatriation')
  rejects(t, at(mla, '/sender', 'TR-MOJ'), '/sender', 'unevaluatedProperties', 'sender in the body')
  rejects(t, at(rep, '/facts', 'x'), '/facts', 'unevaluatedProperties', 'an mla field in a repatriation body')
  rejects(t, at(mla, '/issuingAuthority/fax', '+90'), '/issuingAuthority/fax', 'additionalProperties', 'nested')
  rejects(t, at(mla, '/handling/note', 'x'), '/handling/note', 'additionalProperties', 'envelope nested')
  rejects(t, at(mla, '/persons/1/address/planet', 'Earth'), '/persons/1/address/planet', 'additionalProperties', '$defs object')
  rejects(t, at(rep, '/person/nationalities/future', ['FR']), '/person/nationalities/future', 'additionalProperties', 'deep')
  rejects(t, at(rep, '/nationalityEvidence/0/scan', 'x'), '/nationalityEvidence/0/scan', 'additionalProperties', 'array item')
})

t.test('oversize strings, arrays and numbers are rejected', async (t) => {
  const mla = example('mla')
  const rep = example('repatriation')
  t.same(errorsOf(at(mla, '/facts', 'x'.repeat(20000))), [], '20000 characters of facts accepted')
  rejects(t, at(mla, '/facts', 'x'.repeat(20001)), '/facts', 'maxLength', 'facts')
  rejects(t, at(mla, '/persons/0/familyName', 'x'.repeat(201)), '/persons/0/familyName', 'maxLength', 'name')
  rejects(t, at(mla, '/senderReference', 'x'.repeat(101)), '/senderReference', 'maxLength', 'reference')
  rejects(t, at(mla, '/facts', ''), '/facts', 'minLength', 'empty facts')
  const measure = (mla.measures as Json[])[0]
  rejects(t, at(mla, '/measures', Array(51).fill(measure)), '/measures', 'maxItems', 'measures')
  rejects(t, at(mla, '/measures', []), '/measures', 'minItems', 'no measure')
  const related = (mla.relatedRequests as Json[])[0]
  rejects(t, at(mla, '/relatedRequests', Array(21).fill(related)), '/relatedRequests', 'maxItems', 'related requests')
  rejects(t, at(rep, '/person/aliases', Array(21).fill('A')), '/person/aliases', 'maxItems', 'aliases')
  rejects(t, at(rep, '/nationalityEvidence', []), '/nationalityEvidence', 'minItems', 'no evidence')
  rejects(t, at(mla, '/offences/0/maximumPenaltyMonths', 1201), '/offences/0/maximumPenaltyMonths', 'maximum', 'penalty')
  rejects(t, at(mla, '/offences/0/maximumPenaltyMonths', -1), '/offences/0/maximumPenaltyMonths', 'minimum', 'penalty')
  rejects(t, at(rep, '/security/escortCount', 21), '/security/escortCount', 'maximum', 'escort')
})

t.test('conditional requirements', async (t) => {
  const mla = example('mla')
  const rep = example('repatriation')

  rejects(t, at(mla, '/handling', { code: 'H3' }), '/handling/restrictions', 'required', 'H3 without restrictions')
  t.same(errorsOf(at(mla, '/handling', { code: 'H3', restrictions: 'Not to be shared with tax authorities.' })), [])
  rejects(t, at(mla, '/handling', { code: 'H1', restrictions: 'x' }), '/handling/restrictions', 'false schema', 'restrictions without H3')

  rejects(t, at(mla, '/urgency', undefined), '/urgency', 'required', 'urgent without urgency')
  t.same(errorsOf(at(at(mla, '/urgency', undefined), '/priority', 'normal')), [], 'normal without urgency')

  rejects(t, at(rep, '/custody', { status: 'in_prison', facility: 'Metris' }), '/custody/releaseDate', 'required', 'in_prison without releaseDate')
  rejects(t, at(rep, '/custody/releaseDate', undefined), '/custody/releaseDate', 'required', 'in_removal_centre without releaseDate')
  t.same(errorsOf(at(rep, '/custody', { status: 'at_liberty' })), [], 'at liberty without releaseDate')

  rejects(t, at(mla, '/translation', { attached: true }), '/translation/language', 'required', 'translation without language')
  t.same(errorsOf(at(mla, '/translation', { attached: false })), [], 'no translation')

  rejects(t, at(mla, '/offences/0/maximumPenaltyMonths', undefined), '/offences/0', 'anyOf', 'offence without penalty')
  t.same(errorsOf(at(at(mla, '/offences/0/maximumPenaltyMonths', undefined), '/offences/0/lifeImprisonment', true)), [])

  rejects(t, at(mla, '/persons/0', { role: 'holder_of_evidence', personType: 'legal' }), '/persons/0/legalName', 'required', 'legal person without name')
  t.same(errorsOf(at(mla, '/persons/0', { role: 'holder_of_evidence', personType: 'legal', legalName: 'Mainufer Bank AG' })), [])

  rejects(t, at(rep, '/security', { risk: 'high', escortRequired: true }), '/security/escortCount', 'required', 'escort without count')
  rejects(t, at(rep, '/security/escortCount', 0), '/security/escortCount', 'minimum', 'escort of nobody')
  rejects(t, at(rep, '/nonRefoulement', { assessment: 'none_found' }), '/nonRefoulement/assessedOn', 'required', 'assessment without date')
  t.same(errorsOf(at(rep, '/nonRefoulement', { assessment: 'pending' })), [], 'pending assessment')
  rejects(t, at(rep, '/nationalityEvidence/0/number', undefined), '/nationalityEvidence/0/number', 'required', 'passport without number')
  rejects(t, at(at(rep, '/family/0/minor', false), '/family/0/unaccompanied', true), '/family/0/minor', 'const', 'unaccompanied adult')
})

t.test('every schema follows the house rules', async (t) => {
  const problems: string[] = []
  const visit = (s: any, path: string, top: boolean): void => {
    if (s === null || typeof s !== 'object') return
    if (Array.isArray(s)) { s.forEach((v, i) => visit(v, `${path}/${i}`, false)); return }
    const type = s.type
    if (type === 'object' && s.properties && !top && s.additionalProperties !== false) problems.push(`${path}: additionalProperties`)
    if (type === 'string' && s.enum === undefined && s.maxLength === undefined) problems.push(`${path}: maxLength`)
    if (type === 'array' && s.maxItems === undefined) problems.push(`${path}: maxItems`)
    if ((type === 'integer' || type === 'number') && !path.includes('/then/') && (s.minimum === undefined || s.maximum === undefined)) problems.push(`${path}: range`)
    if (s.properties && typeof s.properties === 'object') {
      for (const [k, v] of Object.entries(s.properties)) {
        if (typeof v === 'object' && !(v as Schema).description && !/\/(if|then|else|anyOf)\b/.test(path)) problems.push(`${path}/properties/${k}: description`)
      }
    }
    for (const [k, v] of Object.entries(s)) if (k !== 'enum' && k !== 'const') visit(v, `${path}/${k}`, false)
  }
  for (const name of REQUEST_SCHEMAS) {
    const schema = getSchema(name)!
    visit(schema, name, true)
    if (name === 'mla-request' || name === 'repatriation-request') t.equal(schema.unevaluatedProperties, false, `${name} is closed`)
  }
  t.same(problems, [])
})

t.test('src/types/requests.ts is generated from the current schemas', async (t) => {
  const generator = new URL('../../scripts/gen-types.mjs', import.meta.url).href
  const { generate } = (await import(generator)) as { generate: () => Promise<string> }
  const current = readFileSync(new URL('../../src/types/requests.ts', import.meta.url), 'utf8')
  t.ok((await generate()) === current, 'run `node scripts/gen-types.mjs` after changing a schema')
})
