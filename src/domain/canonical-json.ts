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
  for (const key of keys) {
    const item = object[key]
    if (item === undefined) continue
    if (out.length > 1) out += ','
    out += JSON.stringify(key) + ':' + canonicalJson(item)
  }
  return out + '}'
}
