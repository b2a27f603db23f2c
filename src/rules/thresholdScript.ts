import type { Redis } from 'ioredis';
import { RULE_BOUNDS } from './defaults.js';

/**
 * The threshold decision in Redis. The script lives in this .ts (not a .lua file) so the build
 * ships it without a copy step; its header documents KEYS, ARGV and returns. `RedisThresholdStore`
 * is its one caller; `MemoryThresholdStore` (thresholdMemory.ts) mirrors it for dry evaluation and
 * a test keeps the two equal.
 */
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

  ARGV[1] event id          ARGV[2] event time (ms)   ARGV[3] count     ARGV[4] within (ms)
  ARGV[5] cooldown (ms)     ARGV[6] trigger line      ARGV[7] max lines ARGV[8] firedBy ttl (ms)

  Returns one of
    {'fired', windowId, linesJson}  this line completed the window, or belonged to a window that fired
    {'cooldown', windowId}          cooling down after windowId; the line is not counted
    {'counting', size}              counted (or already counted once); size = lines in the window
]]
local id = ARGV[1]
local t = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local within = tonumber(ARGV[4])
local cooldown = tonumber(ARGV[5])
local maxLines = tonumber(ARGV[7])

local prev = redis.call('HGET', KEYS[3], 'e:' .. id)
if prev then
  return {'fired', prev, redis.call('HGET', KEYS[3], 'w:' .. prev) or '[]'}
end

local cool = redis.call('GET', KEYS[4])
if cool then
  local sep = string.find(cool, ':', 1, true)
  if sep and t < tonumber(string.sub(cool, sep + 1)) then
    return {'cooldown', string.sub(cool, 1, sep - 1)}
  end
end

if redis.call('ZADD', KEYS[1], 'NX', t, id) == 1 then
  redis.call('HSET', KEYS[2], id, ARGV[6])
end

-- Slide: drop what is a whole window older than the newest line (lines may arrive out of order).
local newest = t
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] and tonumber(top[2]) > newest then newest = tonumber(top[2]) end
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', newest - within)
if #old > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', newest - within)
  redis.call('HDEL', KEYS[2], unpack(old))
end

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
  redis.call('SET', KEYS[4], win .. ':' .. string.format('%.0f', t + cooldown), 'PX', cooldown + within)
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'fired', win, json}
end

-- A minute past the window: event time and Redis time differ by delivery delay and clock skew,
-- and a window that expired in real time before its next line (a short window, a slow retry)
-- would forget a line the event-time window still holds.
redis.call('PEXPIRE', KEYS[1], within + 60000)
redis.call('PEXPIRE', KEYS[2], within + 60000)
return {'counting', size}
`;

export interface ThresholdKeys {
  readonly window: string;
  readonly lines: string;
  readonly firedBy: string;
  readonly cooldown: string;
}

export interface ThresholdVote {
  readonly keys: ThresholdKeys;
  readonly eventId: string;
  /** Engine clock of the line (integer ms); becomes the window id when it fires. */
  readonly time: number;
  readonly count: number;
  readonly withinMs: number;
  readonly cooldownMs: number;
  readonly line: string;
}

export type ThresholdResult =
  | { readonly status: 'fired'; readonly window: string; readonly lines: readonly string[] }
  | { readonly status: 'cooldown'; readonly window: string }
  | { readonly status: 'counting'; readonly size: number };

/** Where thresholds and cooldowns live: Redis in the service, memory in `mallet test`/`replay`. */
export interface ThresholdStore {
  /** Votes in order; the result at i answers votes[i]. */
  vote(votes: readonly ThresholdVote[]): Promise<ThresholdResult[]>;
}

/** firedBy outlives the window and the cooldown, so a late retry still finds its firing. */
export function firedByTtlMs(v: ThresholdVote): number {
  return v.withinMs + v.cooldownMs;
}

export function parseThresholdReply(reply: unknown): ThresholdResult {
  const r = reply as [string, string | number, string?];
  if (r[0] === 'fired') return { status: 'fired', window: String(r[1]), lines: JSON.parse(r[2] ?? '[]') as string[] };
  if (r[0] === 'cooldown') return { status: 'cooldown', window: String(r[1]) };
  if (r[0] === 'counting') return { status: 'counting', size: Number(r[1]) };
  throw new Error(`threshold script: unexpected reply ${JSON.stringify(r).slice(0, 100)}`);
}

const COMMAND = 'malletThreshold';
type WithThreshold = { [COMMAND](...args: (string | number)[]): unknown };

export class RedisThresholdStore implements ThresholdStore {
  readonly #redis: Redis;
  constructor(redis: Redis) {
    this.#redis = redis;
    // defineCommand: EVALSHA with the script loaded on demand, in pipelines too.
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 4, lua: THRESHOLD_LUA });
  }

  /** One round trip for the whole body: a pipeline of EVALSHA, in order. */
  async vote(votes: readonly ThresholdVote[]): Promise<ThresholdResult[]> {
    if (votes.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const v of votes) {
      (pipeline as unknown as WithThreshold)[COMMAND](
        v.keys.window, v.keys.lines, v.keys.firedBy, v.keys.cooldown,
        v.eventId, Math.trunc(v.time), v.count, v.withinMs, v.cooldownMs, v.line, RULE_BOUNDS.maxTriggerLines, firedByTtlMs(v),
      );
    }
    const replies = await pipeline.exec();
    if (!replies) throw new Error('threshold pipeline was discarded');
    return replies.map(([err, reply]) => {
      if (err) throw err;
      return parseThresholdReply(reply);
    });
  }
}
