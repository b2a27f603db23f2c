import type { Redis } from 'ioredis';
import { Unpackr } from 'msgpackr';
import { HISTORY_LUA } from '../console/historyLua.js';
import { DYNO_LUA } from '../dynos/dynoScript.js';
import { LIFE_LUA } from '../dynos/lifeScript.js';
import { LIVES_LUA } from '../rules/graceScript.js';
import { PREDICT_BODY_LUA, PREDICT_STATE_LUA } from '../rules/predictScript.js';
import { REJECTION_BODY_LUA } from '../rules/rejectionScript.js';
import { TARGET_BUDGET_LUA } from '../rules/targetBudget.js';
import { THRESHOLD_BODY_LUA, THRESHOLD_COOL_LUA } from '../rules/thresholdScript.js';
import { ADMIT_FIRING_BODY_LUA } from '../actions/scripts/admitFiring.js';
import { RECENT_FRAMES } from './recentFrames.js';
import { BodyFlush } from './bodyFlush.js';
import type { BodyPart, BodyPartName } from '../bodyPart.js';

/**
 * One drain body's Redis work in one round trip: the frame check, the app's target budget, the
 * predict rules' samples, the lifecycle the votes are judged by (grace, instance, a restart's
 * fresh window), the threshold votes, the rejections' history records and the observers' writes,
 * then the frame marked done, all in one script call. A part that needs another's answer takes
 * it inside the script: a vote is cast only if the budget admitted its target (`gate`) and, for a
 * predict rule's sample, only if its prediction reaches the limit (`predicted`); it takes its
 * grace and window start from the `lives` part's judgement (`life`). Every key a body touches is
 * its app's (`{app}` hash tag, src/keys.ts), so the call stays in one Redis Cluster slot.
 *
 * Each part is one of the service's own scripts, pasted in as a function of its own KEYS and
 * ARGV, so each keeps the contract its header documents (and the tests that pin it). Run in one
 * script they are also atomic together: a retry in flight at the same time either finds the frame
 * done or runs after the whole of this one.
 *
 * The frame is marked done in the same call only when nothing fired: a firing must be stored
 * (BullMQ) before its frame is done, so a body whose firing could not be stored is retried whole.
 * Then the caller submits and marks the frame itself (RecentFrames.markDone). The firings'
 * admissions (admitFiring.ts: storm guard, flapping, the mode decided once per firing id) are
 * parts too, one per firing the votes may make (`admit`: rule+target+window, a vote's own line's
 * window), after the votes: run only when a vote fired in that window, so the firing is admitted
 * in the votes' round trip; another window's firing (a retried line of an earlier one) is
 * admitted by the caller, as before (src/actions/bodyAdmission.ts).
 */

export const BODY_LUA = `--[[
  body: one drain body's writes (src/server/bodyScript.ts).
  KEYS[1] the drain's recent frames (recentFrames.ts), then each distinct key of the parts once
  ARGV[1] frame id ('' = no de-duplication: nothing checked or marked)
  ARGV[2] now (ms)  ARGV[3] frames window (ms)  ARGV[4] max frames kept
  ARGV[5] 1 = mark the frame done here when nothing fired, 0 = the caller marks it
  ARGV[6] number of parts P   ARGV[7] number of values V   ARGV[8 .. 7+V] each distinct argument
  of the parts once, then one descriptor per part: its code (b budget, p predict, v lives,
  t threshold, r rejection, d dynos, l life, a admit), the width W of its numbers ('2', '3' or '4'), then
  gate, predicted, life, number of keys, the KEYS index of each key and the ARGV index of each
  argument, each number W characters of 6 bits ('0' + 0..63, most significant first): read with
  string.byte and arithmetic, not tonumber (two strtod calls each in Redis's Lua). A part is
  called with the KEYS and ARGV its descriptor names, in its order: the same call as its own
  script's.
  Returns {'duplicate'} when the frame was already done, else {status, reply of each part...}:
  status 'marked' (nothing fired, the frame is now done), 'open' (the caller stores the firings,
  then marks the frame), 'unmarked' (no de-duplication). A vote whose target the budget refused
  replies {'dropped'}, a vote whose prediction does not reach the limit {'unpredicted'}; a predict
  part that did not reach replies its status alone ({'few'} or {'below'}: only a 'reaches' answer
  is read, for the vote it lets through; the standalone script answers in full); the lives
  part's reply is its values joined by NUL, one string (engine.ts splits it); an
  observer's part after a vote that fired replies {'deferred'} (observer parts come last: the
  observers are told the firings once those are stored). An admit part (admitFiring's KEYS and
  ARGV, then KEYS[7] the firedBy key of its votes, ARGV[21] the record's line bound) runs only
  when a vote of that firedBy key fired in its window (ARGV[19]), else replies {'unfired'}; its
  ARGV[11] (the firing's first trigger line) is taken from that vote's reply.
]]
${HISTORY_LUA}
-- Expiries the parts ask for, each key's refreshed once when the call ends (a storm's votes for
-- one target ask for the same window, lines and stats keys' every time). Every path that
-- recreates a key after a DEL asks again, so the last word holds; a key deleted since is a no-op.
local expiring = {}
expireLater = function(key, ms) expiring[key] = ms end
-- The stats counts the parts add (histStat): each hash's fields added once when the call ends (a
-- storm's votes add to the same two fields of one bucket each time); nothing in the call reads them.
local adding, addingKeys = {}, {}
addLater = function(key, field, n)
  local a = adding[key]
  if not a then
    a = {}
    adding[key] = a
    addingKeys[#addingKeys + 1] = key
  end
  a[field] = (a[field] or 0) + n
end
-- What the call has read or written of the history's spell hashes (key -> field -> value, false
-- for a field Redis does not hold): a storm's votes of one target read their open record three
-- times each. Writes and deletes (spellSet, spellDel: an admission that ends another kind's run)
-- still go to Redis at once and update the copy; histNew, which also trims a hash's fields, drops
-- that hash's copy.
local spells = {}
spellGet = function(spell, field)
  local h = spells[spell]
  if not h then
    h = {}
    spells[spell] = h
  end
  local v = h[field]
  if v == nil then
    v = redis.call('HGET', spell, field)
    h[field] = v
  end
  return v
end
spellSet = function(spell, f1, v1, f2, v2)
  redis.call('HSET', spell, f1, v1, f2, v2)
  local h = spells[spell]
  if h then
    h[f1] = v1
    h[f2] = v2
  end
end
spellDel = function(spell, field)
  redis.call('HDEL', spell, field)
  local h = spells[spell]
  if h then h[field] = false end
end
local histNewNow = histNew
histNew = function(stream, spell, ...)
  local entry = histNewNow(stream, spell, ...)
  spells[spell] = nil
  return entry
end
${THRESHOLD_COOL_LUA}
-- The cooldown keys the call has read or set (false: none), as the spell hashes above.
local cools = {}
local coolGetNow, coolSetNow = coolGet, coolSet
coolGet = function(key)
  local v = cools[key]
  if v == nil then
    v = coolGetNow(key)
    cools[key] = v
  end
  return v
end
coolSet = function(key, value, px)
  coolSetNow(key, value, px)
  cools[key] = value
end
local function budgetPart(KEYS, ARGV)
${TARGET_BUDGET_LUA}
end
local function thresholdPart(KEYS, ARGV)
${THRESHOLD_BODY_LUA}
end
${PREDICT_STATE_LUA}
local function predictPart(KEYS, ARGV)
${PREDICT_BODY_LUA}
end
-- Whether the predict part at a 1-based place reached its limit (the lives part skips the
-- queries of votes that will not be cast); set once the replies exist.
local predictionReaches
local function livesPart(KEYS, ARGV)
${LIVES_LUA}
end
local function rejectionPart(KEYS, ARGV)
${REJECTION_BODY_LUA}
end
local function dynosPart(KEYS, ARGV)
${DYNO_LUA}
end
local function lifePart(KEYS, ARGV)
${LIFE_LUA}
end
local function admitFiringPart(KEYS, ARGV)
${ADMIT_FIRING_BODY_LUA}
end
local UNFIRED = {'unfired'}
-- The votes that fired, by firedBy key and window: the firings the admit parts are for; the
-- first vote of a window is its firing's (finishEvaluation keeps the first's lines too).
local firedVotes = {}
-- Those keys in the order their votes fired: the order of the body's firings, in which the
-- queue and replay admit them (the limits' last slot goes to the firing that came first).
local firedOrder = {}
-- The admit parts of windows that fired, run after the loop in firedOrder: key -> {KEYS, ARGV, out index}.
local admitsDue = {}
-- The firing's first trigger line as its history record keeps it: the window's oldest line
-- kept, after its arrival time, cut to max bytes as truncateUtf8 cuts (a sequence cut in two
-- becomes U+FFFD). The lines are the service's own UTF-8.
local function recordLineOf(json, max)
  local s = cjson.decode(json)[1]
  if type(s) ~= 'string' then return '' end
  s = string.sub(s, (string.find(s, ' ', 1, true) or 0) + 1)
  if #s <= max then return s end
  local i = max
  while i > 0 and i > max - 3 do
    local b = string.byte(s, i)
    if b < 128 then break end
    if b >= 192 then
      local need = 2
      if b >= 240 then need = 4 elseif b >= 224 then need = 3 end
      if max - i + 1 < need then return string.sub(s, 1, i - 1) .. '\\239\\191\\189' end
      break
    end
    i = i - 1
  end
  return string.sub(s, 1, max)
end
local function admitPart(KEYS, ARGV)
  local vote = firedVotes[KEYS[7] .. ' ' .. ARGV[19]]
  if not vote then return UNFIRED end
  ARGV[11] = recordLineOf(vote[3], ARGV[21] + 0)
  return admitFiringPart(KEYS, ARGV)
end
local parts = { b = budgetPart, p = predictPart, v = livesPart, t = thresholdPart, r = rejectionPart, d = dynosPart, l = lifePart, a = admitPart }
-- The numbers of a descriptor from byte \`from\` on, W bytes each (at most 999 at a time: string.byte's results go on Lua's stack).
local function numbers(desc, from, w, count)
  local out, n = {}, 0
  local last = #desc
  if count then last = from + count * w - 1 end
  while from <= last do
    local upto = from + 999 * w - 1
    if upto > last then upto = last end
    local b = {string.byte(desc, from, upto)}
    -- Unrolled per width: a loop per character costs about what tonumber did.
    if w == 2 then
      for k = 1, #b, 2 do
        n = n + 1
        out[n] = b[k] * 64 + b[k + 1] - 3120
      end
    elseif w == 3 then
      for k = 1, #b, 3 do
        n = n + 1
        out[n] = b[k] * 4096 + b[k + 1] * 64 + b[k + 2] - 199728
      end
    else
      for k = 1, #b, 4 do
        n = n + 1
        out[n] = b[k] * 262144 + b[k + 1] * 4096 + b[k + 2] * 64 + b[k + 3] - 12782640
      end
    end
    from = upto + 1
  end
  return out
end

-- The values a width-2 descriptor's bytes \`from\` .. \`last\` name in \`values\` (KEYS or ARGV), as
-- a table of their number (see the loop below).
local function fromPairs(desc, from, last, values)
  local n = (last - from + 1) / 2
  if n <= 0 then return {} end
  if n <= 999 then
    local t = {string.byte(desc, from, last)}
    for i = 1, n do t[i] = values[t[2 * i - 1] * 64 + t[2 * i] - 3120] end
    for i = n + 1, 2 * n do t[i] = nil end
    return t
  end
  -- More than string.byte returns at a time (Lua's stack): grown, 999 at a time.
  local t, i = {}, 0
  while from <= last do
    local upto = from + 1997
    if upto > last then upto = last end
    local b = {string.byte(desc, from, upto)}
    for k = 1, #b, 2 do
      i = i + 1
      t[i] = values[b[k] * 64 + b[k + 1] - 3120]
    end
    from = upto + 1
  end
  return t
end

local frameId = ARGV[1]
-- A skipped part's reply, one table each for the whole call (the reply is the same; fewer
-- allocations for Lua's GC).
local DROPPED, UNPREDICTED, DEFERRED = {'dropped'}, {'unpredicted'}, {'deferred'}
-- A predict part's answer that did not reach, as its status alone: nothing reads the rest of it
-- (its vote is not cast), and its eight elements were most of a syslog call's reply, each decoded
-- by ioredis at several thousand instructions. Its whole answer is stored as before.
local UNREACHED = {few = {'few'}, below = {'below'}}
if frameId ~= '' and redis.call('ZSCORE', KEYS[1], frameId) then return cmsgpack.pack({'duplicate'}) end
local out = {'open'}
predictionReaches = function(p) return out[p + 1][1] == 'reaches' end
local admitted = nil
local lives = nil
-- The lives part's place in the reply: sent as one string (see the end).
local livesAt = nil
local fired = false
-- ARGV numbers (sent by the service, always numeric) read as x + 0: one strtod, where
-- tonumber in Redis's Lua 5.1 is two (lua_isnumber, then lua_tonumber).
local d = 8 + (ARGV[7] + 0)
for p = 1, (ARGV[6] + 0) do
  -- The header first: a part the budget, its prediction or a firing skips is not read further
  -- (most of a body's predict rule votes).
  local desc = ARGV[d + p - 1]
  local name, w = string.sub(desc, 1, 1), string.byte(desc, 2) - 48
  local gate, predicted, life, nk
  if w == 2 then
    -- The usual width without a table: fewer allocations, less for Lua's GC.
    local g1, g2, p1, p2, l1, l2, k1, k2 = string.byte(desc, 3, 10)
    gate, predicted, life, nk = g1 * 64 + g2 - 3120, p1 * 64 + p2 - 3120, l1 * 64 + l2 - 3120, k1 * 64 + k2 - 3120
  else
    local h = numbers(desc, 3, w, 4)
    gate, predicted, life, nk = h[1], h[2], h[3], h[4]
  end
  local r
  if gate > 0 and admitted and admitted[gate] == 0 then
    r = DROPPED
  elseif predicted > 0 and out[predicted + 1][1] ~= 'reaches' then
    r = UNPREDICTED
  elseif not fired and name == 'a' then
    r = UNFIRED
  elseif fired and (name == 'd' or name == 'l') then
    -- Observers write after the firings are stored (the caller then writes them, told the firings).
    r = DEFERRED
  else
    local pk, pa
    if w == 2 then
      -- Straight into the part's KEYS and ARGV, each table made at its size: Lua 5.1 has no
      -- table.new, and one filled an index at a time is reallocated and rehashed at every power
      -- of 2 (~5 times for a vote's 9 keys and 16 arguments). The table string.byte's results
      -- make already has the size (twice the part's, two bytes a number); each pair is decoded
      -- into the first half in place (a pair is read before its place is written: 2i - 1 >= i),
      -- then the second half is cleared (the length is then the part's, as # and unpack read it).
      pk = fromPairs(desc, 11, 10 + 2 * nk, KEYS)
      pa = fromPairs(desc, 11 + 2 * nk, #desc, ARGV)
    else
      pk, pa = {}, {}
      local x = numbers(desc, 3 + 4 * w, w)
      for i = 1, nk do pk[i] = KEYS[x[i]] end
      for i = nk + 1, #x do pa[i - nk] = ARGV[x[i]] end
    end
    if life > 0 then
      pa[15] = lives[3 * life - 1]
      pa[16] = lives[3 * life]
    end
    if name == 'a' then
      -- Its place in the reply now, its run after the loop, in the order the firings came.
      local key = pk[7] .. ' ' .. pa[19]
      if firedVotes[key] then admitsDue[key] = {pk, pa, #out + 1} end
      r = UNFIRED
    else
      r = parts[name](pk, pa)
      if name == 'p' and r[1] ~= 'reaches' then r = UNREACHED[r[1]] end
    end
    if name == 'b' then admitted = r
    elseif name == 'v' then
      lives = r
      livesAt = #out + 1
    elseif name == 't' and r[1] == 'fired' then
      fired = true
      local key = pk[3] .. ' ' .. r[2]
      if not firedVotes[key] then
        firedVotes[key] = r
        firedOrder[#firedOrder + 1] = key
      end
    end
  end
  out[#out + 1] = r
end
-- Nothing after the admit parts runs when a vote fired (the observers' parts wait), so running
-- them here changes no other part's answer.
for i = 1, #firedOrder do
  local due = admitsDue[firedOrder[i]]
  if due then out[due[3]] = admitPart(due[1], due[2]) end
end
if frameId == '' then
  out[1] = 'unmarked'
elseif not fired and ARGV[5] == '1' then
  local now, window, max = (ARGV[2] + 0), (ARGV[3] + 0), (ARGV[4] + 0)
  -- ARGV[2] as sent: a number argument of redis.call is formatted with %.17g.
  redis.call('ZADD', KEYS[1], 'NX', ARGV[2], frameId)
  -- Numbers as text (%d, or ARGV as sent): a number argument's %.17g costs more than the command.
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
  redis.call('ZREMRANGEBYRANK', KEYS[1], '0', string.format('%d', -(max + 1)))
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  out[1] = 'marked'
end
-- The counts and the predict parts' sets and state hashes first (the sets before: the count of a
-- set fixed there is its state's): a key this call creates must exist for its expiry.
for k = 1, #addingKeys do
  local key = addingKeys[k]
  for field, n in pairs(adding[key]) do redis.call('HINCRBY', key, field, n) end
end
flushPredictSets()
flushPredictStates()
for key, ms in pairs(expiring) do redis.call('PEXPIRE', key, ms) end
-- The lives part's judgements (three strings a query, most of them '' for the votes whose
-- prediction did not reach) as one string, joined by NUL: no judgement holds a NUL.
if livesAt then out[livesAt] = table.concat(lives, '\\0') end
-- The reply as one MessagePack string (Redis's cmsgpack, C): ioredis decodes a RESP reply
-- element by element at several thousand instructions each (its decoder's private fields are
-- WeakMap look-ups), and a syslog call's reply has hundreds. MessagePack also keeps what RESP's
-- conversion of a Lua reply would change: a number that is not an integer stays one, and every
-- integer reads back exactly (a reply's integers are below 2^53).
return cmsgpack.pack(out)
`;

export type BodyStatus = 'duplicate' | 'marked' | 'open' | 'unmarked';

export interface BodyReply {
  readonly status: BodyStatus;
  /** One reply per part, in order. */
  readonly replies: readonly unknown[];
}

const COMMAND = 'malletBody';

// int64AsType 'number': the library's default reads a 64-bit integer (a time in ms) as a BigInt.
const unpackr = new Unpackr({ int64AsType: 'number', mapsAsObjects: true });

/** The body script's reply (one MessagePack string) as the table it packed. */
export function unpackBodyReply(reply: unknown): unknown[] {
  if (!Buffer.isBuffer(reply)) throw new Error(`body script: expected a MessagePack reply, got ${typeof reply}`);
  const table = unpackr.unpack(reply) as unknown;
  if (!Array.isArray(table)) throw new Error('body script: its reply is not a list');
  return table;
}

/** Defines the body script on `redis` (EVALSHA, loaded on demand: NOSCRIPT after a Redis restart too). */
export function defineBodyScript(redis: Redis): void {
  if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { lua: BODY_LUA });
}

/** One body script call straight through ioredis, its reply unpacked (tests, benchmarks). */
export async function callBodyScript(redis: Redis, call: readonly (string | number)[]): Promise<unknown[]> {
  defineBodyScript(redis);
  const defined = redis as unknown as Record<string, (args: readonly (string | number)[]) => Promise<unknown>>;
  return unpackBodyReply(await defined[`${COMMAND}Buffer`]!(call));
}

export class BodyScript {
  readonly #flush: BodyFlush;

  constructor(redis: Redis) {
    defineBodyScript(redis);
    // The bodies ready in the same turn share one write (bodyFlush.ts); each is still its own call.
    this.#flush = new BodyFlush(redis, COMMAND, undefined, true);
  }

  /** `frameId` '' for a body that is not de-duplicated; `mark` false when the caller marks the frame. */
  async run(framesKey: string, frameId: string, now: number, mark: boolean, parts: readonly BodyPart[]): Promise<BodyReply> {
    const reply = unpackBodyReply(await this.#flush.call(framesKey, encodeBody(framesKey, frameId, now, mark, parts)));
    return { status: reply[0] as BodyStatus, replies: reply.slice(1) };
  }
}

const CODE: Record<BodyPartName, string> = { budget: 'b', predict: 'p', lives: 'v', threshold: 't', rejection: 'r', dynos: 'd', life: 'l', admit: 'a' };

/**
 * The script call's arguments (numkeys first, then KEYS, then ARGV) with each distinct key and
 * each distinct argument sent once: a body's votes repeat their rule's settings, the app's history
 * and stats keys, and a line two rules matched; a part refers to them by index. Only what differs
 * between parts is sent per part: the indices, two characters each for a body of up to 4 096
 * keys and values (`minWidth`: wider than needed, for the tests of the wider forms).
 */
export function encodeBody(framesKey: string, frameId: string, now: number, mark: boolean, parts: readonly BodyPart[], minWidth: 2 | 3 | 4 = 2): (string | number)[] {
  const keys = SEEN.keys;
  const values = SEEN.values;
  const numbers = SEEN.numbers;
  // Places seen in an earlier call are below `base` (see SEEN).
  const base = SEEN.begin();
  const keyList: string[] = [];
  const valueList: string[] = [];
  // Every index is below 8 + the parts' keys and arguments counted with repeats: 2 characters
  // (12 bits) hold it for the usual body, 3 (18 bits) but for a quarter of a million values.
  let bound = 8;
  for (const p of parts) bound += p.keys.length + p.args.length;
  const width = Math.max(minWidth, bound < 1 << 12 ? 2 : bound < 1 << 18 ? 3 : 4);
  if (width === 4 && bound >= 1 << 24) throw new Error('body script: a part refers past 16 million values');
  // The descriptors' characters are written as bytes, all of the call's one after another, and
  // made one latin1 string, each descriptor a slice of it: no string per number, no
  // concatenation per index (each was an allocation) and one native call per call, not per part.
  const need = (6 * parts.length + bound) * width;
  if (descriptor.length < need) descriptor = Buffer.allocUnsafe(Math.max(need, descriptor.length * 2));
  const d = descriptor;
  const ends: number[] = [];
  let o = 0;
  // KEYS[1] is the frames key; a value's ARGV index is 7 + its place in the table.
  for (const p of parts) {
    d[o] = CODE[p.name].charCodeAt(0);
    d[o + 1] = 48 + width;
    o = putNumber(d, o + 2, width, p.gate ?? 0);
    o = putNumber(d, o, width, p.predicted ?? 0);
    o = putNumber(d, o, width, p.life ?? 0);
    o = putNumber(d, o, width, p.keys.length);
    for (const key of p.keys) o = putNumber(d, o, width, stringIndex(keys, base, keyList, key, 1));
    const args = p.args;
    // Its first `once` string arguments are sent as they are, not looked up (see UNSHARED_LEADING).
    const once = p.name === 'threshold' ? UNSHARED_LEADING.threshold : 0;
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      let at: number;
      if (typeof arg === 'number') at = numberIndex(numbers, base, valueList, arg);
      else if (arg.length >= UNSHARED_LENGTH || i < once) at = valueList.push(arg) + 7;
      else at = stringIndex(values, base, valueList, arg, 7);
      o = putNumber(d, o, width, at);
    }
    ends.push(o);
  }
  const described = d.toString('latin1', 0, o);
  const call: (string | number)[] = [keyList.length + 1, framesKey];
  for (const key of keyList) call.push(key);
  call.push(frameId, Math.trunc(now), RECENT_FRAMES.windowMs, RECENT_FRAMES.maxFrames, mark ? 1 : 0, parts.length, valueList.length);
  for (const v of valueList) call.push(v);
  let from = 0;
  for (const end of ends) {
    call.push(described.slice(from, end));
    from = end;
  }
  return call;
}

/**
 * A value this long is sent as it is, not looked up: the trigger lines and a prediction's
 * member (instance/event id) are what is long in a body, and they are nearly never repeated
 * within it (a line two rules matched is sent twice), while looking one up means hashing all of
 * a fresh string (~60 % of encodeBody's time with every value looked up).
 */
const UNSHARED_LENGTH = 48;
/**
 * Leading string arguments of a part sent without a look-up, as the long ones: a threshold vote's
 * first, its line's event id (thresholdPart's ARGV[1]), is its own but for a line two rules
 * matched (8 % of the syslog bench's votes; then it is sent twice). A look-up of a fresh string
 * hashes all of it and its miss adds an entry: ~70 a syslog call. Only what is sent changes
 * (the descriptor names each copy), never what a part reads. The predict part's own values are
 * long (its member) or shared (its time, a third of its values).
 */
const UNSHARED_LEADING = { threshold: 1 } as const;
/** Places are stored as call * PLACES + place: a call's own are at or above its base. */
const PLACES = 1 << 24;

/**
 * The tables of what a call has sent, kept from call to call (encodeBody is synchronous) and not
 * emptied after each: a Map emptied starts again from its smallest table and grows, reallocated
 * and rehashed, through every size to the body's, every call. An entry of an earlier call is told
 * apart by its call number; the tables are emptied only once they hold ENTRIES (a bound on the
 * memory held: values kept are short, keys are the memoized ones, src/keys.ts) or after
 * MAX_CALLS calls.
 */
const SEEN = {
  keys: new Map<string, number>(),
  values: new Map<string, number>(),
  numbers: new Map<number, number>(),
  call: 0,
  /** The base of the next call's places. */
  begin(): number {
    if (this.call >= MAX_CALLS || this.keys.size + this.values.size + this.numbers.size > ENTRIES) {
      this.keys.clear();
      this.values.clear();
      this.numbers.clear();
      this.call = 0;
    }
    return ++this.call * PLACES;
  },
};
// Measured (fresh 20-character keys, 150 look-ups a call): a table kept up to 2 048 entries costs
// ~9 µs a call against ~23 µs for one emptied every call, but one kept up to 8 192 costs ~100 µs.
const ENTRIES = 1024;
/**
 * Calls between two emptyings at most: every stored place (call * PLACES + place, below 2^29)
 * stays a small integer, stored in the table as it is, where a larger one is a heap number
 * allocated by every set and read through by every compare. The tables are emptied at least as
 * often for a body's ~100 values (ENTRIES).
 */
const MAX_CALLS = 31;
let descriptor = Buffer.allocUnsafe(4096);

/** A descriptor's number in `width` characters of 6 bits each, '0' + 0..63, most significant first. */
function putNumber(d: Buffer, at: number, width: number, n: number): number {
  if (width === 2) {
    // The usual width, without the loop.
    d[at] = 48 + ((n >> 6) & 63);
    d[at + 1] = 48 + (n & 63);
    return at + 2;
  }
  for (let i = width - 1; i >= 0; i--) {
    d[at + i] = 48 + (n & 63);
    n >>= 6;
  }
  return at + width;
}

/**
 * `item`'s 1-based place in the script's table (`offset` + its place in `list`), added once per
 * call (`base`: this call's, see SEEN). One function for strings and one for numbers, each with
 * one kind of table: a generic one was ~1 % more of the encoding's instructions.
 */
function stringIndex(seen: Map<string, number>, base: number, list: string[], item: string, offset: number): number {
  const stored = seen.get(item);
  if (stored !== undefined && stored > base) return stored - base;
  const i = list.push(item) + offset;
  seen.set(item, base + i);
  return i;
}

/** A number's place among the values (ARGV, offset 7), its text made once per call. */
function numberIndex(seen: Map<number, number>, base: number, list: string[], item: number): number {
  const stored = seen.get(item);
  if (stored !== undefined && stored > base) return stored - base;
  const i = list.push(String(item)) + 7;
  seen.set(item, base + i);
  return i;
}
