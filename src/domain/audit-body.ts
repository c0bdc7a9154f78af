// How an audit event's canonical JSON is kept in the stream: the same text with
// its most frequent fragments (the event's own keys, quoted, with their colon)
// each replaced by one control character. Canonical JSON never holds a raw
// control character (JSON escapes U+0000–U+001F inside strings, and the
// canonical form has no whitespace), so the exchange is exact both ways, and
// entries written before this form (plain JSON) read back unchanged.
// The chain hashes the canonical text, never the stored form.
//
// The table is part of the stored format: never change an entry or its place.
// Where fragments overlap, the earlier in the table wins, so one that contains
// another comes first.

const fragments = [
  // The gateway's own actor first: it holds fragments that follow.
  '{"actor":{"authority":"gateway","subject":"rogatory"},"at":"',
  '{"actor":{"authority":"',
  '","subject":"',
  '"},"at":"',
  '","data":{',
  '"acknowledgementDue":',
  '"agreementId":',
  '"handlingCode":',
  '"legalBasis":',
  '"priority":',
  '"pulledEarlierBy":',
  '"responseDue":',
  '"status":',
  '},"recipient":"',
  '","requestId":"',
  '","requestType":"',
  '","sender":"',
  '","type":"request.',
  '"from":',
  '"to":',
  '"attempts":',
  '"authority":',
  '"dueAt":',
  '"onSilence":',
  '"submissionEventId":',
  '"failedEventId":',
  '"failedEvent":',
  '"lastStatus":',
  '"estimatedAnswerDate":',
  '"outcome":',
  '"grounds":'
] as const

// U+0001 … U+001F: 31 codes, one per fragment.
const firstCode = 1
if (fragments.length > 31) throw new Error('the audit body table holds at most 31 fragments')

const controlCharacter = /[\u0000-\u001f]/
const storedCode = /[\u0001-\u001f]/g
// One pass over the text: at each place, the first fragment of the table that matches there.
const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const anyFragment = new RegExp(fragments.map(escapeRegExp).join('|'), 'g')
const codeOfFragment = new Map<string, string>(fragments.map((fragment, i) => [fragment, String.fromCharCode(firstCode + i)]))

/** The stored form of an event's canonical JSON. */
export function compactAuditBody (canonical: string): string {
  if (controlCharacter.test(canonical)) throw new Error('an audit body holds a raw control character: it is not canonical JSON')
  return canonical.replace(anyFragment, (fragment) => codeOfFragment.get(fragment) as string)
}

/** The canonical JSON an entry was stored from (plain JSON passes through unchanged). */
export function expandAuditBody (stored: string): string {
  return stored.replace(storedCode, (code) => fragments[code.charCodeAt(0) - firstCode] ?? code)
}
