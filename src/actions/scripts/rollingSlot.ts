import type { Redis } from 'ioredis';
import { luaScript } from './redisScript.js';

/**
 * Takes one of the slots, as a Lua function pasted into the scripts that take it (this file's and
 * claimStopKey.ts's), so both decide alike. Returns 1 when `id` holds a slot until `until_`, 0
 * when every slot is taken. A dead worker's lease runs out and its slot frees itself.
 */
export const TAKE_SLOT_LUA = `
local function takeSlot(key, id, now, until_, concurrency)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, id) and redis.call('ZCARD', key) >= concurrency then return 0 end
  redis.call('ZADD', key, until_, id)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', key, math.floor(tonumber(top[2])) + 1000)
  return 1
end
`;

const SOURCE = `
-- rollingSlot: takes or renews one of the remediation slots of an app + process type.
-- KEYS[1] sorted set of job ids holding a slot (score = lease end, ms)
-- ARGV[1] job id  ARGV[2] now (ms)  ARGV[3] lease end (ms)  ARGV[4] concurrency
-- Returns 1 when the job holds a slot until ARGV[3], 0 when every slot is taken.
${TAKE_SLOT_LUA}
return takeSlot(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
`;

const run = luaScript(SOURCE);

export async function acquireRollingSlot(redis: Redis, key: string, jobId: string, now: number, leaseUntil: number, concurrency: number): Promise<boolean> {
  return Number(await run(redis, [key], [jobId, now, leaseUntil, concurrency])) === 1;
}

const RENEW = luaScript(`
-- renewRollingSlot: extends the lease of a slot this job still holds; never takes one back.
-- KEYS[1] sorted set of job ids holding a slot  ARGV[1] job id  ARGV[2] lease end (ms)
-- Returns 1 when extended, 0 when the job no longer holds a slot (its lease ran out and may be
-- someone else's now).
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(top[2])) + 1000)
return 1
`);

export async function renewRollingSlot(redis: Redis, key: string, jobId: string, leaseUntil: number): Promise<boolean> {
  return Number(await RENEW(redis, [key], [jobId, leaseUntil])) === 1;
}

export async function releaseRollingSlot(redis: Redis, key: string, jobId: string): Promise<void> {
  await redis.zrem(key, jobId);
}
