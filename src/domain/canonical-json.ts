// Object keys repeat from body to body (they are the schema's): their quoted
// form is kept, up to a bound, rather than JSON.stringify'd each time.
const quotedKeys = new Map<string, string>()
const maxQuotedKeys = 10_000

function quotedKey (key: string): string {
  let quoted = quotedKeys.get(key)
  if (quoted === undefined) {
    quoted = JSON.stringify(key) + ':'
    if (quotedKeys.size < maxQuotedKeys) quotedKeys.set(key, quoted)
  }
  return quoted
}

/** JSON with object keys sorted at every depth: one text per value, so hashes are stable. */
export function canonicalJson (value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  // Loops and string concatenation: this runs on every submission's whole body.
  if (Array.isArray(value)) {
    let out = '['
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ','
      const item: unknown = value[i]
      out += item === undefined ? 'null' : canonicalJson(item)
    }
    return out + ']'
  }
  const object = value as Record<string, unknown>
  // The default sort orders by UTF-16 code units, as `a < b` does.
  const keys = Object.keys(object).sort()
  let out = '{'
  for (let i = 0; i < keys.length; i++) {
    const item = object[keys[i]]
    if (item === undefined) continue
    if (out.length > 1) out += ','
    out += quotedKey(keys[i]) + (typeof item === 'string' ? JSON.stringify(item) : canonicalJson(item))
  }
  return out + '}'
}
