import type { Redis } from 'ioredis';
import type { Limits } from '../../rules/RuleSet.js';
import { luaScript } from './redisScript.js';

const SOURCE = `
-- admitFiring: counts a firing against the storm guard and flapping limits and decides its mode,
-- once per firing id.
-- KEYS[1] storm guard sorted set of the app (member = firing id, score = time)
-- KEYS[2] flapping sorted set of app+target, whichever rule fired (member = firing id)
-- KEYS[3] admission string of the firing id (the mode decided the first time)
-- ARGV[1] firing id  ARGV[2] now (ms)
-- ARGV[3] per_app max  ARGV[4] per_app within (ms)  ARGV[5] flapping max  ARGV[6] flapping within (ms)
-- ARGV[7] admission TTL (ms)
-- Returns the mode: execute | held | flapping (the one decided the first time for this firing id).
local prev = redis.call('GET', KEYS[3])
if prev then return prev end
local id, now = ARGV[1], tonumber(ARGV[2])
local function count(key, max, within)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - within)
  redis.call('ZADD', key, 'NX', now, id)
  -- Only "more than max" matters, so the newest max+1 are enough: the set stays bounded.
  redis.call('ZREMRANGEBYRANK', key, 0, -(max + 2))
  redis.call('PEXPIRE', key, within)
  return redis.call('ZCARD', key)
end
local stormMax, flapMax = tonumber(ARGV[3]), tonumber(ARGV[5])
local storm = count(KEYS[1], stormMax, tonumber(ARGV[4]))
local flap = count(KEYS[2], flapMax, tonumber(ARGV[6]))
local mode = 'execute'
if flap > flapMax then mode = 'flapping' elseif storm > stormMax then mode = 'held' end
redis.call('SET', KEYS[3], mode, 'PX', ARGV[7])
return mode
`;

const run = luaScript(SOURCE);

export type Admission = 'execute' | 'held' | 'flapping';

export interface AdmissionKeys {
  readonly storm: string;
  readonly flapping: string;
  readonly admission: string;
}

export async function admitFiring(
  redis: Redis,
  keys: AdmissionKeys,
  firingId: string,
  now: number,
  limits: Limits,
): Promise<Admission> {
  const ttl = Math.max(limits.perApp.withinMs, limits.flapping.withinMs, 3_600_000);
  const mode = String(await run(redis, [keys.storm, keys.flapping, keys.admission], [
    firingId, now, limits.perApp.maxFirings, limits.perApp.withinMs, limits.flapping.maxFirings, limits.flapping.withinMs, ttl,
  ]));
  return mode === 'held' || mode === 'flapping' ? mode : 'execute';
}
