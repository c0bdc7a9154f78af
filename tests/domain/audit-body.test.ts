// The stored form of an audit event: the canonical JSON with its frequent
// fragments each replaced by one control character. It must give back exactly
// the canonical text the chain hashed, for any event, and read plain JSON
// (entries written before it) unchanged.
import t from 'tap'
import fc from 'fast-check'
import { compactAuditBody, expandAuditBody } from '../../src/domain/audit-body.js'
import { canonicalJson } from '../../src/domain/canonical-json.js'
import { auditEvent } from '../../src/services/request-service.js'
import { gatewayActor } from '../../src/domain/events.js'

const submitted = canonicalJson(auditEvent(
  { id: '019ad8a2-7f3c-7a1b-9c2d-3e4f5a6b7c8d', type: 'mla', sender: 'TR-MOJ', recipient: 'DE-BFJ' },
  'request.submitted', { authority: 'TR-MOJ', subject: 'clerk@tr-moj' }, Date.UTC(2026, 11, 2, 9, 30), {
    status: 'submitted',
    agreementId: 'tr-de-1959',
    legalBasis: '1959-convention',
    priority: 'normal',
    handlingCode: 'restricted',
    acknowledgementDue: '2026-12-09T23:59:59.999Z',
    responseDue: '2027-03-02T23:59:59.999Z',
    pulledEarlierBy: null
  }))

t.test('a submission is stored in a bit over half its canonical length, and read back exactly', async (t) => {
  const stored = compactAuditBody(submitted)
  t.ok(stored.length < submitted.length * 0.6, `${stored.length} of ${submitted.length} characters`)
  t.equal(expandAuditBody(stored), submitted)
  t.notMatch(stored, /"actor"|"requestId"|"acknowledgementDue"/, 'the keys are gone from the stored form')
  t.match(stored, /TR-MOJ.*clerk@tr-moj.*019ad8a2-7f3c-7a1b-9c2d-3e4f5a6b7c8d/s, 'every value is still there, in order')
})

t.test('an event of the gateway itself', async (t) => {
  const overdue = canonicalJson(auditEvent({ id: 'r1', type: 'repatriation', sender: 'NL-AIRS', recipient: 'TR-PMM' }, 'request.response_overdue', gatewayActor, 0, { status: 'acknowledged', dueAt: '1970-01-02T00:00:00.000Z' }))
  const stored = compactAuditBody(overdue)
  t.equal(expandAuditBody(stored), overdue)
  t.notMatch(stored, /rogatory/, 'the gateway actor is one character')
})

t.test('plain JSON (entries written before the stored form) reads back unchanged', async (t) => {
  t.equal(expandAuditBody(submitted), submitted)
  t.equal(expandAuditBody(''), '')
})

t.test('text that is not canonical JSON is refused rather than stored ambiguously', async (t) => {
  t.throws(() => compactAuditBody('{"a":"line\nbreak"}'), /control character/)
  t.throws(() => compactAuditBody('\u0001'), /control character/)
})

t.test('any canonical JSON, including values that mimic the fragments, round-trips', async (t) => {
  const fragmentLike = fc.constantFrom('"status":', '","sender":"', '{"actor":{"authority":"', 'gateway', 'rogatory', '"},"at":"', 'request.', '"to":', '\u0001', '\u001f', '\\', '"')
  const text = fc.array(fc.oneof(fc.string(), fragmentLike), { maxLength: 6 }).map((parts) => parts.join(''))
  const value = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, text, fc.integer(), fc.constant(null), fc.boolean(), fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(fc.oneof(text, fragmentLike), tie('node'), { maxKeys: 5 }))
  })).node
  const runs = 2000
  fc.assert(fc.property(value, (v) => {
    const canonical = canonicalJson(v)
    return expandAuditBody(compactAuditBody(canonical)) === canonical
  }), { numRuns: runs })
  t.pass(`${runs} generated values round-trip`)
})
