import type { Redis } from 'ioredis';
import { luaScript } from './redisScript.js';

const SOURCE = `
-- claimStep: lets a run of a job act only while it holds the job's BullMQ lock, and marks a step
-- that must not be repeated as sent, once across runs.
-- KEYS[1] the job's lock (value = the token of the run holding it)  KEYS[2] the job's step records
-- ARGV[1] this run's token  ARGV[2] field to mark ('' for none)  ARGV[3] its value  ARGV[4] TTL (s)
-- Returns 1: go on; 0: another run holds the job; -1: the field was already marked (sent by a run
-- that did not record the outcome).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then
  if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 0 then return -1 end
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
end
return 1
`;

const run = luaScript(SOURCE);

export type ClaimResult = 'owned' | 'lock-lost' | 'already-marked';

export async function claimStep(redis: Redis, lockKey: string, stepsKey: string, token: string, field = '', value = '', ttlS = 0): Promise<ClaimResult> {
  const r = Number(await run(redis, [lockKey, stepsKey], [token, field, value, ttlS]));
  return r === 1 ? 'owned' : r === 0 ? 'lock-lost' : 'already-marked';
}
