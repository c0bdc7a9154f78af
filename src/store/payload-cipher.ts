import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const keyLengthBytes = 32
const ivLengthBytes = 12
const tagLengthBytes = 16
/** Text form (hash fields): "v1:" + base64(iv ‖ tag ‖ ciphertext). */
const textVersion = 'v1'
/** Binary form (a key of its own): "v2:" ‖ iv ‖ tag ‖ ciphertext, a quarter smaller and no base64 to compute. */
const binaryPrefix = Buffer.from('v2:')
/** Random bytes drawn in blocks: one system call per 341 IVs instead of one per IV. */
const ivPoolBytes = ivLengthBytes * 341

/**
 * AES-256-GCM for request payloads at rest. The request id is bound as
 * associated data, so a ciphertext moved onto another record fails to open.
 */
export class PayloadCipher {
  readonly #key: Buffer
  readonly #ivPool = Buffer.alloc(ivPoolBytes)
  #ivOffset = ivPoolBytes

  constructor (key: Buffer) {
    if (key.length !== keyLengthBytes) throw new Error(`payload key must be ${keyLengthBytes} bytes`)
    this.#key = key
  }

  /** A fresh random IV (a copy: the pool is refilled in place). */
  #iv (): Buffer {
    if (this.#ivOffset >= ivPoolBytes) {
      randomFillSync(this.#ivPool)
      this.#ivOffset = 0
    }
    const iv = Buffer.from(this.#ivPool.subarray(this.#ivOffset, this.#ivOffset + ivLengthBytes))
    this.#ivOffset += ivLengthBytes
    return iv
  }

  /** iv ‖ tag ‖ ciphertext, after `prefix`. */
  #seal (requestId: string, plaintext: string, prefix: Buffer): Buffer {
    const iv = this.#iv()
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    cipher.setAAD(Buffer.from(requestId))
    const body = cipher.update(plaintext, 'utf8')
    const last = cipher.final()
    return Buffer.concat([prefix, iv, cipher.getAuthTag(), body, last])
  }

  /** The text form, for values kept in a record's hash fields. */
  seal (requestId: string, plaintext: string): string {
    return `${textVersion}:${this.#seal(requestId, plaintext, Buffer.alloc(0)).toString('base64')}`
  }

  /** The binary form, for a payload kept in a key of its own. */
  sealBinary (requestId: string, plaintext: string): Buffer {
    return this.#seal(requestId, plaintext, binaryPrefix)
  }

  /** Opens either form. */
  open (requestId: string, sealed: string | Buffer): string {
    let raw: Buffer
    if (typeof sealed === 'string') {
      const [version, encoded] = sealed.split(':', 2)
      if (version !== textVersion || encoded === undefined) throw new Error('unknown payload format')
      raw = Buffer.from(encoded, 'base64')
    } else {
      if (!sealed.subarray(0, binaryPrefix.length).equals(binaryPrefix)) throw new Error('unknown payload format')
      raw = sealed.subarray(binaryPrefix.length)
    }
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, ivLengthBytes))
    decipher.setAAD(Buffer.from(requestId))
    decipher.setAuthTag(raw.subarray(ivLengthBytes, ivLengthBytes + tagLengthBytes))
    return Buffer.concat([decipher.update(raw.subarray(ivLengthBytes + tagLengthBytes)), decipher.final()]).toString('utf8')
  }
}

/** The key from PAYLOAD_KEY, or a key file kept beside the data (created on first start). */
export function loadPayloadKey (dataDir: string, base64?: string): Buffer {
  if (base64 !== undefined) return Buffer.from(base64, 'base64')
  const path = join(dataDir, 'payload.key')
  if (existsSync(path)) return Buffer.from(readFileSync(path, 'utf8').trim(), 'base64')
  mkdirSync(dataDir, { recursive: true })
  const key = randomBytes(keyLengthBytes)
  writeFileSync(path, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' })
  return key
}
