import type { Redis } from 'ioredis';
import type { Limits } from '../../rules/RuleSet.js';
import { HISTORY_BOUNDS, HISTORY_LUA } from '../../console/historyLua.js';
import { luaScript } from './redisScript.js';

/** The admission script's body, without the history functions it calls (the drain's body script pastes both once). */
export const ADMIT_FIRING_BODY_LUA = `
-- admitFiring: decides a firing's mode once per firing id — counting it against the storm guard
-- and flapping limits unless a mode was already chosen in the process (dry_run, silenced: those
-- count against nothing) — and records the decision in the history (historyLua.ts). A later
-- submission of the same firing (another replica, a retried frame) gets the first mode back and
-- is recorded as one \`duplicate\` record per firing, counting the submissions.
-- KEYS[1] storm guard sorted set of the app (member = firing id, score = time)
-- KEYS[2] flapping sorted set of app+target, whichever rule fired (member = firing id)
-- KEYS[3] admission string of the firing id ('<mode>|<submission>', decided the first time)
-- KEYS[4] the history's spell hash of rule+app+target  KEYS[5] history stream
-- KEYS[6] stats hash of the current 10-minute bucket
-- ARGV[1] firing id  ARGV[2] now (ms)
-- ARGV[3] per_app max  ARGV[4] per_app within (ms)  ARGV[5] flapping max  ARGV[6] flapping within (ms)
-- ARGV[7] admission TTL (ms)  ARGV[8] rule  ARGV[9] app  ARGV[10] target  ARGV[11] first trigger line
-- ARGV[12] mode chosen in the process ('' | dry_run | silenced)  ARGV[13] its reason
-- ARGV[14] held reason  ARGV[15] flapping reason  ARGV[16] submission id
-- ARGV[17] history max entries  ARGV[18] history retention (ms)  ARGV[19] firing time (ms)
-- ARGV[20] a predict rule's forecast ('' for other rules), kept in the record
-- Returns {mode, first}: mode execute | held | flapping | dry_run | silenced, first 1 when this
-- submission decided it.
local id, now = ARGV[1], tonumber(ARGV[2])
-- rule '' : no history to write (the script's equivalence test with its in-memory mirror).
local rule, spell, stream, stats = ARGV[8], KEYS[4], KEYS[5], KEYS[6]
local recording = rule ~= ''
local maxlen, retention = ARGV[17], tonumber(ARGV[18])
local prev = redis.call('GET', KEYS[3])
if prev then
  local sep = string.find(prev, '|', 1, true)
  local mode, sub = prev, ''
  if sep then mode, sub = string.sub(prev, 1, sep - 1), string.sub(prev, sep + 1) end
  if recording and sub ~= ARGV[16] then
    local entry = histOpen(spell, 'duplicate', id, 1e15, now)
    if entry then histFold(spell, 'duplicate', entry, nil, now)
    else histNew(stream, spell, 'duplicate', id, now, {'rule', rule, 'app', ARGV[9], 'target', ARGV[10], 'job', id, 'mode', mode}, maxlen, retention) end
    histStat(stats, rule, 'duplicate', 1)
  end
  return {mode, 0}
end
local function count(key, max, within)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - within)
  redis.call('ZADD', key, 'NX', now, id)
  -- Only "more than max" matters, so the newest max+1 are enough: the set stays bounded.
  redis.call('ZREMRANGEBYRANK', key, 0, -(max + 2))
  redis.call('PEXPIRE', key, within)
  return redis.call('ZCARD', key)
end
local mode, reason = ARGV[12], ARGV[13]
if mode == '' then
  local stormMax, flapMax = tonumber(ARGV[3]), tonumber(ARGV[5])
  local storm = count(KEYS[1], stormMax, tonumber(ARGV[4]))
  local flap = count(KEYS[2], flapMax, tonumber(ARGV[6]))
  mode, reason = 'execute', ''
  if flap > flapMax then mode, reason = 'flapping', ARGV[15] elseif storm > stormMax then mode, reason = 'held', ARGV[14] end
end
redis.call('SET', KEYS[3], mode .. '|' .. ARGV[16], 'PX', ARGV[7])

-- History: a run of held (or flapping) firings of one rule+target is one record; any other
-- decision for it ends the run.
if not recording then return {mode, 1} end
local kind = mode
if mode == 'execute' then kind = 'enqueued' end
local at = tonumber(ARGV[19])
local gaps = { held = tonumber(ARGV[4]), flapping = tonumber(ARGV[6]) }
for k, _ in pairs(gaps) do
  if k ~= kind then spellDel(spell, 's:' .. k) end
end
local entry = nil
if gaps[kind] then entry = histOpen(spell, kind, kind, gaps[kind], at) end
if entry then histFold(spell, kind, entry, nil, at)
else
  local fields = {'rule', rule, 'app', ARGV[9], 'target', ARGV[10], 'job', id, 'mode', mode, 'reason', reason, 'line', ARGV[11]}
  if ARGV[20] ~= '' then fields[#fields + 1] = 'prediction'; fields[#fields + 1] = ARGV[20] end
  histNew(stream, spell, kind, kind, at, fields, maxlen, retention)
end
histStat(stats, rule, kind, 1)
return {mode, 1}
`;

const run = luaScript(`${HISTORY_LUA}\n${ADMIT_FIRING_BODY_LUA}`);

export type Admission = 'execute' | 'held' | 'flapping' | 'dry_run' | 'silenced';

export interface AdmissionKeys {
  readonly storm: string;
  readonly flapping: string;
  readonly admission: string;
  /** The history's spell hash of rule+app+target, the app's history stream and stats bucket. */
  readonly spell: string;
  readonly history: string;
  readonly stats: string;
}

/** What the history records of the decision; absent: nothing is recorded. */
export interface AdmissionRecord {
  readonly rule: string;
  readonly app: string;
  readonly target: string;
  readonly firedAt: number;
  /** The first trigger line, cut to HISTORY_BOUNDS.lineBytes. */
  readonly line: string;
  readonly reasons: { readonly held: string; readonly flapping: string };
  /** Random per submit() call: tells a duplicate submission from the first. */
  readonly submission: string;
  /** A predict rule's forecast (Firing.prediction), shown with the record. */
  readonly prediction?: string;
}

/** A mode decided before the limits are asked (dry_run, silenced): it counts toward nothing. */
export interface AdmissionPreset {
  readonly mode: 'dry_run' | 'silenced';
  readonly reason: string;
}

/** The script's KEYS and ARGV for one firing: its own call, or a part of the drain's body script. */
export function admissionCall(keys: AdmissionKeys, firingId: string, now: number, limits: Limits, record?: AdmissionRecord, preset?: AdmissionPreset): { keys: string[]; args: (string | number)[] } {
  const ttl = Math.max(limits.perApp.withinMs, limits.flapping.withinMs, 3_600_000);
  return {
    keys: [keys.storm, keys.flapping, keys.admission, keys.spell, keys.history, keys.stats],
    args: [
      firingId, now, limits.perApp.maxFirings, limits.perApp.withinMs, limits.flapping.maxFirings, limits.flapping.withinMs, ttl,
      record?.rule ?? '', record?.app ?? '', record?.target ?? '', record?.line ?? '', preset?.mode ?? '', preset?.reason ?? '',
      record?.reasons.held ?? '', record?.reasons.flapping ?? '', record?.submission ?? '',
      HISTORY_BOUNDS.maxEntries, HISTORY_BOUNDS.retentionMs, Math.trunc(record?.firedAt ?? now), record?.prediction ?? '',
    ],
  };
}

const KNOWN: readonly string[] = ['execute', 'held', 'flapping', 'dry_run', 'silenced'];

/** The script's reply {mode, first} as an Admission (an unknown mode: execute, as before). */
export function admissionOf(reply: unknown): Admission {
  const mode = String((reply as [unknown, unknown])[0]);
  return KNOWN.includes(mode) ? (mode as Admission) : 'execute';
}

export async function admitFiring(
  redis: Redis,
  keys: AdmissionKeys,
  firingId: string,
  now: number,
  limits: Limits,
  record?: AdmissionRecord,
  preset?: AdmissionPreset,
): Promise<Admission> {
  const call = admissionCall(keys, firingId, now, limits, record, preset);
  return admissionOf(await run(redis, call.keys, call.args));
}
