// The audit log's hash chain (src/domain/audit-chain.ts), on hand-built chains:
// an intact chain verifies with its count and head; each kind of tampering is
// detected and names the first entry that does not fit.
import t from 'tap'
import { ChainVerifier, chainHash, genesisHash, type ChainEntry, type VerificationResult } from '../../src/domain/audit-chain.js'
import { canonicalJson } from '../../src/domain/canonical-json.js'

/** A chain of n entries as the commit scripts write it: seq 1..n, each hash over the previous one. */
function buildChain (n: number): ChainEntry[] {
  const entries: ChainEntry[] = []
  let previous = genesisHash
  for (let seq = 1; seq <= n; seq++) {
    const body = canonicalJson({
      type: seq === 1 ? 'request.submitted' : 'request.acknowledged',
      at: new Date(Date.UTC(2026, 10, 1, 9, 0, seq)).toISOString(),
      requestId: `0193a000-0000-7000-8000-${String(seq).padStart(12, '0')}`,
      requestType: 'mla',
      sender: 'TR-MOJ',
      recipient: 'DE-BFJ',
      actor: { authority: 'TR-MOJ', subject: 'clerk@TR-MOJ' },
      data: { n: seq }
    })
    const hash = chainHash(previous, seq, body)
    entries.push({ id: `${1764579600000 + seq}-0`, seq, hash, body })
    previous = hash
  }
  return entries
}

/** Feeds the entries as AuditLog.verify does: stop at the first fault, look one entry ahead, then the tip. */
function verify (entries: ChainEntry[], tip?: { seq: number, hash: string }): VerificationResult {
  const verifier = new ChainVerifier()
  for (let i = 0; i < entries.length; i++) {
    verifier.feed(entries[i])
    if (verifier.failed) {
      verifier.refine(entries[i + 1])
      return verifier.finish(undefined)
    }
  }
  return verifier.finish(tip)
}

const tipOf = (entries: ChainEntry[]): { seq: number, hash: string } => ({ seq: entries[entries.length - 1].seq, hash: entries[entries.length - 1].hash })

t.test('an intact chain verifies, with the number of entries and the head', async (t) => {
  const chain = buildChain(12)
  t.same(verify(chain, tipOf(chain)), { ok: true, checked: 12, tipSeq: 12, tipHash: chain[11].hash })
  t.same(verify(chain), { ok: true, checked: 12, tipSeq: 12, tipHash: chain[11].hash }, 'without a recorded tip too')
})

t.test('an empty log verifies when nothing was appended', async (t) => {
  t.same(verify([], { seq: 0, hash: '' }), { ok: true, checked: 0, tipSeq: 0, tipHash: genesisHash })
})

t.test('the chain hash binds the previous hash, the position and the body', async (t) => {
  const body = '{"a":1}'
  const h = chainHash(genesisHash, 1, body)
  t.match(h, /^[0-9a-f]{64}$/, 'a SHA-256 in hex')
  t.not(chainHash(genesisHash, 2, body), h, 'another position')
  t.not(chainHash(genesisHash, 1, '{"a":2}'), h, 'another body')
  t.not(chainHash(h, 1, body), h, 'another predecessor')
  t.equal(chainHash(genesisHash, 1, body), h, 'deterministic')
})

t.test('a changed body: altered, naming that entry', async (t) => {
  const chain = buildChain(10)
  const tampered = chain.map((entry) => ({ ...entry }))
  tampered[4].body = tampered[4].body.replace('"TR-MOJ","subject"', '"FR-BEPI","subject"')
  t.not(tampered[4].body, chain[4].body, 'the body was changed')
  t.match(verify(tampered, tipOf(chain)), { ok: false, fault: 'altered', entryId: chain[4].id, seq: 5, checked: 4 })
})

t.test('a changed first or last entry is caught too', async (t) => {
  const chain = buildChain(6)
  const first = chain.map((entry, i) => (i === 0 ? { ...entry, body: entry.body.replace('"n":1', '"n":100') } : entry))
  t.match(verify(first, tipOf(chain)), { ok: false, fault: 'altered', entryId: chain[0].id, seq: 1, checked: 0 })
  const last = chain.map((entry, i) => (i === 5 ? { ...entry, body: entry.body.replace('"n":6', '"n":600') } : entry))
  t.match(verify(last, tipOf(chain)), { ok: false, fault: 'altered', entryId: chain[5].id, seq: 6, checked: 5 })
})

t.test('a changed hash: altered, naming that entry', async (t) => {
  const chain = buildChain(8)
  const tampered = chain.map((entry, i) => (i === 2 ? { ...entry, hash: chainHash(genesisHash, 3, entry.body) } : entry))
  t.match(verify(tampered, tipOf(chain)), { ok: false, fault: 'altered', entryId: chain[2].id, seq: 3 })
})

t.test('a changed body whose own hash was recomputed still breaks the chain at the next entry', async (t) => {
  const chain = buildChain(8)
  const tampered = chain.map((entry) => ({ ...entry }))
  tampered[3].body = tampered[3].body.replace('"n":4', '"n":44')
  tampered[3].hash = chainHash(chain[2].hash, 4, tampered[3].body)
  t.match(verify(tampered, tipOf(chain)), { ok: false, fault: 'altered', entryId: chain[4].id, seq: 5, checked: 4 },
    'the forger would have to rewrite every later entry and the tip')
})

t.test('an entry removed: removed, the fault at the entry after the gap', async (t) => {
  const chain = buildChain(10)
  const tampered = chain.filter((_entry, i) => i !== 3)
  const result = verify(tampered, tipOf(chain))
  t.match(result, { ok: false, fault: 'removed', entryId: chain[4].id, seq: 5, checked: 3 })
  t.match((result as { detail: string }).detail, /4 was expected/, 'the detail says which seq is missing')
})

t.test('several entries removed, or the first one', async (t) => {
  const chain = buildChain(10)
  t.match(verify(chain.filter((_entry, i) => i < 2 || i > 5), tipOf(chain)), { ok: false, fault: 'removed', entryId: chain[6].id, seq: 7, checked: 2 })
  t.match(verify(chain.slice(1), tipOf(chain)), { ok: false, fault: 'removed', entryId: chain[1].id, seq: 2, checked: 0 })
})

t.test('two adjacent entries swapped: reordered, naming the first entry out of place', async (t) => {
  const chain = buildChain(10)
  const swapped = [...chain]
  ;[swapped[5], swapped[6]] = [swapped[6], swapped[5]]
  const result = verify(swapped, tipOf(chain))
  t.match(result, { ok: false, fault: 'reordered', entryId: chain[6].id, seq: 7, checked: 5 })

  // Without the look-ahead (refine) it is indistinguishable from a removal at that point.
  const verifier = new ChainVerifier()
  for (const entry of swapped) verifier.feed(entry)
  t.match(verifier.finish(undefined), { fault: 'removed', entryId: chain[6].id }, 'refine is what tells a swap from a gap')
})

t.test('the last two entries swapped', async (t) => {
  const chain = buildChain(5)
  const swapped = [chain[0], chain[1], chain[2], chain[4], chain[3]]
  t.match(verify(swapped, tipOf(chain)), { ok: false, fault: 'reordered', entryId: chain[4].id, seq: 5, checked: 3 })
})

t.test('the same ids with their contents swapped (how a stream can be reordered) is reordered too', async (t) => {
  // A Redis stream's ids only grow, so a swap keeps the ids in place and exchanges the fields.
  const chain = buildChain(10)
  const swapped = chain.map((entry) => ({ ...entry }))
  const a = chain[2]
  const b = chain[3]
  swapped[2] = { id: a.id, seq: b.seq, hash: b.hash, body: b.body }
  swapped[3] = { id: b.id, seq: a.seq, hash: a.hash, body: a.body }
  t.match(verify(swapped, tipOf(chain)), { ok: false, fault: 'reordered', entryId: a.id, seq: 4, checked: 2 })
})

t.test('an entry repeated is out of place', async (t) => {
  const chain = buildChain(6)
  const repeated = [chain[0], chain[1], chain[2], chain[2], chain[3], chain[4], chain[5]]
  t.match(verify(repeated, tipOf(chain)), { ok: false, fault: 'reordered', seq: 3, checked: 3 })
})

t.test('the tail cut off: the entries left verify, the recorded tip says entries are missing', async (t) => {
  const chain = buildChain(10)
  const result = verify(chain.slice(0, 7), tipOf(chain))
  t.match(result, { ok: false, fault: 'truncated', entryId: null, seq: 8, checked: 7 })
  t.match((result as { detail: string }).detail, /ends at seq 7 but 10/)
  t.match(verify(chain.slice(0, 9), tipOf(chain)), { ok: false, fault: 'truncated', seq: 10, checked: 9 }, 'one entry is enough')
  t.match(verify([], tipOf(chain)), { ok: false, fault: 'truncated', seq: 1, checked: 0 }, 'the whole log gone')
})

t.test('a tip that is not the head of the chain is caught', async (t) => {
  const chain = buildChain(6)
  // The last entry replaced by a well-formed forgery: its hash fits its predecessor, not the recorded tip.
  const forged = chain.map((entry) => ({ ...entry }))
  forged[5].body = forged[5].body.replace('"n":6', '"n":66')
  forged[5].hash = chainHash(chain[4].hash, 6, forged[5].body)
  t.match(verify(forged, tipOf(chain)), { ok: false, fault: 'truncated' })
  t.match(verify(chain, { seq: 6, hash: genesisHash }), { ok: false }, 'nor does a chain whose head differs from the tip')
})

t.test('the verifier stops at the first fault', async (t) => {
  const chain = buildChain(10)
  const tampered = chain.map((entry) => ({ ...entry }))
  tampered[2].body += ' '
  tampered[7].body += ' '
  const verifier = new ChainVerifier()
  for (const entry of tampered) verifier.feed(entry)
  t.match(verifier.finish(tipOf(chain)), { fault: 'altered', entryId: chain[2].id, checked: 2 }, 'the first, not the last')
})
