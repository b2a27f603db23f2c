import type { Redis } from 'ioredis';
import { luaScript } from './redisScript.js';

const SOURCE = `
-- herokuBudget: takes one Platform API request from mallet's share of the account pool.
-- KEYS[1] sorted set of mallet's requests in the last window (member = unique id, score = time)
-- KEYS[2] last RateLimit-Remaining the API reported (string with a short TTL), may be absent
-- ARGV[1] now (ms)  ARGV[2] window (ms)  ARGV[3] max requests per window  ARGV[4] request id
-- ARGV[5] minimum remaining: below it the account pool is nearly empty, so wait
-- Returns {1, 0} when the request may go, {0, waitMs} when it must wait.
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, math.max(1000, math.floor(tonumber(oldest[2]) + window - now))}
end
local remaining = redis.call('GET', KEYS[2])
if remaining and tonumber(remaining) < tonumber(ARGV[5]) then
  return {0, math.max(1000, redis.call('PTTL', KEYS[2]))}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {1, 0}
`;

const run = luaScript(SOURCE);

export interface BudgetDecision {
  readonly ok: boolean;
  readonly waitMs: number;
}

export async function takeHerokuBudget(
  redis: Redis,
  keys: { budget: string; remaining: string },
  now: number,
  opts: { windowMs: number; max: number; requestId: string; minRemaining: number },
): Promise<BudgetDecision> {
  const [ok, wait] = (await run(redis, [keys.budget, keys.remaining], [now, opts.windowMs, opts.max, opts.requestId, opts.minRemaining])) as [number, number];
  return { ok: Number(ok) === 1, waitMs: Number(wait) };
}
