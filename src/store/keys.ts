// Key layout. Every key shares one prefix; a Redis Cluster deployment would put
// a hash tag in it (e.g. "rog:{gw}:") so that the Lua scripts stay single-slot.

export interface Keys {
  prefix: string
  request: (id: string) => string
  /** A request's sealed payload, a string key beside its record (kept apart so that the record stays a compact listpack). */
  payload: (id: string) => string
  senderReferences: (authority: string) => string
  idempotency: (authority: string, key: string) => string
  box: (box: 'inbox' | 'outbox', authority: string, closed?: boolean) => string
  auditStream: string
  auditTip: string
  /** Sorted set: one entry per request with a clock running, scored by when it next needs the deadline worker. */
  deadlines: string
}

export function createKeys (prefix = 'rog:'): Keys {
  return {
    prefix,
    request: (id) => `${prefix}req:${id}`,
    // Short: a key name of up to 47 bytes takes a 48-byte allocation, one more takes 64.
    payload: (id) => `${prefix}pl:${id}`,
    senderReferences: (authority) => `${prefix}sref:${authority}`,
    idempotency: (authority, key) => `${prefix}idem:${authority}:${key}`,
    box: (box, authority, closed = false) => `${prefix}box:${box === 'inbox' ? 'in' : 'out'}:${authority}${closed ? ':closed' : ''}`,
    auditStream: `${prefix}audit`,
    auditTip: `${prefix}audit:tip`,
    deadlines: `${prefix}deadlines`
  }
}
