import type { Redis } from 'ioredis';
import type { PredictKeySet } from '../keys.js';
import { PREDICT_BOUNDS } from './predict.js';

/**
 * The predict code's pure helpers, made once per script call rather than once per sample (the
 * body script runs a body's samples through one predict part function).
 */
export const PREDICT_HELPERS_LUA = `
local HOUR = 3600000
local function f(x) return string.format('%.17g', x) end
-- Integers as %d: formatting a double with %.17g costs more than most of the commands here.
local function int(x)
  if x == math.floor(x) and x < 2 ^ 53 and x > -2 ^ 53 then return string.format('%d', x) end
  return f(x)
end
-- A rule's settings (the same text for each of its samples) read once per call: a strtod costs
-- about what a small command does. Only for them: their distinct texts in one call are few (at
-- most the call's arguments), where each sample's time and value are its own.
local settings = {}
local function setting(text)
  local x = settings[text]
  if not x then
    x = text + 0
    settings[text] = x
  end
  return x
end
-- An instance's sums field ('\\0' .. instance), made once per instance and call.
local sumsFields = {}
local function sumsField(who)
  local f = sumsFields[who]
  if not f then
    f = '\\0' .. who
    sumsFields[who] = f
  end
  return f
end
-- A double as two integers m, e with x = m * 2^e exactly (|m| < 2^53): Redis replies a Lua
-- number as an integer, which costs nearly nothing, where %.17g text costs ~6 k instructions.
-- +0 is 0, 0; -0, a number not finite, one so small that 2^e would underflow in the reader
-- (never a fit's, but exact all the same) and one whose m is within 64 of 2^53 are %.17g
-- text, e 0: ioredis reads an integer reply digit by digit in doubles, (n * 10 + byte) - 48,
-- which rounds there. INTS: the integers every reader gets exactly.
local HUGE, frexp, INTS = math.huge, math.frexp, 9007199254740928
local function dbl(x)
  if x ~= 0 then
    local m, e = frexp(x)
    m = m * 9007199254740992
    -- NaN fails x < HUGE.
    if e > -1000 and x < HUGE and x > -HUGE and m < INTS and m > -INTS then return m, e - 53 end
  elseif 1 / x > 0 then
    return 0, 0
  end
  return f(x), 0
end
-- An answer {code, samples, slope, eta, fitted, limit text}: code 1 few, 2 below without an eta
-- (flat), 3 below, 4 reaches. Its reply (see the header) and its stored form.
local STATUS = {'few', 'below', 'below', 'reaches'}
local function answerReply(code, n, slope, eta, fitted, limit)
  if code == 1 then return {'few', n, '', limit} end
  local e = ''
  if code > 2 then
    -- eta is an integer (math.floor), 0 or more: a Lua number replies it exactly below INTS.
    if eta < INTS then e = eta else e = f(eta) end
  end
  local sm, se = dbl(slope)
  local fm, fe = dbl(fitted)
  return {STATUS[code], n, e, limit, sm, se, fm, fe}
end
local function packAnswer(code, n, slope, eta, fitted, limit)
  return struct.pack('<Bddddc0', code, n, slope, eta, fitted, limit)
end
-- A reply's double back (its m, e or text): exact, as the reader's m * 2^e.
local ldexp = math.ldexp
local function undbl(m, e)
  if type(m) == 'number' then return ldexp(m, e) end
  return tonumber(m)
end
-- A reply table packed: the same bytes as packAnswer of the numbers it was made from.
local function packReply(a)
  local status = a[1]
  if status == 'few' then return packAnswer(1, a[2], 0, 0, 0, a[4]) end
  local code, eta = 4, a[3]
  if status == 'below' then
    if eta == '' then code, eta = 2, 0 else code = 3 end
  end
  if type(eta) ~= 'number' then eta = tonumber(eta) end
  return packAnswer(code, a[2], undbl(a[5], a[6]), eta, undbl(a[7], a[8]), a[4])
end
-- A stored answer: packed (code 1-4 first), or, as written before, the JSON of its reply's text
-- (status, then %d or %.17g numbers, '' for none, the limit as sent), which reads back exactly.
local function readStoredAnswer(v)
  if string.byte(v) == 91 then
    local a = cjson.decode(v)
    local code = 1
    if a[1] == 'reaches' then code = 4 elseif a[1] == 'below' then if a[4] == '' then code = 2 else code = 3 end end
    return answerReply(code, tonumber(a[2]) or 0, tonumber(a[3]) or 0, tonumber(a[4]) or 0, tonumber(a[5]) or 0, a[6])
  end
  local code, n, slope, eta, fitted, rest = struct.unpack('<Bdddd', v)
  return answerReply(code, n, slope, eta, fitted, string.sub(v, rest))
end
-- A sample's sums by instance and the instances it changed: two tables the call's samples share,
-- emptied as each sample ends.
local sumsSeen, sumsTouched = {}, {}
local function unpackSums(raw)
  if not raw then return false end
  local n, o, sx, sy, sxx, sxy = struct.unpack('<dddddd', raw)
  return {n, o, sx, sy, sxx, sxy}
end
local function add(s, x0, y0)
  local x = (x0 - s[2]) / HOUR
  s[1] = s[1] + 1
  s[3] = s[3] + x
  s[4] = s[4] + y0
  s[5] = s[5] + x * x
  s[6] = s[6] + x * y0
end
`;

/** An instance's sums as a sample sees them: read once each (sums: instance -> sums or false). */
const PREDICT_SUMS_OF_LUA = `local function sumsOf(key, sums, who)
  if sums[who] == nil then sums[who] = readSums(stateGet1(key, sumsField(who))) end
  return sums[who]
end
`;

/**
 * The prediction in Redis: one memory sample of one dyno instance added to that instance's
 * series and the least-squares line refitted, atomic across replicas. `MemoryPredictStore`
 * (predictMemory.ts) mirrors it for `mallet test` / `mallet replay`, and a property test keeps
 * the two equal (test/rules/predictEquivalence.test.ts), as for thresholds.
 */
const PREDICT_HEADER_LUA = `--[[
  predict: a sample joins its rule+app+target's samples; the least-squares line through the
  samples of its instance (of the target's newest ARGV[8] samples within ARGV[6] of the newest)
  is asked when it reaches the limit. Per target, not per instance, so a flood of made-up
  instance ids cannot make keys: the target budget bounds the targets, ARGV[8] samples each.
  Times are the lines' own timestamps (ms); real-time expiry only collects garbage.

  Bounded work per sample: the fit is kept as running sums per instance, so a sample reads its
  own instance's sums and only the samples that slide out of the window or past the cap (usually
  none or one), never the whole series. The sums are rebuilt from the instance's samples (one
  read of the target's set, at most ARGV[8] points) when a sample comes more than ARGV[6] after
  the instance's time origin: the origin moves to it, so the times stay within ARGV[6] of it
  (well conditioned), and no sum carries rounding from more than about two windows of additions
  and subtractions. An instance whose samples have all slid out loses its sums; its next sample
  starts afresh.

  KEYS[1] points   sorted set: '<instance>/<event id>' .. '\\0' .. struct.pack('<ddI4', value MB,
                   time ms, #instance) -> sample time (ms). The value, the time and where the
                   instance ends ride in the member, so the few points a sample reads need no
                   lookup and no WITHSCORES. \\0 sorts below every other byte and ids hold none,
                   so the set's order is that of (time, '<instance>/<event id>'); the id is the
                   member less its last 21 bytes.
  KEYS[2] state    hash: '<instance>/<event id>' -> the answer that sample got (struct.pack('<Bdddd',
                   code, samples, slope, eta, fitted) .. the limit as sent, code 1 few, 2 below
                   without an eta, 3 below, 4 reaches; written before as the JSON of its reply's
                   text, '[...', which is still read); a sample
                   has an answer exactly while it is in the set (its call stores it, trimming
                   deletes it), so "no answer" also says "not in the set". '\\0' .. instance ->
                   struct.pack('<dddddd', n, origin ms, sum x, sum y, sum xx, sum xy) over the
                   instance's samples in the set, x = (time - origin) / 1 h, y = MB; '\\0' ->
                   struct.pack('<dd', the set's newest time, its number of members); '\\0\\0'
                   -> the last answer, for mallet explain ('\\1' .. instance .. '\\0' .. time as
                   sent .. '\\0' .. its packed answer; before, JSON [instance, time, answer]). Ids
                   and instances hold no \\0, so the fields cannot meet. At most ARGV[8]
                   answers, ARGV[8] sums and the two.
  (Keys changed format twice, from a values hash and then to running sums, when the last answer
  also moved into the state hash; old keys are simply not read again and expire: a series
  restarts after such an upgrade, as after \`over\` of silence. The answers' packing kept the
  keys: an answer or last answer in the JSON written before is read as it was meant, and the
  fields a sample rewrites are written packed; the sums, the newest time and the set did not
  change.)

  ARGV[1] id ('<instance>/<event id>')   ARGV[2] sample time (integer ms)   ARGV[3] value (MB)
  ARGV[4] limit (MB)   ARGV[5] within (ms)   ARGV[6] over (integer ms)   ARGV[7] min samples
  ARGV[8] max points   ARGV[9] instance

  A sample seen again (a logplex retry, another replica) gets the answer it got the first time
  and changes nothing: the threshold vote after it must not see a different verdict.

  Returns {status, samples, eta ms, limit MB as ARGV[4] was sent, slope m, slope e, fitted m,
  fitted e}: samples and eta as integers ('' for no eta; eta as %.17g text from 2^53), slope MB/h
  and fitted MB at the newest sample each as integers m, e with the double = m * 2^e exactly
  (m as %.17g text and e 0 for -0, a number not finite or below 2^-1000): Redis replies a Lua
  number as an integer, and %.17g text costs more than most commands here. status is
    'few'      fewer than ARGV[7] samples (the reply ends at the limit; eta '')
    'below'    the line does not reach the limit within ARGV[5] (eta '' when it rises less than
               ${PREDICT_BOUNDS.minSlopeMbPerHour} MB/h: flat)
    'reaches'  it does (eta 0 when the line is at or above the limit already)
  Samples whose times span (almost) nothing have no slope: 0 unless the spread n*sxx - sx*sx is
  more than ${PREDICT_BOUNDS.spreadFloor} of n*sxx, so rounding left in the sums cannot make a slope of times
  that are all equal.
]]
-- Standalone, a key's expiry is refreshed at once, the state hash is read and written at once
-- and the points set asked and changed at once (pointsAdd, pointsGone, pointsAll); the drain's
-- body script pastes PREDICT_BODY_LUA alone, with its own expireLater that refreshes each key
-- once when the call ends (a body's samples of one target ask for the same two keys' expiry each
-- time), its own state functions (PREDICT_STATE_LUA: fields kept as Lua values, each hash written
-- once when the call ends) and points functions (PREDICT_POINTS_LUA: each set changed once when
-- the call ends), so that a target's samples of one call are one pass over its keys.
local function expireLater(key, ms) redis.call('PEXPIRE', key, ms) end
local function stateGet3(key, a, b, c)
  local got = redis.call('HMGET', key, a, b, c)
  return got[1], got[2], got[3]
end
local function stateGet1(key, a) return redis.call('HGET', key, a) end
-- The state's fields as the hash holds them (the body script keeps those it wrote as Lua values).
local function readNewest(v) return struct.unpack('<dd', v) end
-- A sample's writes: its deletes, then its sets, in one HDEL and one HSET (stateWrite).
local stateSets, stateDels = {}, {}
local function stateSet(key, field, v)
  stateSets[#stateSets + 1] = field
  stateSets[#stateSets + 1] = v
end
local function stateDel(key, field) stateDels[#stateDels + 1] = field end
local function stateWrite(key)
  if #stateDels > 0 then redis.call('HDEL', key, unpack(stateDels)) end
  redis.call('HSET', key, unpack(stateSets))
end
local function stateNewest(key, newest, total) stateSet(key, '\\0', struct.pack('<dd', newest, total)) end
${PREDICT_HELPERS_LUA}
local readAnswer = readStoredAnswer
local function storedAnswer(code, n, slope, eta, fitted, limit, reply) return packAnswer(code, n, slope, eta, fitted, limit) end
local function stateLast(key, inst, at, stored) stateSet(key, '\\0\\0', '\\1' .. inst .. '\\0' .. at .. '\\0' .. stored) end
local function pointsAdd(key, state, score, member, after) return redis.call('ZADD', key, score, member) end
-- What slides out of the window (time <= cutoff) and then past the cap is a prefix of the set:
-- read just that, remove it by rank.
local function pointsGone(key, cutoff, total, maxPoints)
  local gone = redis.call('ZRANGEBYSCORE', key, '-inf', int(cutoff))
  local drop = #gone
  if total - drop > maxPoints then
    local capped = redis.call('ZRANGE', key, int(drop), int(total - maxPoints - 1))
    for i = 1, #capped do gone[drop + i] = capped[i] end
    drop = total - maxPoints
  end
  if drop > 0 then redis.call('ZREMRANGEBYRANK', key, '0', int(drop - 1)) end
  return gone, drop
end
local function pointsAll(key) return redis.call('ZRANGE', key, 0, -1) end
local readSums = unpackSums
local function packSums(w) return struct.pack('<dddddd', w[1], w[2], w[3], w[4], w[5], w[6]) end
local function ttlOf(over) return int(over + 60000) end
${PREDICT_SUMS_OF_LUA}`;

/**
 * The points sets as the body script's predict parts see them: a target's samples of one call
 * handled in one pass over its set rather than three or four commands each. A sample newer than
 * every point the set holds (the usual one: a dyno's samples come in time order) is not added at
 * once but queued (it sorts after all of them), and what slides out is taken off the front of
 * the set as read in growing slices (8, 16, ... up to 256 members, by rank: a call reads about
 * twice what its samples take off, plus 8, at most) and then of the queue, counted, not removed; when the call ends (flushPredictSets, before the state hashes) each set
 * loses its counted front in one ZREMRANGEBYRANK and gets its queue in one ZADD. Any other sample
 * (older than the newest, the first of a target without state) and a rebase, which reads the
 * whole set, first apply what is pending and then ask Redis as the standalone script does. So a
 * part sees the set the standalone script would have left, and its answer is the same.
 * The newest time (the state hash's '\0' field) bounds every score in the set, so a queued
 * member is never one the set holds; only after a call that failed part-way (see
 * PREDICT_STATE_LUA) can the set hold points the state does not count: the ZADD then adds fewer
 * than were queued, that call's later answers may count such a point twice (the standalone
 * script's count one short), and the count the call leaves in the state is the set's own (ZCARD).
 */
const PREDICT_POINTS_LUA = `
-- key -> {state key, slice (members from rank 'base'), whether Redis has no more after it,
-- members counted off the front, the queue (score, member, ...), the queue's first pair, next
-- slice's size, whether a ZADD added fewer than were queued}
local pointSets, pointSetKeys = {}, {}
local function pointSet(key, state)
  local m = pointSets[key]
  if not m then
    m = {state = state, slice = {}, base = 0, last = false, removed = 0, queue = {}, head = 1, size = 8, short = false}
    pointSets[key] = m
    pointSetKeys[#pointSetKeys + 1] = key
  end
  return m
end
-- The set as the parts so far left it: the front counted off removed, the queue added.
local function applyPoints(key, m)
  if m.removed > 0 then redis.call('ZREMRANGEBYRANK', key, '0', int(m.removed - 1)) end
  local q, from = m.queue, 2 * m.head - 1
  if from < #q then
    local added = 0
    -- In slices: unpack puts its results on Lua's stack.
    for i = from, #q, 2000 do added = added + redis.call('ZADD', key, unpack(q, i, math.min(#q, i + 1999))) end
    if added < (#q - from + 1) / 2 then m.short = true end
  end
  m.slice, m.base, m.last, m.removed, m.queue, m.head = {}, 0, false, 0, {}, 1
end
local function pointsAdd(key, state, score, member, after)
  local m = pointSet(key, state)
  if after then
    local q = m.queue
    q[#q + 1] = score
    q[#q + 1] = member
    return 1
  end
  applyPoints(key, m)
  return redis.call('ZADD', key, score, member)
end
-- The set's next point in order (the front not yet counted off), and whether Redis holds it (else the queue does).
local function nextPoint(key, m)
  if not m.last or m.removed - m.base < #m.slice then
    local i = m.removed - m.base + 1
    if i > #m.slice then
      local slice = redis.call('ZRANGE', key, int(m.removed), int(m.removed + m.size - 1))
      m.slice, m.base, m.last, i = slice, m.removed, #slice < m.size, 1
      if m.size < 256 then m.size = m.size * 2 end
    end
    local e = m.slice[i]
    if e then return e, true end
  end
  return m.queue[2 * m.head], false
end
-- The points the standalone pointsGone would remove, in order: those at or before cutoff, then past the cap.
-- The points gone, in a table the call's parts share: a part reads its first drop entries only.
local goneScratch = {}
local function pointsGone(key, cutoff, total, maxPoints)
  local m = pointSets[key]
  local gone, drop = goneScratch, 0
  while true do
    local e, inRedis = nextPoint(key, m)
    if not e then break end
    if total - drop <= maxPoints and struct.unpack('<d', e, #e - 11) > cutoff then break end
    drop = drop + 1
    gone[drop] = e
    if inRedis then m.removed = m.removed + 1 else m.head = m.head + 1 end
  end
  return gone, drop
end
local function pointsAll(key)
  applyPoints(key, pointSets[key])
  return redis.call('ZRANGE', key, 0, -1)
end
local function flushPredictSets()
  for k = 1, #pointSetKeys do
    local key = pointSetKeys[k]
    local m = pointSets[key]
    applyPoints(key, m)
    local held = predictStates[m.state]
    local v = m.short and held and held['\\0']
    if v then held['\\0'] = {(readNewest(v)), redis.call('ZCARD', key)} end
  end
end
`;

/**
 * The state hash as the body script's predict parts see it: stateGet and stateSet/stateDel of one call
 * share a table of the fields written, and each hash is written once when the call ends
 * (flushPredictStates, before the expiries are refreshed: a hash the call creates then gets its
 * expiry). A body's samples of one target mostly rewrite the same fields (the newest time, the
 * instance's sums, the last answer) and delete the answers of the samples that slid out: one
 * HDEL and one HSET per target and call instead of one each per sample, and a later sample of
 * the call reads those fields from the table, not from Redis. What a part reads is what the
 * hash would hold had each sample written it at once, so the answers are the standalone
 * script's. The cost of the deferral: Redis does not undo a script that fails part-way, so a call
 * that errors after its predict parts (a WRONGTYPE key, out of memory) leaves their points in the
 * set without their state; the retried body answers those samples again, with the count one
 * short until the set slides past them (one `over` window).
 */
export const PREDICT_STATE_LUA = `
${PREDICT_HELPERS_LUA}
-- key -> { field -> value, or false once deleted }, and the keys in the order first written.
local predictStates, predictStateKeys = {}, {}
-- The newest time and count: {newest, total} as this call wrote them, or the hash's packed field.
local function readNewest(v)
  if type(v) == 'table' then return v[1], v[2] end
  return struct.unpack('<dd', v)
end
-- Fields this call has not written are read from the hash (HMGET's nil is false, as here).
local function stateGet3(key, a, b, c)
  local held = predictStates[key]
  if not held then
    local got = redis.call('HMGET', key, a, b, c)
    return got[1], got[2], got[3]
  end
  local va, vb, vc = held[a], held[b], held[c]
  if va == nil and vb ~= nil and vc ~= nil then
    -- A later sample of the target in this call: only its own id is not held. Asked even when
    -- the sample is newer than the newest the state counts: an id is a sample's identity, not its
    -- time, and one stored before may come again at a later time (a reused frame id); the
    -- standalone script and the memory mirror answer it as a retry.
    va = redis.call('HGET', key, a)
  elseif va == nil or vb == nil or vc == nil then
    local got = redis.call('HMGET', key, a, b, c)
    if va == nil then va = got[1] end
    if vb == nil then vb = got[2] end
    if vc == nil then vc = got[3] end
  end
  return va, vb, vc
end
local function stateGet1(key, a)
  local held = predictStates[key]
  if held then
    local v = held[a]
    if v ~= nil then return v end
  end
  return redis.call('HGET', key, a)
end
-- What a part writes is kept as Lua values and packed once per field when the call ends (a later
-- sample of the target reads the table, not the bytes): the newest time and count {newest,
-- total}, an instance's sums {n, origin, sx, sy, sxx, sxy} (the table the part updated), an
-- answer's reply table, the last answer's reply table (only the call's last one is kept).
-- A sample's writes go straight into the table (its deletes come before its sets of the same
-- fields, as the standalone HDEL before its HSET); the last answer's instance and time beside it.
local lastInst, lastAt = {}, {}
local function heldOf(key)
  local held = predictStates[key]
  if not held then
    held = {}
    predictStates[key] = held
    predictStateKeys[#predictStateKeys + 1] = key
  end
  return held
end
local function stateSet(key, field, v) heldOf(key)[field] = v end
local function stateDel(key, field) heldOf(key)[field] = false end
local function stateLast(key, inst, at, stored)
  heldOf(key)['\\0\\0'] = stored
  lastInst[key] = inst
  lastAt[key] = at
end
local function stateWrite(key) end
-- The newest time and count: one table per hash and call, changed in place (readNewest copies).
local function stateNewest(key, newest, total)
  local held = heldOf(key)
  local v = held['\\0']
  if type(v) == 'table' then
    v[1], v[2] = newest, total
  else
    held['\\0'] = {newest, total}
  end
end
local function flushPredictStates()
  for k = 1, #predictStateKeys do
    local key = predictStateKeys[k]
    local sets, dels = {}, {}
    for field, v in pairs(predictStates[key]) do
      if v then
        if type(v) == 'table' then
          if field == '\\0\\0' then
            v = '\\1' .. lastInst[key] .. '\\0' .. lastAt[key] .. '\\0' .. packReply(v)
          elseif field == '\\0' then
            v = struct.pack('<dd', v[1], v[2])
          elseif string.byte(field) == 0 then
            v = struct.pack('<dddddd', v[1], v[2], v[3], v[4], v[5], v[6])
          else
            v = packReply(v)
          end
        end
        sets[#sets + 1] = field
        sets[#sets + 1] = v
      else
        dels[#dels + 1] = field
      end
    end
    -- In slices: unpack puts its results on Lua's stack.
    for i = 1, #dels, 1000 do redis.call('HDEL', key, unpack(dels, i, math.min(#dels, i + 999))) end
    for i = 1, #sets, 2000 do redis.call('HSET', key, unpack(sets, i, math.min(#sets, i + 1999))) end
  end
end
-- An answer this call wrote is kept as its reply table, packed when the call ends.
local function readAnswer(v)
  if type(v) == 'table' then return v end
  return readStoredAnswer(v)
end
local function storedAnswer(code, n, slope, eta, fitted, limit, reply) return reply end
local function readSums(v)
  if type(v) == 'string' then return unpackSums(v) end
  return v or false
end
local function packSums(w) return w end
${PREDICT_SUMS_OF_LUA}local ttls = {}
local function ttlOf(over)
  local ttl = ttls[over]
  if not ttl then
    ttl = int(over + 60000)
    ttls[over] = ttl
  end
  return ttl
end
${PREDICT_POINTS_LUA}
`;

/**
 * The predict script's code without its header and expireLater: the body script's predict part
 * (src/server/bodyScript.ts), which brings its own expireLater.
 */
export const PREDICT_BODY_LUA = `local id = ARGV[1]
-- ARGV numbers (sent by the service, always numeric) read as x + 0: one strtod, where
-- tonumber in Redis's Lua 5.1 is two (lua_isnumber, then lua_tonumber).
local t = (ARGV[2] + 0)
local limit = setting(ARGV[4])
local within = setting(ARGV[5])
local over = setting(ARGV[6])
local minN = setting(ARGV[7])
local maxPoints = setting(ARGV[8])
local inst = ARGV[9]

local got1, got2, got3 = stateGet3(KEYS[2], id, '\\0', sumsField(inst))
if got1 then return readAnswer(got1) end

-- String(a number) always reads back (strtod takes 'Infinity' and 'NaN' too): one strtod.
local y = (ARGV[3] + 0)
-- id .. '\\0' .. struct.pack('<ddI4', y, t, #inst), in one string.
local member = struct.pack('<c0BddI4', id, 0, y, t, #inst)
local newest, total, was = t, 0, nil
if got2 then
  local held
  was, held = readNewest(got2)
  if was > newest then newest = was end
  total = held
end
-- After: newer than every point the set holds (the member cannot be there yet, and it sorts last).
total = total + pointsAdd(KEYS[1], KEYS[2], ARGV[2], member, was ~= nil and t > was)

-- Sums by instance, read once each; touched ones are written back (or deleted) at the end, with
-- the answers of the samples that left.
local sums, touched = sumsSeen, sumsTouched
sums[inst] = readSums(got3)

-- What slides out of the window (time <= newest - over) and then past the cap is a prefix of
-- the set: read just that, take it off its instances' sums, remove it by rank.
local gone, drop = pointsGone(KEYS[1], newest - over, total, maxPoints)
local kept = true
if drop > 0 then
  total = total - drop
  for i = 1, drop do
    local m = gone[i]
    stateDel(KEYS[2], string.sub(m, 1, #m - 21))
    if m == member then
      kept = false
    else
      local y0, x0, len = struct.unpack('<ddI4', m, #m - 19)
      -- Mostly the sample's own instance: compared in place, no new string.
      local who = inst
      if len ~= #inst or string.find(m, inst, 1, true) ~= 1 then who = string.sub(m, 1, len) end
      local s = sumsOf(KEYS[2], sums, who)
      if s then
        local x = (x0 - s[2]) / HOUR
        s[1] = s[1] - 1
        s[3] = s[3] - x
        s[4] = s[4] - y0
        s[5] = s[5] - x * x
        s[6] = s[6] - x * y0
        if s[1] <= 0 then sums[who] = false end
        touched[who] = true
      end
    end
  end
end

if kept then
  local s = sums[inst]
  if s and t - s[2] > over then
    -- Rebase: the origin moves to this sample and the sums are summed afresh, in set order.
    s = {0, t, 0, 0, 0, 0}
    local prefix = inst .. '/'
    local all = pointsAll(KEYS[1])
    for i = 1, #all do
      local m = all[i]
      local y0, x0, len = struct.unpack('<ddI4', m, #m - 19)
      if len == #inst and string.sub(m, 1, len + 1) == prefix then add(s, x0, y0) end
    end
  else
    if not s then s = {0, t, 0, 0, 0, 0} end
    add(s, t, y)
  end
  sums[inst] = s
  touched[inst] = true
end

local s = sums[inst]
local n = 0
if s then n = s[1] end
local code, slope, eta, fitted = 1, 0, 0, 0
if n >= minN then
  local sx, sy, sxx, sxy = s[3], s[4], s[5], s[6]
  local spread = n * sxx - sx * sx
  if spread > ${PREDICT_BOUNDS.spreadFloor} * n * sxx then slope = (n * sxy - sx * sy) / spread end
  fitted = (sy - slope * sx) / n + slope * ((newest - s[2]) / HOUR)
  if slope < ${PREDICT_BOUNDS.minSlopeMbPerHour} then
    code = 2
  else
    eta = math.floor((limit - fitted) / slope * HOUR + 0.5)
    if eta < 0 then eta = 0 end
    code = 3
    if eta <= within then code = 4 end
  end
end
local answer = answerReply(code, n, slope, eta, fitted, ARGV[4])

local stored = storedAnswer(code, n, slope, eta, fitted, ARGV[4], answer)
stateNewest(KEYS[2], newest, total)
for who in pairs(touched) do
  local w = sums[who]
  if w then stateSet(KEYS[2], sumsField(who), packSums(w)) else stateDel(KEYS[2], sumsField(who)) end
  touched[who] = nil
end
for who in pairs(sums) do sums[who] = nil end
if kept then stateSet(KEYS[2], id, stored) end
stateLast(KEYS[2], inst, ARGV[2], stored)
stateWrite(KEYS[2])
local ttl = ttlOf(over)
expireLater(KEYS[1], ttl)
expireLater(KEYS[2], ttl)
return answer
`;

/** The standalone script (RedisPredictStore): its header, then the code. */
export const PREDICT_LUA = PREDICT_HEADER_LUA + PREDICT_BODY_LUA;

/** The state hash's field of the last answer (`mallet explain` reads it): no id or instance holds a NUL. */
export const PREDICT_LAST_FIELD = '\0\0';

export interface PredictVote {
  readonly keys: PredictKeySet;
  readonly eventId: string;
  /** The sample's own time (the line's timestamp, integer ms). */
  readonly time: number;
  /** The sample and the limit, in MB. */
  readonly value: number;
  readonly limit: number;
  readonly withinMs: number;
  readonly overMs: number;
  readonly minSamples: number;
  /** The dyno instance the series is of (uuid, or a Fir dyno name). */
  readonly instance: string;
}

export type PredictResult =
  | { readonly status: 'few'; readonly samples: number; readonly limit: number }
  | { readonly status: 'below'; readonly samples: number; readonly slope: number; readonly etaMs?: number; readonly fitted: number; readonly limit: number }
  | { readonly status: 'reaches'; readonly samples: number; readonly slope: number; readonly etaMs: number; readonly fitted: number; readonly limit: number };

/** A sample's id in its target's set: the instance, so the fit can keep to one. A NUL (which
 * the script's member uses as the id's end) becomes U+FFFD, in both stores alike. */
export function predictMember(v: PredictVote): string {
  return `${predictInstance(v)}/${noNul(v.eventId)}`;
}

/** The instance as the series knows it (see predictMember). */
export function predictInstance(v: PredictVote): string {
  return noNul(v.instance);
}

const noNul = (s: string): string => (s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s);

/** Where the series live: Redis in the service, memory in `mallet test` / `replay`. */
export interface PredictStore {
  /** Votes in order; the result at i answers votes[i]. */
  predict(votes: readonly PredictVote[]): Promise<PredictResult[]>;
}

/**
 * The script's answer as a result: {status, samples, eta, limit, slope m, slope e, fitted m,
 * fitted e} (see PREDICT_LUA's header), each double m * 2^e exactly or, rarely, its %.17g text.
 */
export function parsePredictReply(reply: unknown): PredictResult {
  const r = reply as (string | number)[];
  const status = r[0];
  const samples = Number(r[1]);
  const eta = r[2]!;
  const limit = Number(r[3]);
  if (status === 'few') return { status, samples, limit };
  const slope = exactDouble(r[4]!, r[5]!);
  const fitted = exactDouble(r[6]!, r[7]!);
  if (status === 'below') return { status, samples, slope, ...(eta !== '' ? { etaMs: Number(eta) } : {}), fitted, limit };
  if (status === 'reaches') return { status, samples, slope, etaMs: Number(eta), fitted, limit };
  throw new Error(`predict script: unexpected reply ${JSON.stringify(r).slice(0, 100)}`);
}

/**
 * m * 2^e, exact for the script's m below 2^53 (and 2^e above 2^-1074); text read as it is, but
 * for C's 'inf' (Number() reads only 'Infinity': the text reply made such a slope NaN).
 */
function exactDouble(m: string | number, e: string | number): number {
  if (typeof m === 'number') return m * 2 ** Number(e);
  return m === 'inf' ? Infinity : m === '-inf' ? -Infinity : Number(m);
}

/** An answer as the script wrote it before its reply was integers: its text, %.17g numbers (mallet explain's older last answers). */
export function parseTextPredictReply(reply: readonly string[]): PredictResult {
  const [status, n, slope, eta, fitted, limit] = reply;
  const samples = Number(n);
  if (status === 'few') return { status, samples, limit: Number(limit) };
  if (status === 'below') return { status, samples, slope: Number(slope), ...(eta ? { etaMs: Number(eta) } : {}), fitted: Number(fitted), limit: Number(limit) };
  if (status === 'reaches') return { status, samples, slope: Number(slope), etaMs: Number(eta), fitted: Number(fitted), limit: Number(limit) };
  throw new Error(`predict script: unexpected answer ${JSON.stringify(reply).slice(0, 100)}`);
}

/** A packed answer (struct.pack('<Bdddd', code, samples, slope, eta, fitted) .. limit text) from `at` on. */
export function parsePackedPredictAnswer(b: Buffer, at = 0): PredictResult {
  const code = b[at]!;
  const samples = b.readDoubleLE(at + 1);
  const slope = b.readDoubleLE(at + 9);
  // The script's eta is math.floor'd and at least 0 (a -0 replies as 0).
  const etaMs = b.readDoubleLE(at + 17) + 0;
  const fitted = b.readDoubleLE(at + 25);
  const limit = Number(b.toString('utf8', at + 33));
  if (code === 1) return { status: 'few', samples, limit };
  if (code === 2) return { status: 'below', samples, slope, fitted, limit };
  if (code === 3) return { status: 'below', samples, slope, etaMs, fitted, limit };
  if (code === 4) return { status: 'reaches', samples, slope, etaMs, fitted, limit };
  throw new Error(`predict state: unexpected answer code ${code}`);
}

/**
 * The state hash's last answer ('\0\0'): '\x01' .. instance .. '\0' .. time .. '\0' .. packed
 * answer, or, as written before, JSON [instance, time, the reply's text].
 */
export function parsePredictLast(raw: Buffer): { instance: string; at: number; answer: PredictResult } {
  if (raw[0] === 0x5b) {
    const [instance, at, answer] = JSON.parse(raw.toString('utf8')) as [string, string, string[]];
    return { instance, at: Number(at), answer: parseTextPredictReply(answer) };
  }
  if (raw[0] !== 1) throw new Error('predict state: unexpected last answer');
  const a = raw.indexOf(0, 1);
  const b = raw.indexOf(0, a + 1);
  if (a < 0 || b < 0) throw new Error('predict state: unexpected last answer');
  return { instance: raw.toString('utf8', 1, a), at: Number(raw.toString('latin1', a + 1, b)), answer: parsePackedPredictAnswer(raw, b + 1) };
}

/** One sample's keys and args, as the predict script takes them (here or as a part of the drain's body script). */
export function predictPart(v: PredictVote): { name: 'predict'; keys: string[]; args: (string | number)[] } {
  return {
    name: 'predict',
    keys: [v.keys.points, v.keys.state],
    args: [predictMember(v), Math.trunc(v.time), String(v.value), String(v.limit), v.withinMs, v.overMs, v.minSamples, PREDICT_BOUNDS.maxPoints, predictInstance(v)],
  };
}

const COMMAND = 'malletPredict';
type WithPredict = { [COMMAND](...args: (string | number)[]): unknown };

export class RedisPredictStore implements PredictStore {
  readonly #redis: Redis;
  constructor(redis: Redis) {
    this.#redis = redis;
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 2, lua: PREDICT_LUA });
  }

  /** One round trip for the body's samples: a pipeline of EVALSHA, in order. */
  async predict(votes: readonly PredictVote[]): Promise<PredictResult[]> {
    if (votes.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const v of votes) {
      const p = predictPart(v);
      (pipeline as unknown as WithPredict)[COMMAND](...p.keys, ...p.args);
    }
    const replies = await pipeline.exec();
    if (!replies) throw new Error('predict pipeline was discarded');
    return replies.map(([err, reply]) => {
      if (err) throw err;
      return parsePredictReply(reply);
    });
  }
}
