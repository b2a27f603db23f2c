import type { Redis } from 'ioredis';
import { part } from '../keys.js';

/**
 * The distinct targets an app may have in play at once, shared by every replica: one sorted set
 * per app (target → last seen, engine clock), so the budget costs one bounded key per app.
 */
export const TARGET_BUDGET_LUA = `--[[
  targetBudget: admits a body's targets into its app's budget of distinct targets.
  A target already in play (seen within the window) is always admitted and its time refreshed, so
  a retried body, and a storm that keeps going, keep their targets; a new one is admitted while
  the app has fewer than ARGV[3] targets in play.

  KEYS[1] the app's targets: sorted set target -> last seen (ms)
  ARGV[1] now (ms)   ARGV[2] window (ms)   ARGV[3] max targets   ARGV[4..] the targets
  Returns one 1 (admitted) or 0 (refused) per target, in order.
]]
-- ARGV numbers (sent by the service, always numeric) read as x + 0: one strtod, where
-- tonumber in Redis's Lua 5.1 is two (lua_isnumber, then lua_tonumber).
local now = (ARGV[1] + 0)
local window = (ARGV[2] + 0)
local max = (ARGV[3] + 0)
-- Numbers as text (%d, or ARGV as sent): a number argument of redis.call costs a %.17g.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local size = redis.call('ZCARD', KEYS[1])
local out = {}
if #ARGV < 4 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return out
end
-- One read of every target's score and one write of the admitted ones, whatever their number
-- (GT refreshes a target in play, and adds a new one as a plain ZADD would).
local scores = redis.call('ZMSCORE', KEYS[1], unpack(ARGV, 4))
local add = {'ZADD', KEYS[1], 'GT'}
local seen = {}
for i = 4, #ARGV do
  local t = ARGV[i]
  if scores[i - 3] or seen[t] then
    out[#out + 1] = 1
  elseif size < max then
    size = size + 1
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  if out[#out] == 1 and not seen[t] then
    seen[t] = true
    add[#add + 1] = ARGV[1]
    add[#add + 1] = t
  end
end
if #add > 3 then redis.call(unpack(add)) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return out
`;

export interface TargetBudget {
  /** One answer per target, in order: true when it may vote. */
  admit(app: string, targets: readonly string[], now: number): Promise<boolean[]>;
}

export interface TargetBudgetLimits {
  readonly maxTargets: number;
  readonly windowMs: number;
}

const COMMAND = 'malletTargetBudget';
type WithBudget = { [COMMAND](key: string, ...args: (string | number)[]): Promise<number[]> };

export class RedisTargetBudget implements TargetBudget {
  constructor(private readonly redis: Redis, private readonly keyOf: (app: string) => string, private readonly limits: TargetBudgetLimits) {
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: TARGET_BUDGET_LUA });
  }

  async admit(app: string, targets: readonly string[], now: number): Promise<boolean[]> {
    if (targets.length === 0) return [];
    // Members, not keys, but line-derived: kept short the same way.
    const members = targets.map(part);
    const answers = await (this.redis as unknown as WithBudget)[COMMAND](this.keyOf(app), Math.trunc(now), this.limits.windowMs, this.limits.maxTargets, ...members);
    return answers.map((a) => a === 1);
  }
}
