import { sparseHistogramMaxBuckets } from '../domain/turnaround.js'

// Lua scripts for every multi-key change, so that each state change is one atomic
// Redis step: record, indexes and the audit event commit together or not at all.

/**
 * SHA-256 of one 64-byte block (a message of at most 55 bytes), with Redis's
 * LuaBitOp. The audit chain is extended inside the same script that commits a
 * change, so its link must be computed here: reading the chain head and
 * appending from Node would be a read-modify-write across round trips. The link
 * is kept to a single block on purpose; interpreted Lua spends ~90 µs a block.
 * Returns the digest as hex and as 32 raw bytes.
 */
const sha256Lua = `
local band, bor, bxor, bnot, rshift, lshift, ror, tobit, tohex =
  bit.band, bit.bor, bit.bxor, bit.bnot, bit.rshift, bit.lshift, bit.ror, bit.tobit, bit.tohex
local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2 }
local function sha256(msg)
  local len = #msg
  if len > 55 then return redis.error_reply('sha256: one block only') end
  local bitLen = len * 8
  msg = msg .. '\\128' .. string.rep('\\0', (55 - len) % 64)
    .. string.char(0, 0, 0, 0,
      band(rshift(bitLen, 24), 255), band(rshift(bitLen, 16), 255),
      band(rshift(bitLen, 8), 255), band(bitLen, 255))
  local H = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do
      local a, b, c, d = string.byte(msg, chunk + i * 4, chunk + i * 4 + 3)
      w[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
    end
    for i = 16, 63 do
      local v15, v2 = w[i - 15], w[i - 2]
      local s0 = bxor(ror(v15, 7), ror(v15, 18), rshift(v15, 3))
      local s1 = bxor(ror(v2, 17), ror(v2, 19), rshift(v2, 10))
      w[i] = tobit(w[i - 16] + s0 + w[i - 7] + s1)
    end
    local a, b, c, d, e, f, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
    for i = 0, 63 do
      local S1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
      local ch = bxor(band(e, f), band(bnot(e), g))
      local t1 = tobit(h + S1 + ch + K[i + 1] + w[i])
      local S0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
      local maj = bxor(band(a, b), band(a, c), band(b, c))
      h = g; g = f; f = e; e = tobit(d + t1); d = c; c = b; b = a; a = tobit(t1 + S0 + maj)
    end
    H[1] = tobit(H[1] + a); H[2] = tobit(H[2] + b); H[3] = tobit(H[3] + c); H[4] = tobit(H[4] + d)
    H[5] = tobit(H[5] + e); H[6] = tobit(H[6] + f); H[7] = tobit(H[7] + g); H[8] = tobit(H[8] + h)
  end
  local hex, raw = {}, {}
  for i = 1, 8 do
    hex[i] = tohex(H[i], 8)
    raw[i] = string.char(band(rshift(H[i], 24), 255), band(rshift(H[i], 16), 255), band(rshift(H[i], 8), 255), band(H[i], 255))
  end
  return table.concat(hex), table.concat(raw)
end
`

/**
 * Appends one event to the audit stream and extends the hash chain:
 *   hash(n) = sha256(rawHash(n-1) ‖ sha256(body(n))[0..16) ‖ n as 7 bytes big-endian)
 * with hash(0) = 32 zero bytes. The body's digest is computed by the caller (the
 * body is canonical JSON, hashed natively) and passed as 16 raw bytes; the
 * previous hash is not repeated in the entry: it is the previous entry's.
 *
 * The caller may also pass the link it computed (natively) for the chain head
 * it expects: `expectedSeq`, `expectedPrev` (32 raw bytes) and the link as hex
 * and raw. It is used only if the head is exactly that one, which makes it the
 * very value computed here; otherwise the link is computed here (~90 µs).
 * Returns the stream id, the entry's seq and its hash (hex).
 */
const appendAuditLua = `
local function seqBytes(n)
  local out = {}
  for k = 6, 0, -1 do out[#out + 1] = string.char(math.floor(n / 256 ^ k) % 256) end
  return table.concat(out)
end
local function appendAudit(streamKey, tipKey, body, digest, expectedSeq, expectedPrev, givenHash, givenRaw)
  local tip = redis.call('HMGET', tipKey, 'seq', 'raw')
  local seq = tonumber(tip[1] or '0') + 1
  local prev = tip[2] or string.rep('\\0', 32)
  local hash, raw
  if expectedSeq ~= nil and tonumber(expectedSeq) == seq and expectedPrev == prev and #givenRaw == 32 and #givenHash == 64 then
    hash, raw = givenHash, givenRaw
  else
    hash, raw = sha256(prev .. digest .. seqBytes(seq))
  end
  local sid = redis.call('XADD', streamKey, '*', 'seq', seq, 'hash', hash, 'body', body)
  redis.call('HSET', tipKey, 'seq', seq, 'hash', hash, 'raw', raw)
  return sid, seq, hash
end
`

/**
 * Applies an AggregateDelta (see domain/turnaround.ts), passed as JSON, to the
 * block of each level that holds the submission day (domain/time-blocks.ts):
 *   agg:<level>:<index>:combos          set of the combos with requests submitted in the block
 *   agg:<level>:<index>:<combo>         hash of counters, max:<clock> (ms) and dense:<clock> (flag)
 *   agg:<level>:<index>:<combo>:h:<c>   sparse histogram: hash bucket → count
 *   agg:<level>:<index>:<combo>:hd:<c>  dense histogram: string of u32 big-endian counters, bucket i at #i
 * Redis calls per block: SADD on a submission; then HINCRBY per counter for a
 * change without durations, else HMGET + HSET of the counters hash and one call
 * per duration (BITFIELD, or HINCRBY plus HLEN when it opens a sparse bucket).
 */
export const applyAggregatesLua = `
local function toDenseHistogram(sparseKey, denseKey)
  local entries = redis.call('HGETALL', sparseKey)
  local args = { denseKey, 'OVERFLOW', 'FAIL' }
  for i = 1, #entries, 2 do
    args[#args + 1] = 'INCRBY'
    args[#args + 1] = 'u32'
    args[#args + 1] = '#' .. entries[i]
    args[#args + 1] = entries[i + 1]
  end
  redis.call('BITFIELD', unpack(args))
  redis.call('DEL', sparseKey)
end
local function applyAggregates(prefix, json)
  if json == '' then return end
  local delta = cjson.decode(json)
  local combo, incr, samples = delta.combo, delta.incr, delta.samples
  for _, block in ipairs(delta.blocks) do
    local blockKey = prefix .. 'agg:' .. block
    local key = blockKey .. ':' .. combo
    if delta.submission then redis.call('SADD', blockKey .. ':combos', combo) end
    if #samples == 0 then
      for _, pair in ipairs(incr) do redis.call('HINCRBY', key, pair[1], pair[2]) end
    else
      -- One read and one write of the counters hash: counters, then each clock's max and dense flag.
      local fields = {}
      for _, pair in ipairs(incr) do fields[#fields + 1] = pair[1] end
      for _, sample in ipairs(samples) do
        fields[#fields + 1] = 'max:' .. sample[1]
        fields[#fields + 1] = 'dense:' .. sample[1]
      end
      local current = redis.call('HMGET', key, unpack(fields))
      local updates = {}
      for i, pair in ipairs(incr) do
        updates[#updates + 1] = pair[1]
        updates[#updates + 1] = (tonumber(current[i]) or 0) + pair[2]
      end
      local at = #incr
      for _, sample in ipairs(samples) do
        local clock, bucket, ms = sample[1], sample[2], sample[3]
        local max, dense = tonumber(current[at + 1]), current[at + 2]
        at = at + 2
        if max == nil or ms > max then
          updates[#updates + 1] = 'max:' .. clock
          updates[#updates + 1] = ms
        end
        local sparseKey, denseKey = key .. ':h:' .. clock, key .. ':hd:' .. clock
        if dense then
          redis.call('BITFIELD', denseKey, 'OVERFLOW', 'FAIL', 'INCRBY', 'u32', '#' .. bucket, 1)
        elseif redis.call('HINCRBY', sparseKey, bucket, 1) == 1 and redis.call('HLEN', sparseKey) > ${sparseHistogramMaxBuckets} then
          toDenseHistogram(sparseKey, denseKey)
          updates[#updates + 1] = 'dense:' .. clock
          updates[#updates + 1] = 1
        end
      end
      if #updates > 0 then redis.call('HSET', key, unpack(updates)) end
    end
  end
  local liveKey = prefix .. 'live:' .. combo
  for _, pair in ipairs(delta.live) do redis.call('HINCRBY', liveKey, pair[1], pair[2]) end
  if #delta.live > 0 then redis.call('SADD', prefix .. 'live:combos', combo) end
end
`

/**
 * Stores a new request (its record hash and, beside it, its sealed payload)
 * with its sender-reference claim, idempotency key, inbox/outbox entries and its
 * request.submitted event. A claim (sender reference, idempotency key) holds
 * the id of the request that made it; its body hash is the record's. Records
 * and claims written by earlier versions (hex body hashes, claims holding
 * 'bodyHash|id') are still read: hence the hash in both forms.
 * KEYS: request, payload, senderRefs, idempotency, inbox, outbox, auditStream, auditTip, deadlines
 * ARGV: id, senderReference, bodyHash (base64url), idempotencyTtlSeconds, hasIdempotencyKey ('1'|'0'),
 *       boxScore, auditBody, auditDigest, aggregateDeltaJson, keyPrefix, sealedPayload, bodyHash (hex),
 *       expectedSeq ('' = none), expectedPrev, linkHex, linkRaw (see appendAudit),
 *       type, sender, recipient, meta, submittedAt, ackDue ('' = none), respDue
 *       (the record's fields, named here rather than sent with each submission),
 *       nextDeadlineAt ('' = none)
 * Returns {outcome, id, chain head seq, chain head hash} with outcome 'created' (then also the
 * stream id), 'replay', 'idempotency_conflict' or 'reference_conflict'.
 */
export const submitRequestLua = sha256Lua + appendAuditLua + applyAggregatesLua + `
local id, ref, bodyHash, ttl, hasKey, score, prefix, bodyHashHex = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[10], ARGV[12]
-- The id a claim names, and whether that request's body is this one.
local function claimOf(value)
  local oldHash, oldId = string.match(value, '^([^|]*)|(.*)$')
  if oldId then return oldId, oldHash == bodyHashHex end
  local hash = redis.call('HGET', prefix .. 'req:' .. value, 'bodyHash')
  return value, hash == bodyHash or hash == bodyHashHex
end
local function answer(outcome, claimId)
  local tip = redis.call('HMGET', KEYS[8], 'seq', 'hash')
  return { outcome, claimId, tip[1] or '0', tip[2] or '' }
end
if hasKey == '1' then
  local previous = redis.call('GET', KEYS[4])
  if previous then
    local previousId, same = claimOf(previous)
    if same then return answer('replay', previousId) end
    return answer('idempotency_conflict', previousId)
  end
end
local claimed = redis.call('HGET', KEYS[3], ref)
if claimed then
  local claimedId, same = claimOf(claimed)
  if same then
    if hasKey == '1' then redis.call('SET', KEYS[4], claimedId, 'EX', ttl) end
    return answer('replay', claimedId)
  end
  return answer('reference_conflict', claimedId)
end
local expectedSeq = ARGV[13]
if expectedSeq == '' then expectedSeq = nil end
local sid, seq, hash = appendAudit(KEYS[7], KEYS[8], ARGV[7], ARGV[8], expectedSeq, ARGV[14], ARGV[15], ARGV[16])
redis.call('HSET', KEYS[1], 'events', sid, 'type', ARGV[17], 'sender', ARGV[18], 'recipient', ARGV[19],
  'status', 'submitted', 'version', 1, 'meta', ARGV[20], 'submittedAt', ARGV[21], 'ackDue', ARGV[22],
  'respDue', ARGV[23], 'respDueOriginal', ARGV[23], 'bodyHash', bodyHash)
redis.call('SET', KEYS[2], ARGV[11])
redis.call('HSET', KEYS[3], ref, id)
if hasKey == '1' then redis.call('SET', KEYS[4], id, 'EX', ttl) end
redis.call('ZADD', KEYS[5], score, id)
redis.call('ZADD', KEYS[6], score, id)
if ARGV[24] ~= '' then redis.call('ZADD', KEYS[9], ARGV[24], id) end
applyAggregates(prefix, ARGV[9])
return { 'created', id, tostring(seq), hash, sid }
`

/**
 * Commits a change to an existing request if its version is still the one the
 * caller decided on (compare-and-set), with its events and index moves.
 * KEYS: request, inbox, outbox, inboxClosed, outboxClosed, auditStream, auditTip, deadlines
 * ARGV: expectedVersion ('' = no check, used for pure disclosure records),
 *       boxAction ('keep' | 'rescore' | 'close'), boxScore, aggregateDeltaJson ('' = none), keyPrefix,
 *       nextDeadlineAt ('' = leave as is, '-' = none left, else ms), eventCount,
 *       expectedSeq ('' = none), expectedPrev, linkHex, linkRaw (the first event's link, see appendAudit),
 *       then per event: body, digest, listed ('1' = part of the request's history),
 *       then field, value pairs to set.
 * Returns {'ok', version, chain head seq, chain head hash, streamIds...} | {'missing', seq, hash}
 *       | {'stale', version, status, seq, hash}
 */
export const commitChangeLua = sha256Lua + appendAuditLua + applyAggregatesLua + `
local function head()
  local tip = redis.call('HMGET', KEYS[7], 'seq', 'hash')
  return tip[1] or '0', tip[2] or ''
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  local seq, hash = head()
  return { 'missing', seq, hash }
end
local current = redis.call('HMGET', KEYS[1], 'version', 'status', 'events')
local expected = ARGV[1]
if expected ~= '' and expected ~= current[1] then
  local seq, hash = head()
  return { 'stale', current[1], current[2], seq, hash }
end
local action, score = ARGV[2], ARGV[3]
local eventCount = tonumber(ARGV[7])
local expectedSeq = ARGV[8]
if expectedSeq == '' then expectedSeq = nil end
local id = string.match(KEYS[1], '([^:]+)$')
local listed = current[3] or ''
local streamIds = {}
-- The chain head after this change: the last event appended (read from the tip only if none).
local headSeq, headHash
local i = 12
for n = 1, eventCount do
  local sid
  if n == 1 then
    sid, headSeq, headHash = appendAudit(KEYS[6], KEYS[7], ARGV[i], ARGV[i + 1], expectedSeq, ARGV[9], ARGV[10], ARGV[11])
  else
    sid, headSeq, headHash = appendAudit(KEYS[6], KEYS[7], ARGV[i], ARGV[i + 1], nil, '', '', '')
  end
  if ARGV[i + 2] == '1' then
    if listed == '' then listed = sid else listed = listed .. ',' .. sid end
  end
  streamIds[#streamIds + 1] = sid
  i = i + 3
end
local version = current[1]
if i <= #ARGV or listed ~= (current[3] or '') then
  local fields = { 'events', listed }
  for j = i, #ARGV do fields[#fields + 1] = ARGV[j] end
  version = tostring(tonumber(current[1]) + 1)
  fields[#fields + 1] = 'version'
  fields[#fields + 1] = version
  redis.call('HSET', KEYS[1], unpack(fields))
end
if action == 'rescore' then
  redis.call('ZADD', KEYS[2], 'XX', score, id)
  redis.call('ZADD', KEYS[3], 'XX', score, id)
elseif action == 'close' then
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZADD', KEYS[4], score, id)
  redis.call('ZADD', KEYS[5], score, id)
end
if ARGV[6] == '-' then
  redis.call('ZREM', KEYS[8], id)
elseif ARGV[6] ~= '' then
  redis.call('ZADD', KEYS[8], ARGV[6], id)
end
applyAggregates(ARGV[5], ARGV[4])
local seq, hash
if headSeq then seq, hash = tostring(headSeq), headHash else seq, hash = head() end
local result = { 'ok', version, seq, hash }
for _, sid in ipairs(streamIds) do result[#result + 1] = sid end
return result
`

/**
 * One page of a box, nearest deadline first, filtered on the record's own fields.
 * Scans at most maxScan entries per call so a rare filter cannot stall Redis;
 * the returned cursor lets the caller continue.
 * KEYS: box zset. ARGV: keyPrefix, minScore, afterId ('' = none), maxScore, limit, maxScan,
 *   status ('' = any), type, counterpartField ('sender'|'recipient'), counterpart, overdueOnly ('1'|'0')
 * Returns { lastScore, lastId, exhausted ('1'|'0'), id1, id2, ... }
 */
export const listBoxLua = `
local prefix, minScore, afterId, maxScore = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local limit, maxScan = tonumber(ARGV[5]), tonumber(ARGV[6])
local wantStatus, wantType, cpField, wantCp, overdueOnly = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local found, scanned = {}, 0
local lastScore, lastId = minScore, afterId
local offset = 0
local batch = math.min(math.max(limit * 2, 50), 500)
while #found < limit and scanned < maxScan do
  local entries = redis.call('ZRANGE', KEYS[1], minScore, maxScore, 'BYSCORE', 'LIMIT', offset, batch, 'WITHSCORES')
  if #entries == 0 then return { lastScore, lastId, '1', unpack(found) } end
  offset = offset + #entries / 2
  for j = 1, #entries, 2 do
    local id, score = entries[j], entries[j + 1]
    if not (score == minScore and afterId ~= '' and id <= afterId) then
      scanned = scanned + 1
      local f = redis.call('HMGET', prefix .. 'req:' .. id, 'status', 'type', cpField, 'ackOverdue', 'respOverdue')
      local ok = (wantStatus == '' or f[1] == wantStatus) and (wantType == '' or f[2] == wantType)
        and (wantCp == '' or f[3] == wantCp)
        and (overdueOnly ~= '1' or f[4] == '1' or f[5] == '1')
      if ok then found[#found + 1] = id end
      lastScore, lastId = score, id
      if #found >= limit or scanned >= maxScan then return { lastScore, lastId, '0', unpack(found) } end
    end
  end
end
return { lastScore, lastId, '0', unpack(found) }
`

/**
 * Takes the requests whose next deadline has come: up to `limit` of them, each
 * pushed to `leaseUntil` so that no other worker takes it meanwhile, and taken
 * again after that if the worker died before its commit moved it.
 * KEYS: deadlines. ARGV: now, leaseUntil, limit. Returns id, score, id, score...
 */
export const claimDueDeadlinesLua = `
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]), 'WITHSCORES')
-- One ZADD per 500 entries (score, member pairs), well within Lua's argument limit.
local leased = {}
for j = 1, #due, 2 do
  leased[#leased + 1] = ARGV[2]
  leased[#leased + 1] = due[j]
  if #leased == 1000 or j + 1 == #due then
    redis.call('ZADD', KEYS[1], unpack(leased))
    leased = {}
  end
end
return due
`

/**
 * Sets a request's next deadline from a record read at `version`, unless the
 * record changed since (its commit set the entry then, from newer facts).
 * KEYS: request, deadlines. ARGV: id, version, nextDeadlineAt ('-' = none left), onlyIfMissing ('1'|'0').
 * Returns 1 when written, 0 when the record moved on, is gone, or (onlyIfMissing) has an entry.
 */
export const rescheduleDeadlineLua = `
local version = redis.call('HGET', KEYS[1], 'version')
if version ~= ARGV[2] then
  if not version then redis.call('ZREM', KEYS[2], ARGV[1]) end
  return 0
end
if ARGV[4] == '1' and redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
if ARGV[3] == '-' then redis.call('ZREM', KEYS[2], ARGV[1]) else redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1]) end
return 1
`
