import type { Redis } from 'ioredis';
import { luaScript } from './redisScript.js';
import { TAKE_SLOT_LUA } from './rollingSlot.js';
import type { ClaimResult } from './claimStep.js';

const SOURCE = `
-- claimStopKey: a job whose first step is a stop key on mallet's own Redis, from taken to acting,
-- in one call: what claimStep, the ledger read and rollingSlot each decide (the same decisions,
-- in that order) and, only when all three let the step run, its SET and wake PUBLISH. The step
-- is recorded by the worker once the reply is back, as any step's; a run that follows a crash
-- before the record sets the key again (a stop key is repeatable), one after it skips the step.
-- KEYS[1] the job's lock  KEYS[2] the job's step records  KEYS[3] the rolling slots  KEYS[4] the stop key
-- ARGV[1] this run's token  ARGV[2] job id  ARGV[3] now (ms)  ARGV[4] lease end (ms)
-- ARGV[5] concurrency  ARGV[6] the key's value  ARGV[7] its TTL (ms)  ARGV[8] wake channel
-- ARGV[9] wake message
-- Returns {owned 1|0, slot 1|0, records (HGETALL), written}: written is {} when the key was not
-- written (lock lost, no slot, step 0 already recorded), {'ok', listeners} or {'ok', '', PUBLISH
-- error} when it was, {'', SET error} when the SET failed.
${TAKE_SLOT_LUA}
local owned = redis.call('GET', KEYS[1]) == ARGV[1]
local records = redis.call('HGETALL', KEYS[2])
-- Taken whether or not the lock is held, as when the two went out side by side: a run that
-- lost its lock abandons the slot to the run that has the job (same member).
local slot = takeSlot(KEYS[3], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
if not owned or slot == 0 then return {owned and 1 or 0, slot, records, {}} end
for i = 1, #records, 2 do
  if records[i] == '0' then return {1, 1, records, {}} end
end
-- pcall: the reply says what failed, and a slot taken above stays with its lease (the worker
-- handles it as after any failed step).
local set = redis.pcall('SET', KEYS[4], ARGV[6], 'PX', ARGV[7])
if type(set) == 'table' and set.err then return {1, 1, records, {'', set.err}} end
local listeners = redis.pcall('PUBLISH', ARGV[8], ARGV[9])
if type(listeners) == 'table' and listeners.err then return {1, 1, records, {'ok', '', listeners.err}} end
return {1, 1, records, {'ok', listeners}}
`;

const run = luaScript(SOURCE);

export interface StopKeyWrite {
  readonly key: string;
  readonly value: string;
  readonly ttlMs: number;
  readonly channel: string;
  readonly message: string;
}

/** What the SET and PUBLISH answered, as the stop-key executor's pipeline would have seen it. */
export type StopKeyWritten =
  | { readonly setError: Error }
  | { readonly setError?: undefined; readonly listeners: number; readonly publishError?: Error };

export interface StopKeyClaim {
  readonly claim: ClaimResult;
  readonly slot: boolean;
  readonly records: Record<string, string>;
  /** Absent when the key was not written. */
  readonly written?: StopKeyWritten;
}

export async function claimStopKey(
  redis: Redis,
  keys: { lock: string; steps: string; rolling: string },
  o: { token: string; jobId: string; now: number; leaseUntil: number; concurrency: number; write: StopKeyWrite },
): Promise<StopKeyClaim> {
  const w = o.write;
  const [owned, slot, flat, written] = (await run(redis, [keys.lock, keys.steps, keys.rolling, w.key], [
    o.token, o.jobId, o.now, o.leaseUntil, o.concurrency, w.value, w.ttlMs, w.channel, w.message,
  ])) as [number, number, string[], unknown[]];
  const records: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) records[flat[i]!] = flat[i + 1]!;
  const claim: ClaimResult = Number(owned) === 1 ? 'owned' : 'lock-lost';
  return { claim, slot: Number(slot) === 1, records, ...(written.length > 0 ? { written: parseWritten(written) } : {}) };
}

function parseWritten(w: unknown[]): StopKeyWritten {
  if (w[0] !== 'ok') return { setError: new Error(String(w[1])) };
  if (w[1] === '') return { listeners: 0, publishError: new Error(String(w[2])) };
  return { listeners: Number(w[1]) };
}
