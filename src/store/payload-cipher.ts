import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const keyLengthBytes = 32
const ivLengthBytes = 12
const tagLengthBytes = 16
const formatVersion = 'v1'

/**
 * AES-256-GCM for request payloads at rest. The request id is bound as
 * associated data, so a ciphertext moved onto another record fails to open.
 */
export class PayloadCipher {
  readonly #key: Buffer

  constructor (key: Buffer) {
    if (key.length !== keyLengthBytes) throw new Error(`payload key must be ${keyLengthBytes} bytes`)
    this.#key = key
  }

  seal (requestId: string, plaintext: string): string {
    const iv = randomBytes(ivLengthBytes)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    cipher.setAAD(Buffer.from(requestId))
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return `${formatVersion}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`
  }

  open (requestId: string, sealed: string): string {
    const [version, encoded] = sealed.split(':', 2)
    if (version !== formatVersion || encoded === undefined) throw new Error('unknown payload format')
    const raw = Buffer.from(encoded, 'base64')
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
