import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairSync } from 'node:crypto'
import {
  loadGatewayConfig,
  parseGatewayConfig,
  findAgreement,
  authorityById,
  directoryOf,
  demoConfigPath,
  GatewayDirectory,
  ConfigError
} from '../../src/config/gateway-config.js'
import type { Agreement, GatewayConfig } from '../../src/domain/types.js'
import { isValidDuration } from '../../src/domain/duration.js'

const dir = mkdtempSync(join(tmpdir(), 'rogatory-config-test-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
function writeConfig (data: unknown): string {
  const file = join(dir, `config-${++n}.json`)
  writeFileSync(file, typeof data === 'string' ? data : JSON.stringify(data, null, 2))
  return file
}

const demoPath = demoConfigPath()
const demoJson = (): any => JSON.parse(readFileSync(demoPath, 'utf8'))

/** Load `data` from a temp file expecting a ConfigError; return its message. */
function failure (t: Test, data: unknown): string {
  const file = writeConfig(data)
  try {
    loadGatewayConfig(file)
  } catch (err) {
    t.type(err, ConfigError)
    const msg = (err as Error).message
    t.ok(msg.startsWith(`GATEWAY_CONFIG ${file} is invalid:\n  `), 'names the file, one problem per indented line')
    return msg
  }
  t.fail('expected a ConfigError')
  return ''
}

const ecJwk = (curve = 'P-256'): Record<string, unknown> =>
  generateKeyPairSync('ec', { namedCurve: curve }).publicKey.export({ format: 'jwk' }) as Record<string, unknown>
const rsaJwk = (bits = 2048): Record<string, unknown> =>
  generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'jwk' }) as Record<string, unknown>

t.test('the demo config loads', async t => {
  const c = loadGatewayConfig(demoPath)
  t.same(c.authorities.map(a => a.id), ['TR-MOJ', 'TR-PMM', 'DE-BFJ', 'FR-BEPI', 'NL-AIRS', 'EU-OVERSIGHT'])
  t.same(c.authorities.filter(a => a.oversight === true).map(a => a.id), ['EU-OVERSIGHT'], 'one oversight body')
  for (const a of c.authorities) {
    t.equal(a.keys.length, 1, `${a.id} has one key`)
    t.equal(a.keys[0].alg, 'ES256')
    t.match(a.keys[0].kid, /^[a-z]{2}-[a-z]+-2026-01$/)
    t.notOk('d' in a.keys[0].publicKeyJwk, 'public key only')
    t.equal(a.webhook, undefined, 'pull only')
  }
  t.equal(c.agreements.length, 9)
  for (const g of c.agreements) {
    t.equal(g.reminderAtFraction, 0.8)
    for (const f of ['acknowledgeWithin', 'respondWithin', 'extensionMax', 'custodyLeadTime'] as const) {
      if (g[f] !== undefined) t.ok(isValidDuration(g[f]), `${g.id}.${f}`)
    }
  }
  const coe = findAgreement(c, 'NL-AIRS', 'TR-MOJ', 'mla')
  t.match(coe, { legalBasis: 'coe-1959-convention', acknowledgeWithin: 'P10D', respondWithin: 'P90D', extensionMax: 'P30D', onSilence: 'stays_overdue' })
  const eio = findAgreement(c, 'FR-BEPI', 'DE-BFJ', 'mla')
  t.match(eio, { legalBasis: 'eio-directive-2014-41', acknowledgeWithin: 'P7D', respondWithin: 'P30D', extensionMax: 'P30D', onSilence: 'stays_overdue' })
  const readm = findAgreement(c, 'DE-BFJ', 'TR-PMM', 'repatriation')
  t.match(readm, {
    legalBasis: 'eu-readmission-agreement', acknowledgeWithin: 'P5D', respondWithin: 'P25D', extensionMax: 'P35D', onSilence: 'deemed_accepted', custodyLeadTime: 'P3D'
  })
  t.equal(findAgreement(c, 'TR-PMM', 'TR-MOJ', 'mla'), undefined, 'no agreement between TR-PMM and TR-MOJ')
  t.equal(findAgreement(c, 'TR-MOJ', 'DE-BFJ', 'repatriation'), undefined)
  t.equal(findAgreement(c, 'TR-PMM', 'DE-BFJ', 'mla'), undefined)
  t.equal(authorityById(c, 'FR-BEPI')?.country, 'FR')
  t.equal(authorityById(c, 'XX-NONE'), undefined)
})

t.test('unreadable file and bad JSON name the path', async t => {
  const missing = join(dir, 'does-not-exist.json')
  t.throws(() => loadGatewayConfig(missing), { name: 'ConfigError', message: new RegExp(`^GATEWAY_CONFIG ${missing} cannot be read: .*ENOENT`) })
  const bad = writeConfig('{ "authorities": [ ')
  t.throws(() => loadGatewayConfig(bad), { name: 'ConfigError', message: new RegExp(`^GATEWAY_CONFIG ${bad} is not valid JSON: `) })
  t.throws(() => loadGatewayConfig(dir), { name: 'ConfigError', message: /cannot be read: .*EISDIR/ })
  const bom = writeConfig('\ufeff' + readFileSync(demoPath, 'utf8'))
  t.equal(loadGatewayConfig(bom).agreements.length, 9, 'a UTF-8 BOM is tolerated')
})

t.test('defaults are filled in', async t => {
  const d = demoJson()
  for (const g of d.agreements) delete g.reminderAtFraction
  d.authorities[0].webhook = { url: 'https://tr-moj.example/hooks/rogatory', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }
  d.authorities[1].webhook = { url: 'http://localhost:9999/h', secret: 'whsec_c2VjcmV0', retryScheduleSeconds: [1, 2], timeoutMs: 500 }
  const c = loadGatewayConfig(writeConfig(d))
  t.ok(c.agreements.every(g => g.reminderAtFraction === 0.8))
  t.same(c.authorities[0].webhook, {
    url: 'https://tr-moj.example/hooks/rogatory',
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    retryScheduleSeconds: [0, 5, 30, 120, 600, 3600, 21600],
    timeoutMs: 10000
  })
  t.same(c.authorities[1].webhook?.retryScheduleSeconds, [1, 2], 'explicit values kept')
  t.equal(c.authorities[1].webhook?.timeoutMs, 500)
})

t.test('schema errors name the pointer', async t => {
  const d = demoJson()
  d.agreements[2].respondWithin = 'P2X'
  const msg = failure(t, d)
  t.match(msg, /\n {2}\/agreements\/2\/respondWithin: "P2X" is not an ISO 8601 duration$/)
  t.equal(msg.split('\n').length, 2, 'reported once, not by schema and re-check both')

  const e = demoJson()
  e.authorities[0].id = 'tr-moj'
  e.authorities[1].country = 'Turkey'
  e.authorities[2].keys[0].alg = 'HS256'
  e.authorities[3].webhook = { url: 'ftp://bepi.example/', secret: 'plain' }
  e.authorities[4].keys = []
  e.agreements[0].parties = ['*', 'TR-MOJ']
  e.agreements[1].parties = ['TR-MOJ', 'everyone']
  e.agreements[2].onSilence = 'ignored'
  e.agreements[3].reminderAtFraction = 1
  e.agreements[4].extensionMax = '-P1D'
  e.agreements[5].custodyLeadTime = 'PT'
  delete e.agreements[6].title
  e.agreements[7].colour = 'blue'
  e.agreements[8].webhook = 1
  const all = failure(t, e)
  for (const line of [
    /\/authorities\/0\/id: "tr-moj" is not an authority id/,
    /\/authorities\/1\/country: "Turkey"/,
    /\/authorities\/2\/keys\/0\/alg: "HS256" is not one of "ES256", "RS256"/,
    /\/authorities\/3\/webhook\/url: "ftp:\/\/bepi.example\/" is not an http\(s\) URL/,
    /\/authorities\/3\/webhook\/secret: "plain" does not match/,
    /\/authorities\/4\/keys: must NOT have fewer than 1 items/,
    /\/agreements\/0\/parties\/0: "\*" may only stand in second place/,
    /\/agreements\/1\/parties\/1: "everyone" is neither an authority id nor "\*"/,
    /\/agreements\/2\/onSilence: "ignored" is not one of/,
    /\/agreements\/3\/reminderAtFraction: must be < 1/,
    /\/agreements\/4\/extensionMax: "-P1D" is not an ISO 8601 duration/,
    /\/agreements\/5\/custodyLeadTime: "PT" is not an ISO 8601 duration/,
    /\/agreements\/6: missing required property "title"/,
    /\/agreements\/7: unknown property "colour"/,
    /\/agreements\/8: unknown property "webhook"/
  ]) t.match(all, line)
})

t.test('malformed shapes do not confuse the semantic checks', async t => {
  const d = demoJson()
  d.agreements[7].parties = ['TR-PMM', 'NL-AIRS', 'DE-BFJ']
  d.authorities[3].webhook = { url: 'https://', secret: 'whsec_abcdef' }
  d.agreements.push(42)
  const msg = failure(t, d)
  t.match(msg, /\/agreements\/7\/parties: must NOT have more than 2 items/)
  t.match(msg, /\/authorities\/3\/webhook\/url: "https:\/\/" is not a usable http\(s\) URL/)
  t.match(msg, /\/agreements\/9: must be object \(got 42\)/)
  t.notMatch(msg, /another agreement/, 'no duplicate guessed from a malformed pair')
  t.equal(msg.split('\n').length, 4)
})

t.test('duplicate authority ids', async t => {
  const d = demoJson()
  d.authorities.push({ ...d.authorities[2], name: 'Another BfJ' })
  t.match(failure(t, d), /\/authorities\/6\/id: duplicate authority id "DE-BFJ" \(first at \/authorities\/2\)/)
})

t.test('duplicate kids within an authority (but the same kid across authorities is fine)', async t => {
  const d = demoJson()
  d.authorities[0].keys.push({ kid: 'tr-moj-2026-01', alg: 'ES256', publicKeyJwk: ecJwk() })
  t.match(failure(t, d), /\/authorities\/0\/keys\/1\/kid: duplicate kid "tr-moj-2026-01" in authority TR-MOJ \(first at \/authorities\/0\/keys\/0\)/)
  const ok = demoJson()
  ok.authorities[1].keys[0].kid = 'tr-moj-2026-01'
  t.equal(loadGatewayConfig(writeConfig(ok)).authorities.length, 6)
})

t.test('agreements naming unknown authorities', async t => {
  const d = demoJson()
  d.agreements[4].parties = ['DE-BFJ', 'BE-FPS']
  d.agreements[5].parties = ['XX-NONE', '*']
  const msg = failure(t, d)
  t.match(msg, /\/agreements\/4\/parties\/1: unknown authority "BE-FPS"/)
  t.match(msg, /\/agreements\/5\/parties\/0: unknown authority "XX-NONE"/)
})

t.test('a party paired with itself', async t => {
  const d = demoJson()
  d.agreements[3].parties = ['DE-BFJ', 'DE-BFJ']
  t.match(failure(t, d), /\/agreements\/3\/parties: authority "DE-BFJ" is paired with itself/)
})

t.test('two agreements for the same unordered pair, type and legal basis', async t => {
  const d = demoJson()
  d.agreements.push({ ...d.agreements[3], id: 'eio-copy', parties: ['FR-BEPI', 'DE-BFJ'] })
  t.match(failure(t, d), /\/agreements\/9: another agreement for FR-BEPI and DE-BFJ, mla, eio-directive-2014-41 exists at \/agreements\/3/)

  const w = demoJson()
  w.agreements.push({ ...w.agreements[0], id: 'w1', parties: ['DE-BFJ', '*'] })
  w.agreements.push({ ...w.agreements[0], id: 'w2', parties: ['DE-BFJ', '*'] })
  t.match(failure(t, w), /\/agreements\/10: another agreement for DE-BFJ and every partner, mla, coe-1959-convention exists at \/agreements\/9/)

  const ok = demoJson()
  ok.agreements.push({ ...ok.agreements[3], id: 'bilateral', legalBasis: 'bilateral-mla-treaty' })
  ok.agreements.push({ ...ok.agreements[3], id: 'w', parties: ['DE-BFJ', '*'] })
  t.equal(loadGatewayConfig(writeConfig(ok)).agreements.length, 11, 'another basis, or a wildcard, is not a duplicate')

  const ids = demoJson()
  ids.agreements[1].id = ids.agreements[0].id
  t.match(failure(t, ids), /\/agreements\/1\/id: duplicate agreement id "coe1959-tr-moj-de-bfj" \(first at \/agreements\/0\)/)
})

t.test('durations re-checked: zero clocks', async t => {
  const d = demoJson()
  d.agreements[0].respondWithin = 'PT0S'
  d.agreements[1].acknowledgeWithin = 'P0D'
  d.agreements[2].extensionMax = 'P0D' // a zero extension is odd but harmless: allowed
  const msg = failure(t, d)
  t.match(msg, /\/agreements\/0\/respondWithin: "PT0S" is zero/)
  t.match(msg, /\/agreements\/1\/acknowledgeWithin: "P0D" is zero/)
  t.notMatch(msg, /agreements\/2/)
  t.equal(parseGatewayConfig({ ...demoJson(), agreements: [{ ...demoJson().agreements[0], respondWithin: 'PT1.5S', acknowledgeWithin: 'PT1S' }] }).agreements[0].respondWithin, 'PT1.5S')
})

t.test('public keys must be importable and match their alg', async t => {
  const withKey = (key: Record<string, unknown>): any => {
    const d = demoJson()
    d.authorities[2].keys[0] = { kid: 'de-bfj-2026-01', ...key }
    return d
  }
  const priv = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' })
  let msg = failure(t, withKey({ alg: 'ES256', publicKeyJwk: priv }))
  t.match(msg, /\/authorities\/2\/keys\/0\/publicKeyJwk: contains private key material \("d"\); only the public key belongs/)
  t.equal(msg.split('\n').length, 2, 'not also reported as an unknown property')

  msg = failure(t, withKey({ alg: 'ES256', publicKeyJwk: ecJwk('P-384') }))
  t.match(msg, /\/authorities\/2\/keys\/0\/publicKeyJwk: ES256 needs an EC P-256 key, got ec secp384r1/)

  msg = failure(t, withKey({ alg: 'ES256', publicKeyJwk: rsaJwk() }))
  t.match(msg, /\/authorities\/2\/keys\/0\/publicKeyJwk: ES256 needs an EC P-256 key, got rsa/)

  msg = failure(t, withKey({ alg: 'RS256', publicKeyJwk: ecJwk() }))
  t.match(msg, /\/authorities\/2\/keys\/0\/publicKeyJwk: RS256 needs an RSA key, got ec/)

  msg = failure(t, withKey({ alg: 'RS256', publicKeyJwk: rsaJwk(1024) }))
  t.match(msg, /RS256 key of 1024 bits is too short/)

  msg = failure(t, withKey({ alg: 'ES256', publicKeyJwk: { ...ecJwk(), x: 'AAAA' } }))
  t.match(msg, /\/authorities\/2\/keys\/0\/publicKeyJwk: not an importable public JWK/)

  msg = failure(t, withKey({ alg: 'ES256', publicKeyJwk: { ...ecJwk(), alg: 'RS256', kid: 'other' } }))
  t.match(msg, /\/authorities\/2\/keys\/0\/publicKeyJwk\/alg: "RS256" differs from the key's alg "ES256"/)
  t.match(msg, /\/authorities\/2\/keys\/0\/publicKeyJwk\/kid: "other" differs from the key's kid "de-bfj-2026-01"/)

  msg = failure(t, withKey({ alg: 'ES256', publicKeyJwk: { kty: 'EC', crv: 'P-256', x: ecJwk().x } }))
  t.match(msg, /\/authorities\/2\/keys\/0\/publicKeyJwk: missing required property "y"/)

  const rsa = loadGatewayConfig(writeConfig(withKey({ alg: 'RS256', publicKeyJwk: { ...rsaJwk(), alg: 'RS256', use: 'sig' } })))
  t.equal(rsa.authorities[2].keys[0].alg, 'RS256', 'a good RSA key loads')
})

t.test('every problem is listed at once', async t => {
  const d = demoJson()
  d.authorities.push({ ...d.authorities[0] })
  d.agreements[0].respondWithin = 'P1.5D'
  d.agreements[1].parties = ['TR-MOJ', 'TR-MOJ']
  d.agreements[2].parties = ['TR-MOJ', 'ZZ-NOPE']
  const file = writeConfig(d)
  try {
    loadGatewayConfig(file)
    t.fail('should throw')
  } catch (err) {
    t.type(err, ConfigError)
    const e = err as ConfigError
    t.equal(e.path, file)
    t.equal(e.problems.length, 4)
    t.same(e.message.split('\n').slice(1).map(l => l.trim()).sort(), [...e.problems].sort())
  }
})

t.test('findAgreement: exact pair over wildcard, legal basis, file order', async t => {
  const base = loadGatewayConfig(demoPath)
  const ag = (id: string, parties: [string, string], legalBasis: Agreement['legalBasis'], requestType: Agreement['requestType'] = 'mla'): Agreement => ({
    id, parties, requestType, legalBasis, title: id, respondWithin: 'P10D', onSilence: 'stays_overdue', reminderAtFraction: 0.8
  })
  const config: GatewayConfig = {
    authorities: base.authorities,
    agreements: [
      ag('wild-de-coe', ['DE-BFJ', '*'], 'coe-1959-convention'),
      ag('wild-tr-bilateral', ['TR-MOJ', '*'], 'bilateral-mla-treaty'),
      ag('de-tr-coe', ['TR-MOJ', 'DE-BFJ'], 'coe-1959-convention'),
      ag('de-tr-bilateral', ['DE-BFJ', 'TR-MOJ'], 'bilateral-mla-treaty'),
      ag('wild-nl-coe', ['NL-AIRS', '*'], 'coe-1959-convention'),
      ag('wild-fr-bilateral', ['FR-BEPI', '*'], 'bilateral-mla-treaty'),
      ag('wild-fr-repat', ['FR-BEPI', '*'], 'eu-readmission-agreement', 'repatriation')
    ]
  }
  parseGatewayConfig(structuredClone(config)) // the fixture itself is a valid config

  t.equal(findAgreement(config, 'DE-BFJ', 'TR-MOJ', 'mla')?.id, 'de-tr-coe', 'exact wins over an earlier wildcard; first exact in file order')
  t.equal(findAgreement(config, 'TR-MOJ', 'DE-BFJ', 'mla')?.id, 'de-tr-coe', 'either direction')
  t.equal(findAgreement(config, 'TR-MOJ', 'DE-BFJ', 'mla', 'bilateral-mla-treaty')?.id, 'de-tr-bilateral', 'legal basis honoured')
  t.equal(findAgreement(config, 'TR-MOJ', 'DE-BFJ', 'mla', 'eio-directive-2014-41'), undefined, 'no agreement on that basis')
  t.equal(findAgreement(config, 'DE-BFJ', 'FR-BEPI', 'mla')?.id, 'wild-de-coe', 'wildcards from both sides: first in file order')
  t.equal(findAgreement(config, 'FR-BEPI', 'DE-BFJ', 'mla')?.id, 'wild-de-coe', 'regardless of direction')
  t.equal(findAgreement(config, 'FR-BEPI', 'DE-BFJ', 'mla', 'bilateral-mla-treaty')?.id, 'wild-fr-bilateral', 'basis filters wildcards too')
  t.equal(findAgreement(config, 'NL-AIRS', 'TR-PMM', 'mla')?.id, 'wild-nl-coe', 'wildcard of the sender')
  t.equal(findAgreement(config, 'TR-PMM', 'NL-AIRS', 'mla')?.id, 'wild-nl-coe', 'wildcard of the recipient')
  t.equal(findAgreement(config, 'TR-PMM', 'FR-BEPI', 'repatriation')?.id, 'wild-fr-repat', 'request type is part of the key')
  t.equal(findAgreement(config, 'TR-PMM', 'DE-BFJ', 'repatriation'), undefined)
  t.equal(findAgreement(config, 'DE-BFJ', 'DE-BFJ', 'mla'), undefined, 'never with oneself, even under a wildcard')

  const dirA = directoryOf(config)
  t.equal(directoryOf(config), dirA, 'directory built once per config')
  t.same(dirA.agreementsFor('TR-MOJ', 'DE-BFJ', 'mla').map(a => a.id),
    ['de-tr-coe', 'de-tr-bilateral', 'wild-de-coe', 'wild-tr-bilateral'], 'all candidates in precedence order')
  t.equal(dirA.agreementById('wild-fr-repat')?.requestType, 'repatriation')
  const standalone = new GatewayDirectory(base)
  t.equal(standalone.key('TR-MOJ', 'tr-moj-2026-01')?.alg, 'ES256')
  t.equal(standalone.key('TR-MOJ', 'de-bfj-2026-01'), undefined, 'kids are per authority')
  t.equal(standalone.authority('NL-AIRS')?.name.includes('Rechtshulp'), true)
})
