import type { Redis } from 'ioredis';
import { RULE_BOUNDS } from './defaults.js';
import { HISTORY_BOUNDS, HISTORY_LUA } from '../console/historyLua.js';
import type { RedisKeys, ThresholdKeySet } from '../keys.js';
import { statsBucket } from '../console/stats.js';
import { REJECTION_LUA, type Rejection } from './rejectionScript.js';

/**
 * The threshold decision in Redis. The script lives in this .ts (not a .lua file) so the build
 * ships it without a copy step; its header documents KEYS, ARGV and returns. `RedisThresholdStore`
 * is its one caller; `MemoryThresholdStore` (thresholdMemory.ts) mirrors it for dry evaluation and
 * a test keeps the two equal.
 */
/**
 * The cooldown key read and set: at once here; the drain's body script, whose votes of one target
 * read the same cooldown again and again, serves its reads from what the call has read or set.
 */
export const THRESHOLD_COOL_LUA = `
local function coolGet(key) return redis.call('GET', key) end
local function coolSet(key, value, px) redis.call('SET', key, value, 'PX', px) end
`;

/** The threshold script's body, without the history and cooldown functions it calls (the drain's body script pastes them once). */
export const THRESHOLD_BODY_LUA = `local id = ARGV[1]
-- The numbers as x + 0: one strtod, where tonumber in Redis's Lua 5.1 is two; count and max
-- lines only where a counted vote reads them (most of a storm's votes are in cooldown).
local t = ARGV[2] + 0
local within = ARGV[4] + 0
local cooldown = ARGV[5] + 0

local rule = ARGV[9]
local prev = redis.call('HGET', KEYS[3], 'e:' .. id)
if prev then
  return {'fired', prev, redis.call('HGET', KEYS[3], 'w:' .. prev) or '[]'}
end

-- A line in grace or in cooldown: its spell's record, counted once per event id (a retry adds
-- nothing), one block for both (a function made per vote was a closure per vote for Lua's GC).
local kind, sid, seenKey, spellField
local grace = ARGV[15]
if grace ~= '' then
  kind, sid, seenKey, spellField = 'grace', grace, KEYS[9], 'spell'
else
  local cool = coolGet(KEYS[4])
  if cool then
    local sep = string.find(cool, ':', 1, true)
    if sep and t < tonumber(string.sub(cool, sep + 1)) then
      kind, sid, seenKey, spellField = 'cooldown', string.sub(cool, 1, sep - 1), KEYS[6], 'window'
    end
  end
end
if kind then
  local entry = histOpen(KEYS[5], kind, sid, 1e15, t)
  if not entry then redis.call('DEL', seenKey) end
  if redis.call('PFADD', seenKey, id) == 1 then
    expireLater(seenKey, within + cooldown)
    local n = redis.call('PFCOUNT', seenKey)
    local before = 0
    if entry then
      before = histCount(KEYS[5], entry)
      histFold(KEYS[5], kind, entry, math.max(n, before), t)
    else
      -- '' : the history keeps the trigger line itself (ARGV[6] after its arrival time), not sent twice.
      -- The record's fields made only for the spell's first vote.
      local recordLine = ARGV[14]
      if recordLine == '' then recordLine = string.sub(ARGV[6], (string.find(ARGV[6], ' ', 1, true) or 0) + 1) end
      histNew(KEYS[7], KEYS[5], kind, sid, t, {'rule', rule, 'app', ARGV[10], 'target', ARGV[11], spellField, sid, 'line', recordLine}, ARGV[12], tonumber(ARGV[13]))
    end
    histStat(KEYS[8], rule, kind, n - before)
    histStat(KEYS[8], rule, 'matches', n - before)
  end
  return {kind, sid}
end

local since = tonumber(redis.call('HGET', KEYS[2], '~since') or '-1')
if ARGV[16] ~= '' and tonumber(ARGV[16]) > since then
  since = tonumber(ARGV[16])
  redis.call('HSET', KEYS[2], '~since', ARGV[16])
  local before = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[16])
  if #before > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[16])
    redis.call('HDEL', KEYS[2], unpack(before))
  end
end

-- Numbers as text here and below (ARGV as sent, or %d of whole ms): a number argument of
-- redis.call is formatted with %.17g, dearer than the command.
if t < since then
  -- From the previous instance, arriving late: it cannot count towards this one's window.
  if redis.call('ZSCORE', KEYS[1], id) == false and redis.call('HSETNX', KEYS[2], '~late:' .. id, '1') == 1 then
    histStat(KEYS[8], rule, 'matches', 1)
  end
elseif redis.call('ZADD', KEYS[1], 'NX', ARGV[2], id) == 1 then
  redis.call('HSET', KEYS[2], id, ARGV[6])
  histStat(KEYS[8], rule, 'matches', 1)
end

-- Slide: drop what is a whole window older than the newest line (lines may arrive out of order).
local newest = t
local top = redis.call('ZRANGE', KEYS[1], '-1', '-1', 'WITHSCORES')
if top[2] and tonumber(top[2]) > newest then newest = tonumber(top[2]) end
local cut = string.format('%d', newest - within)
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cut)
if #old > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cut)
  redis.call('HDEL', KEYS[2], unpack(old))
end

local count = ARGV[3] + 0
local maxLines = ARGV[7] + 0
local size = redis.call('ZCARD', KEYS[1])
if size > maxLines then
  local extra = redis.call('ZRANGE', KEYS[1], 0, size - maxLines - 1)
  redis.call('HDEL', KEYS[2], unpack(extra))
end

if size >= count then
  local win = ARGV[2]
  local members = redis.call('ZRANGE', KEYS[1], 0, -1)
  local last = redis.call('ZRANGE', KEYS[1], -maxLines, -1)
  local got = redis.call('HMGET', KEYS[2], unpack(last))
  local lines = {}
  for i = 1, #got do
    if got[i] then lines[#lines + 1] = got[i] end
  end
  local json = '[]'
  if #lines > 0 then json = cjson.encode(lines) end
  for i = 1, #members do
    redis.call('HSET', KEYS[3], 'e:' .. members[i], win)
  end
  redis.call('HSET', KEYS[3], 'w:' .. win, json)
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[8]))
  coolSet(KEYS[4], win .. ':' .. string.format('%.0f', t + cooldown), cooldown + within)
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'fired', win, json}
end

-- A minute past the window: event time and Redis time differ by delivery delay and clock skew,
-- and a window that expired in real time before its next line (a short window, a slow retry)
-- would forget a line the event-time window still holds.
local keepMs = string.format('%d', within + 60000)
expireLater(KEYS[1], keepMs)
expireLater(KEYS[2], keepMs)
return {'counting', size}
`;

export const THRESHOLD_LUA = `--[[
  threshold: one matched line's vote towards its rule's threshold, atomic across replicas.
  Per rule+app+target: a sliding window of event ids, a cooldown, and a record of which events
  made up each firing, so the same event seen again (logplex retry, another replica) gets the same
  firing back instead of counting twice. Times are the engine clock (event time), not Redis time:
  expiries in real time only collect garbage.

  KEYS[1] window    sorted set: event id -> event time (ms)
  KEYS[2] lines     hash: event id -> trigger line, for members of the window (last ARGV[7] kept)
  KEYS[3] firedBy   hash: 'e:' .. event id -> window id it fired in; 'w:' .. window id -> JSON array of lines
  KEYS[4] cooldown  string '<window id>:<until ms>'
  KEYS[5] spell     hash: the history's open records of rule+app+target (historyLua.ts)
  KEYS[6] seen      HyperLogLog: event ids counted in the current cooldown spell
  KEYS[7] history   stream of firing decisions
  KEYS[8] stats     hash: rule|outcome -> count in the 10-minute bucket of the event time
  KEYS[9] graceSeen HyperLogLog: event ids counted in the current grace spell

  ARGV[1] event id          ARGV[2] event time (ms)   ARGV[3] count     ARGV[4] within (ms)
  ARGV[5] cooldown (ms)     ARGV[6] trigger line      ARGV[7] max lines ARGV[8] firedBy ttl (ms)
  ARGV[9] rule  ARGV[10] app  ARGV[11] target  ARGV[12] history max entries  ARGV[13] history retention (ms)
  ARGV[14] the trigger line as the history keeps it (cut to its bound); '' when that is ARGV[6]
           after its arrival time (the line was short enough): the common case is sent once
  ARGV[15] the grace spell the line is in ('' = none): counted as \`grace\`, not toward the threshold
  ARGV[16] since (ms, '' = unknown): the line's instance started then; window members older no longer count

  A line in cooldown is a \`cooldown\` decision: the first of a cooldown spell appends a history
  record, later ones only raise its count, which is the HyperLogLog's count of distinct event ids
  (exact for a line seen again, so a retry adds nothing; approximate, ±1 %, past a few hundred).
  A matched line seen for the first time adds to the rule's \`matches\` in the stats bucket.
  A line in grace is recorded the same way as a \`grace\` decision (one record per spell).
  The window keeps the newest \`since\` it was told in KEYS[2] under '~since': a restarted dyno's
  first line drops the previous instance's, and a late line from before the restart is not added.

  Returns one of
    {'fired', windowId, linesJson}  this line completed the window, or belonged to a window that fired
    {'cooldown', windowId}          cooling down after windowId; the line is not counted
    {'grace', spell}                inside the rule's grace; the line is not counted
    {'counting', size}              counted (or already counted once); size = lines in the window
]]
${HISTORY_LUA}
${THRESHOLD_COOL_LUA}
${THRESHOLD_BODY_LUA}`;

export type ThresholdKeys = ThresholdKeySet;

export interface ThresholdVote {
  readonly keys: ThresholdKeys;
  readonly eventId: string;
  /** Engine clock of the line (integer ms); becomes the window id when it fires. */
  readonly time: number;
  readonly count: number;
  readonly withinMs: number;
  readonly cooldownMs: number;
  readonly line: string;
  /** What a history record of this line names (a `cooldown` decision). */
  readonly rule: string;
  readonly app: string;
  readonly target: string;
  /** The trigger line as a history record keeps it (cut to HISTORY_BOUNDS.lineBytes). */
  readonly recordLine: string;
  /** The grace spell the line is in (src/rules/grace.ts): a `grace` decision, not counted. */
  readonly grace?: string;
  /** Engine time its instance started: window members older than this no longer count. */
  readonly sinceMs?: number;
}

export type ThresholdResult =
  | { readonly status: 'fired'; readonly window: string; readonly lines: readonly string[] }
  | { readonly status: 'cooldown'; readonly window: string }
  | { readonly status: 'grace'; readonly spell: string }
  | { readonly status: 'counting'; readonly size: number };

/** Where thresholds and cooldowns live: Redis in the service, memory in `mallet test`/`replay`. */
export interface ThresholdStore {
  /**
   * Votes in order; the result at i answers votes[i]. Rejected matches ride along so the history
   * records them in the same round trip (a store without history ignores them).
   */
  vote(votes: readonly ThresholdVote[], rejections?: readonly Rejection[]): Promise<ThresholdResult[]>;
}

/** firedBy outlives the window and the cooldown, so a late retry still finds its firing. */
export function firedByTtlMs(v: ThresholdVote): number {
  return v.withinMs + v.cooldownMs;
}

export function parseThresholdReply(reply: unknown): ThresholdResult {
  const r = reply as [string, string | number, string?];
  if (r[0] === 'fired') return { status: 'fired', window: String(r[1]), lines: JSON.parse(r[2] ?? '[]') as string[] };
  if (r[0] === 'cooldown') return { status: 'cooldown', window: String(r[1]) };
  if (r[0] === 'grace') return { status: 'grace', spell: String(r[1]) };
  if (r[0] === 'counting') return { status: 'counting', size: Number(r[1]) };
  throw new Error(`threshold script: unexpected reply ${JSON.stringify(r).slice(0, 100)}`);
}

const COMMAND = 'malletThreshold';
const REJECT = 'malletRejection';
type WithThreshold = { [COMMAND](...args: (string | number)[]): unknown; [REJECT](...args: (string | number)[]): unknown };

/** One vote's keys and args, as the threshold script takes them (here or as a part of the drain's body script). */
export function thresholdPart(v: ThresholdVote, k: RedisKeys): { name: 'threshold'; keys: string[]; args: (string | number)[] } {
  // `line` is '<arrival ms> <trigger line>'; the history's copy is usually that line itself.
  const record = v.recordLine === v.line.slice(v.line.indexOf(' ') + 1) ? '' : v.recordLine;
  return {
    name: 'threshold',
    keys: [v.keys.window, v.keys.lines, v.keys.firedBy, v.keys.cooldown, v.keys.spell, v.keys.seen, k.history(v.app), k.stats(v.app, statsBucket(v.time)), v.keys.graceSeen],
    args: [v.eventId, Math.trunc(v.time), v.count, v.withinMs, v.cooldownMs, v.line, RULE_BOUNDS.maxTriggerLines, firedByTtlMs(v),
      v.rule, v.app, v.target, HISTORY_BOUNDS.maxEntries, HISTORY_BOUNDS.retentionMs, record,
      v.grace ?? '', v.sinceMs === undefined ? '' : Math.trunc(v.sinceMs)],
  };
}

/**
 * The rejection script's calls for a body's rejected matches: one per rule+app, however many
 * lines of the body were rejected (a body of 10 000 bad lines is one call, not 10 000); Lua's
 * unpack takes some thousands of ids at a time.
 */
export function rejectionParts(rejections: readonly Rejection[], k: RedisKeys): Array<{ name: 'rejection'; keys: string[]; args: (string | number)[] }> {
  if (rejections.length === 0) return [];
  const groups = new Map<string, Rejection[]>();
  for (const r of rejections) {
    const id = `${r.rule}\0${r.app}`;
    const g = groups.get(id);
    if (g) g.push(r);
    else groups.set(id, [r]);
  }
  const out: Array<{ name: 'rejection'; keys: string[]; args: (string | number)[] }> = [];
  for (const list of groups.values()) {
    const r = list[0]!;
    const t = k.threshold(r.rule, r.app, '');
    for (let i = 0; i < list.length; i += 4000) {
      out.push({
        name: 'rejection',
        keys: [t.spell, t.seen, k.history(r.app), k.stats(r.app, statsBucket(r.time))],
        args: [Math.trunc(r.time), r.rule, r.app, r.reason, r.recordLine, HISTORY_BOUNDS.rejectedGapMs, HISTORY_BOUNDS.maxEntries, HISTORY_BOUNDS.retentionMs, ...list.slice(i, i + 4000).map((x) => x.eventId)],
      });
    }
  }
  return out;
}

export class RedisThresholdStore implements ThresholdStore {
  readonly #redis: Redis;
  readonly #keys: RedisKeys;
  constructor(redis: Redis, keys: RedisKeys) {
    this.#redis = redis;
    this.#keys = keys;
    // defineCommand: EVALSHA with the script loaded on demand, in pipelines too.
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 9, lua: THRESHOLD_LUA });
    if (!(REJECT in redis)) redis.defineCommand(REJECT, { numberOfKeys: 4, lua: REJECTION_LUA });
  }

  /** Apps this process has put in the console's list (historyApps): one SADD per app per process, not per line. */
  readonly #registered = new Set<string>();

  async registerApps(votes: readonly ThresholdVote[], rejections: readonly Rejection[]): Promise<void> {
    const fresh = new Set<string>();
    for (const v of votes) if (!this.#registered.has(v.app)) fresh.add(v.app);
    for (const r of rejections) if (!this.#registered.has(r.app)) fresh.add(r.app);
    if (fresh.size === 0) return;
    // A key of its own slot: its own command, not part of the body's pipeline (one slot on a cluster).
    await this.#redis.sadd(this.#keys.historyApps(), ...fresh);
    if (this.#registered.size > 10_000) this.#registered.clear();
    for (const app of fresh) this.#registered.add(app);
  }

  /** One round trip for the whole body: a pipeline of EVALSHA, in order. */
  async vote(votes: readonly ThresholdVote[], rejections: readonly Rejection[] = []): Promise<ThresholdResult[]> {
    if (votes.length === 0 && rejections.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const v of votes) {
      const p = thresholdPart(v, this.#keys);
      (pipeline as unknown as WithThreshold)[COMMAND](...p.keys, ...p.args);
    }
    for (const r of rejectionParts(rejections, this.#keys)) (pipeline as unknown as WithThreshold)[REJECT](...r.keys, ...r.args);
    const replies = await pipeline.exec();
    if (!replies) throw new Error('threshold pipeline was discarded');
    await this.registerApps(votes, rejections);
    return replies.slice(0, votes.length).map(([err, reply]) => {
      if (err) throw err;
      return parseThresholdReply(reply);
    });
  }
}
