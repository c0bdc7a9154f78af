import { hash } from 'node:crypto'

// The audit log's hash chain, as the Lua commit builds it:
//   hash(n) = sha256(hash(n-1) ‖ sha256(body(n))[0..16) ‖ n as 7 bytes big-endian),
//   hash(0) = 32 zero bytes; hashes are shown in hex.
// The link fits one SHA-256 block so that Redis's interpreted Lua computes it in
// one pass; 128 bits of the body's digest keep a second preimage out of reach.
// Verification recomputes it entry by entry and names the first entry that
// does not fit: altered (its body or hash changed), removed (a gap in the
// sequence) or reordered (a sequence number out of place).

export const genesisHash = '0'.repeat(64)

const digestBytesInLink = 16

/** The part of a body's SHA-256 that enters the chain link. */
export function bodyDigest (body: string): Buffer {
  return hash('sha256', body, 'buffer').subarray(0, digestBytesInLink)
}

/** One link: sha256(previous raw hash ‖ body digest ‖ seq as 7 bytes big-endian), raw. */
export function linkHash (previousRaw: Buffer, digest: Buffer, seq: number): Buffer {
  // One-shot hashing: crypto.hash skips the Hash object (this runs for every event).
  const input = Buffer.allocUnsafe(previousRaw.length + digest.length + 7)
  previousRaw.copy(input, 0)
  digest.copy(input, previousRaw.length)
  input.writeUIntBE(0, previousRaw.length + digest.length, 1)
  input.writeUIntBE(seq, previousRaw.length + digest.length + 1, 6)
  return hash('sha256', input, 'buffer')
}

export function chainHash (previousHash: string, seq: number, body: string): string {
  return linkHash(Buffer.from(previousHash, 'hex'), bodyDigest(body), seq).toString('hex')
}

export interface ChainEntry {
  id: string
  seq: number
  hash: string
  body: string
}

export type ChainFault = 'altered' | 'removed' | 'reordered' | 'truncated'

export type VerificationResult =
  | { ok: true, checked: number, tipSeq: number, tipHash: string }
  | { ok: false, checked: number, fault: ChainFault, entryId: string | null, seq: number, detail: string }

/** Feeds entries in stream order; stops at the first fault. */
export class ChainVerifier {
  #previousHash = genesisHash
  #expectedSeq = 1
  #checked = 0
  #fault: Extract<VerificationResult, { ok: false }> | undefined

  get failed (): boolean {
    return this.#fault !== undefined
  }

  feed (entry: ChainEntry): void {
    if (this.#fault !== undefined) return
    if (entry.seq !== this.#expectedSeq) {
      const fault: ChainFault = entry.seq > this.#expectedSeq ? 'removed' : 'reordered'
      this.#fault = {
        ok: false,
        checked: this.#checked,
        fault,
        entryId: entry.id,
        seq: entry.seq,
        detail: fault === 'removed'
          ? `entry ${entry.id} has seq ${entry.seq} where ${this.#expectedSeq} was expected: entries are missing or out of order before it`
          : `entry ${entry.id} has seq ${entry.seq}, already passed (expected ${this.#expectedSeq}): entries were reordered`
      }
      return
    }
    if (chainHash(this.#previousHash, entry.seq, entry.body) !== entry.hash) {
      this.#fault = {
        ok: false,
        checked: this.#checked,
        fault: 'altered',
        entryId: entry.id,
        seq: entry.seq,
        detail: `entry ${entry.id} (seq ${entry.seq}) does not match its hash: its content or the chain before it was altered`
      }
      return
    }
    this.#previousHash = entry.hash
    this.#expectedSeq++
    this.#checked++
  }

  /** `tip` is the chain head the store recorded with the last append. */
  finish (tip: { seq: number, hash: string } | undefined): VerificationResult {
    if (this.#fault !== undefined) return this.#fault
    const lastSeq = this.#expectedSeq - 1
    if (tip !== undefined && (tip.seq !== lastSeq || tip.hash !== (lastSeq === 0 ? tip.hash : this.#previousHash))) {
      return {
        ok: false,
        checked: this.#checked,
        fault: 'truncated',
        entryId: null,
        seq: lastSeq + 1,
        detail: `the log ends at seq ${lastSeq} but ${tip.seq} entries were appended: the latest entries were removed`
      }
    }
    return { ok: true, checked: this.#checked, tipSeq: lastSeq, tipHash: this.#previousHash }
  }

  /** After a 'removed' fault, the next entry tells whether it was really a swap. */
  refine (next: ChainEntry | undefined): void {
    const fault = this.#fault
    if (fault === undefined || fault.fault !== 'removed' || next === undefined) return
    if (next.seq === this.#expectedSeq) {
      fault.fault = 'reordered'
      fault.detail = `entry ${fault.entryId} (seq ${fault.seq}) comes before seq ${next.seq}: entries were reordered`
    }
  }
}
