import type { Redis } from 'ioredis';
import type { PredictKeySet } from '../keys.js';
import { PREDICT_BOUNDS } from './predict.js';

/**
 * The prediction in Redis: one memory sample of one dyno instance added to that instance's
 * series and the least-squares line refitted, atomic across replicas. `MemoryPredictStore`
 * (predictMemory.ts) mirrors it for `mallet test` / `mallet replay`, and a property test keeps
 * the two equal (test/rules/predictEquivalence.test.ts), as for thresholds.
 */
export const PREDICT_LUA = `--[[
  predict: a sample joins its rule+app+target's samples; the least-squares line through the
  samples of its instance (of the target's newest ARGV[8] samples within ARGV[6] of the newest)
  is asked when it reaches the limit. Per target, not per instance, so a flood of made-up
  instance ids cannot make keys: the target budget bounds the targets, ARGV[8] each.
  Times are the lines' own timestamps (ms); real-time expiry only collects garbage.

  KEYS[1] points   sorted set: '<instance>/<event id>\\0' .. struct.pack('<dd', value MB, time ms)
                   -> sample time (ms). The value and the time ride in the member as two raw
                   doubles, so the one plain range read that finds the instance's samples has them
                   without WITHSCORES (Redis formatting every score as text and Lua parsing it
                   back cost more than the rest of the fit) and without a lookup per point.
                   \\0 sorts below every other byte and ids hold none, so the set's order is
                   that of '<instance>/<event id>' as before, and the id is what precedes the
                   first \\0.
  KEYS[2] answers  hash: '<instance>/<event id>' -> the answer it got (JSON). A sample has an
                   answer exactly while it is in the set (its call stores it, trimming deletes it),
                   so "no answer" also says "not in the set" and the insert needs no NX check.
  KEYS[3] last     string: the last answer, for mallet explain (JSON [instance, time, answer])
  (Keys and members changed format once, from a values hash; the old keys are simply not read
  again and expire: a series restarts after that upgrade, as it would after \`over\` of silence.)

  ARGV[1] id ('<instance>/<event id>')   ARGV[2] sample time (ms)   ARGV[3] value (MB)
  ARGV[4] limit (MB)   ARGV[5] within (ms)   ARGV[6] over (ms)   ARGV[7] min samples
  ARGV[8] max points   ARGV[9] instance

  A sample seen again (a logplex retry, another replica) gets the answer it got the first time
  and changes nothing: the threshold vote after it must not see a different verdict.

  Returns {status, samples, slope MB/h, eta ms, fitted MB at the newest sample, limit MB}, numbers
  as %.17g text (exact doubles; Lua numbers would be cut to integers). status is
    'few'      fewer than ARGV[7] samples (slope, eta, fitted '')
    'below'    the line does not reach the limit within ARGV[5] (eta '' when it rises less than
               ${PREDICT_BOUNDS.minSlopeMbPerHour} MB/h: flat)
    'reaches'  it does (eta 0 when the line is at or above the limit already)
]]
local id = ARGV[1]
local t = tonumber(ARGV[2])
local limit = tonumber(ARGV[4])
local within = tonumber(ARGV[5])
local over = tonumber(ARGV[6])
local minN = tonumber(ARGV[7])
local maxPoints = tonumber(ARGV[8])

local prev = redis.call('HGET', KEYS[2], id)
if prev then return cjson.decode(prev) end

local member = id .. '\\0' .. struct.pack('<dd', tonumber(ARGV[3]) or 0, t)
redis.call('ZADD', KEYS[1], t, member)

-- One plain read gets everything: the order is by time, so the newest is the last member and
-- what slides out of the window or past the cap is a prefix, removed by rank in one call (only
-- when there is one: once per sample interval in a steady series).
local flat = redis.call('ZRANGE', KEYS[1], 0, -1)
local total = #flat
local function timeOf(m)
  local _, x = struct.unpack('<dd', m, #m - 15)
  return x
end
local newest = timeOf(flat[total])
local drop = 0
while drop < total and timeOf(flat[drop + 1]) <= newest - over do drop = drop + 1 end
if total - drop > maxPoints then drop = total - maxPoints end
if drop > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, drop - 1)
  local ids = {}
  for i = 1, drop do ids[i] = string.sub(flat[i], 1, string.find(flat[i], '\\0', 1, true) - 1) end
  redis.call('HDEL', KEYS[2], unpack(ids))
end

local prefix = ARGV[9] .. '/'
local times = {}
local vals = {}
local kept = false
for i = drop + 1, total do
  local m = flat[i]
  if string.find(m, prefix, 1, true) == 1 then
    local y, x = struct.unpack('<dd', m, #m - 15)
    times[#times + 1] = x
    vals[#vals + 1] = y
    if m == member then kept = true end
  end
end
local n = #times
local f = function(x) return string.format('%.17g', x) end
local answer
if n < minN then
  answer = {'few', tostring(n), '', '', '', f(limit)}
else
  local sx, sy, sxx, sxy = 0, 0, 0, 0
  for i = 1, n do
    local x = (times[i] - newest) / 3600000
    local y = vals[i]
    sx = sx + x
    sy = sy + y
    sxx = sxx + x * x
    sxy = sxy + x * y
  end
  local denom = n * sxx - sx * sx
  local slope = 0
  if denom > 0 then slope = (n * sxy - sx * sy) / denom end
  local fitted = (sy - slope * sx) / n
  if slope < ${PREDICT_BOUNDS.minSlopeMbPerHour} then
    answer = {'below', tostring(n), f(slope), '', f(fitted), f(limit)}
  else
    local eta = math.floor((limit - fitted) / slope * 3600000 + 0.5)
    if eta < 0 then eta = 0 end
    local status = 'below'
    if eta <= within then status = 'reaches' end
    answer = {status, tostring(n), f(slope), f(eta), f(fitted), f(limit)}
  end
end

local json = cjson.encode(answer)
if kept then redis.call('HSET', KEYS[2], id, json) end
redis.call('PEXPIRE', KEYS[1], over + 60000)
redis.call('PEXPIRE', KEYS[2], over + 60000)
redis.call('SET', KEYS[3], cjson.encode({ARGV[9], ARGV[2], answer}), 'PX', over + 60000)
return answer
`;

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

/** The script's answer (an array of text) as a result; also how the memory mirror answers. */
export function parsePredictReply(reply: unknown): PredictResult {
  const r = reply as string[];
  const [status, n, slope, eta, fitted, limit] = r;
  const samples = Number(n);
  if (status === 'few') return { status, samples, limit: Number(limit) };
  if (status === 'below') return { status, samples, slope: Number(slope), ...(eta ? { etaMs: Number(eta) } : {}), fitted: Number(fitted), limit: Number(limit) };
  if (status === 'reaches') return { status, samples, slope: Number(slope), etaMs: Number(eta), fitted: Number(fitted), limit: Number(limit) };
  throw new Error(`predict script: unexpected reply ${JSON.stringify(r).slice(0, 100)}`);
}

/** One sample's keys and args, as the predict script takes them (here or as a part of the drain's body script). */
export function predictPart(v: PredictVote): { name: 'predict'; keys: string[]; args: (string | number)[] } {
  return {
    name: 'predict',
    keys: [v.keys.points, v.keys.answers, v.keys.last],
    args: [predictMember(v), Math.trunc(v.time), String(v.value), String(v.limit), v.withinMs, v.overMs, v.minSamples, PREDICT_BOUNDS.maxPoints, predictInstance(v)],
  };
}

const COMMAND = 'malletPredict';
type WithPredict = { [COMMAND](...args: (string | number)[]): unknown };

export class RedisPredictStore implements PredictStore {
  readonly #redis: Redis;
  constructor(redis: Redis) {
    this.#redis = redis;
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 3, lua: PREDICT_LUA });
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
