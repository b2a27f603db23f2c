import type { Redis } from 'ioredis';
import type { RedisKeys } from '../keys.js';
import { DYNO_BOUNDS } from './bounds.js';
import { CALL_LONG_LUA } from './luaSlices.js';
import { batchByDyno, decodeDyno, decodeTimes, isEmptyBatch, LIFE_BOUNDS, lifeBatchOf, type AppLife, type DynoLife, type LifeBatch, type LifeStore } from './instanceLife.js';
import type { LifecycleEvent, MemorySample } from './DynoRecord.js';

/**
 * The rules' view of the lifecycle (instanceLife.ts) in Redis, written by the dyno observer after
 * each delivery, atomic across replicas. MemoryLifeStore (lifeMemory.ts) mirrors it and
 * test/dynos/instanceAt.test.ts ("life store: the Lua script and its in-memory mirror agree") keeps the two equal.

  KEYS[1] life   hash: 'r' -> release times 't1,t2'; 'd:<dyno>' -> 's1,s2|uuid,first,last;…'
  KEYS[2] index  sorted set: dyno -> newest time heard of (which names go first past the bound)

  ARGV[1] max releases  ARGV[2] max starts  ARGV[3] max instances  ARGV[4] max dynos  ARGV[5] real-time ttl ms
  ARGV[6] n releases, then the release times
  then per dyno: dyno, n starts, the starts, n samples, then n x (uuid, at)
 */
export const LIFE_LUA = `${CALL_LONG_LUA}
-- ARGV numbers (sent by the service, always numeric) read as x + 0: one strtod, where
-- tonumber in Redis's Lua 5.1 is two (lua_isnumber, then lua_tonumber).
local maxRel, maxStarts, maxInst, maxDynos = (ARGV[1] + 0), (ARGV[2] + 0), (ARGV[3] + 0), (ARGV[4] + 0)
-- A time read back from a stored field keeps its text: the field was written by fmt, so the
-- text is what fmt would give, and most of a dyno's times are rewritten unchanged on every
-- delivery (a %.0f costs more than the HSET they go out in). Only new times are formatted.
local text = {}
local function fmt(x) return text[x] or string.format('%.0f', x) end
local function times(field)
  local out = {}
  if field then for p in string.gmatch(field, '[^,|]+') do local x = tonumber(p); out[#out + 1] = x; if x == x and x then text[x] = p end end end
  return out
end
-- The newest n distinct times, ascending, as 't1,t2'.
local function newest(list, n)
  table.sort(list)
  local uniq = {}
  for i = 1, #list do if i == 1 or list[i] ~= list[i - 1] then uniq[#uniq + 1] = list[i] end end
  local out = {}
  for i = math.max(1, #uniq - n + 1), #uniq do out[#out + 1] = fmt(uniq[i]) end
  return table.concat(out, ',')
end

-- One read of every field the delivery touches and one write of them all, and the index raised
-- with GT (only ever raised, as a ZSCORE check would), however many dynos the delivery names.
local nRel = (ARGV[6] + 0)
local fields = {}
if nRel > 0 then fields[1] = 'r' end
local a = 7 + nRel
while a <= #ARGV do
  fields[#fields + 1] = 'd:' .. ARGV[a]
  local n = (ARGV[a + 1] + 0)
  a = a + 2 + n
  a = a + 1 + 2 * (ARGV[a] + 0)
end
local stored = {}
if #fields > 0 then
  local got = redis.call('HMGET', KEYS[1], unpack(fields))
  for i = 1, #fields do stored[fields[i]] = got[i] end
end
local put = {'HSET', KEYS[1]}
local heardOf = {'ZADD', KEYS[2], 'GT'}
local function keep(field, value)
  stored[field] = value
  put[#put + 1] = field
  put[#put + 1] = value
end

a = 7
if nRel > 0 then
  local rel = times(stored['r'] or nil)
  for i = 1, nRel do rel[#rel + 1] = (ARGV[a + i - 1] + 0) end
  keep('r', newest(rel, maxRel))
end
a = a + nRel

while a <= #ARGV do
  local dyno = ARGV[a]
  local field = 'd:' .. dyno
  local cur = stored[field] or nil
  local starts, inst = {}, {}
  -- heard's text as sent (ARGV): a number argument of redis.call costs a %.17g.
  local heard, heardText = 0, '0'
  if cur then
    local bar = string.find(cur, '|', 1, true)
    starts = times(string.sub(cur, 1, bar - 1))
    for part in string.gmatch(string.sub(cur, bar + 1), '[^;]+') do
      local id, f, l = string.match(part, '^([^,]+),([^,]+),([^,]+)$')
      if id then
        local fx, lx = tonumber(f), tonumber(l)
        inst[id] = {id, fx, lx}
        -- (x == x: NaN is no table key)
        if fx and fx == fx then text[fx] = f end
        if lx and lx == lx then text[lx] = l end
      end
    end
  end
  local n = (ARGV[a + 1] + 0)
  for i = 1, n do
    local s = (ARGV[a + 1 + i] + 0)
    starts[#starts + 1] = s
    if s > heard then heard, heardText = s, ARGV[a + 1 + i] end
  end
  a = a + 2 + n
  n = (ARGV[a] + 0)
  for i = 1, n do
    local id, at = ARGV[a + 2 * i - 1], (ARGV[a + 2 * i] + 0)
    local x = inst[id]
    if not x then inst[id] = {id, at, at} else
      if at < x[2] then x[2] = at end
      if at > x[3] then x[3] = at end
    end
    if at > heard then heard, heardText = at, ARGV[a + 2 * i] end
  end
  a = a + 1 + 2 * n
  local list = {}
  for _, x in pairs(inst) do list[#list + 1] = x end
  table.sort(list, function(x, y)
    if x[3] ~= y[3] then return x[3] > y[3] end
    return x[1] < y[1]
  end)
  local parts = {}
  for i = 1, math.min(#list, maxInst) do parts[#parts + 1] = list[i][1] .. ',' .. fmt(list[i][2]) .. ',' .. fmt(list[i][3]) end
  keep(field, newest(starts, maxStarts) .. '|' .. table.concat(parts, ';'))
  heardOf[#heardOf + 1] = heardText
  heardOf[#heardOf + 1] = dyno
end
if #put > 2 then callLong(put, 2) end
if #heardOf > 3 then callLong(heardOf, 3) end

local card = redis.call('ZCARD', KEYS[2])
if card > maxDynos then
  local gone = redis.call('ZRANGE', KEYS[2], 0, card - maxDynos - 1)
  for i = 1, #gone do redis.call('HDEL', KEYS[1], 'd:' .. gone[i]) end
  redis.call('ZREM', KEYS[2], unpack(gone))
end
-- ARGV as sent: a number argument of redis.call costs a %.17g.
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
`;

const COMMAND = 'malletLife';
type WithLife = { [COMMAND](...args: (string | number)[]): Promise<unknown> };
/** Real-time expiry: as the trends (an app that stops sending is collected). */
export const LIFE_TTL_MS = DYNO_BOUNDS.retentionMs + 24 * 60 * 60 * 1000;

/** The script's arguments after the keys (shared with the equivalence test). */
export function lifeArgs(batch: LifeBatch): (string | number)[] {
  const b = LIFE_BOUNDS;
  const args: (string | number)[] = [b.releases, b.starts, b.instances, b.dynos, LIFE_TTL_MS, batch.releases.length, ...batch.releases];
  for (const [dyno, g] of batchByDyno(batch)) {
    args.push(dyno, g.starts.length, ...g.starts, g.samples.length);
    for (const [id, at] of g.samples) args.push(id, at);
  }
  return args;
}

/** Past this many records in one delivery, lifeArgsOf's pairwise grouping gives way to batchByDyno's map. */
const PAIRWISE_MAX = 16;

const isStart = (e: LifecycleEvent) => e.kind === 'start' || e.kind === 'up';

/**
 * lifeArgs(lifeBatchOf(samples, events)) without the batch, its tuples and batchByDyno's map:
 * what the dyno observer writes per delivery, which carries a record or a few, so the dynos are
 * found pairwise (in batchByDyno's order: those of the starts first, then those of the samples).
 * test/dynos/sampleArgs.test.ts holds the two equal.
 */
export function lifeArgsOf(samples: readonly MemorySample[], events: readonly LifecycleEvent[]): (string | number)[] {
  if (samples.length + events.length > PAIRWISE_MAX) return lifeArgs(lifeBatchOf(samples, events));
  const b = LIFE_BOUNDS;
  const args: (string | number)[] = [b.releases, b.starts, b.instances, b.dynos, LIFE_TTL_MS, 0];
  let releases = 0;
  for (let i = 0; i < events.length; i++) {
    if (events[i]!.kind === 'release') { args.push(Math.trunc(events[i]!.at)); releases++; }
  }
  args[5] = releases;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (isStart(e) && !startBefore(events, i, e.dyno)) pushDyno(args, e.dyno, samples, events);
  }
  for (let i = 0; i < samples.length; i++) {
    const d = samples[i]!.dyno;
    if (!startBefore(events, events.length, d) && !sampleBefore(samples, i, d)) pushDyno(args, d, samples, events);
  }
  return args;
}

/** Whether a start among events[0, i) is of `dyno`. */
function startBefore(events: readonly LifecycleEvent[], i: number, dyno: string): boolean {
  for (let j = 0; j < i; j++) if (events[j]!.dyno === dyno && isStart(events[j]!)) return true;
  return false;
}

function sampleBefore(samples: readonly MemorySample[], i: number, dyno: string): boolean {
  for (let j = 0; j < i; j++) if (samples[j]!.dyno === dyno) return true;
  return false;
}

/** One dyno's arguments: dyno, n starts, the starts, n samples, then n x (uuid, at). */
function pushDyno(args: (string | number)[], dyno: string, samples: readonly MemorySample[], events: readonly LifecycleEvent[]): void {
  args.push(dyno, 0);
  let at = args.length - 1;
  let n = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.dyno === dyno && isStart(e)) { args.push(Math.trunc(e.at)); n++; }
  }
  args[at] = n;
  args.push(0);
  at = args.length - 1;
  n = 0;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    if (s.dyno === dyno) { args.push(s.instance, Math.trunc(s.at)); n++; }
  }
  args[at] = n;
}

/** What lifeBatchOf keeps of an event: releases and starts. */
function isLifeEvent(e: LifecycleEvent): boolean {
  return e.kind === 'release' || isStart(e);
}

export class RedisLifeStore implements LifeStore {
  #lastApp = '';
  #lastKeys: ReturnType<RedisKeys['dynoLife']> | undefined;

  /** The app's keys, kept for the last app (consecutive bodies are mostly one app's). */
  #lifeKeys(app: string): ReturnType<RedisKeys['dynoLife']> {
    if (this.#lastKeys === undefined || app !== this.#lastApp) {
      this.#lastKeys = this.keys.dynoLife(app);
      this.#lastApp = app;
    }
    return this.#lastKeys;
  }

  constructor(private readonly redis: Redis, private readonly keys: RedisKeys) {
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 2, lua: LIFE_LUA });
  }

  async write(app: string, batch: LifeBatch): Promise<void> {
    if (isEmptyBatch(batch)) return;
    const k = this.keys.dynoLife(app);
    await (this.redis as unknown as WithLife)[COMMAND](k.life, k.index, ...lifeArgs(batch));
  }

  /**
   * write(app, lifeBatchOf(samples, events)) as a part of the drain's body script, the batch not
   * made (the dyno observer's write); undefined: nothing to write.
   */
  recordsPart(app: string, samples: readonly MemorySample[], events: readonly LifecycleEvent[]): { name: 'life'; keys: string[]; args: (string | number)[] } | undefined {
    if (samples.length === 0 && !events.some(isLifeEvent)) return undefined;
    const k = this.#lifeKeys(app);
    return { name: 'life', keys: [k.life, k.index], args: lifeArgsOf(samples, events) };
  }

  async read(app: string, dynos: readonly string[]): Promise<AppLife> {
    const k = this.keys.dynoLife(app);
    const got = await this.redis.hmget(k.life, 'r', ...dynos.map((d) => `d:${d}`));
    const map = new Map<string, DynoLife>();
    dynos.forEach((d, i) => { map.set(d, decodeDyno(got[i + 1])); });
    return { releases: decodeTimes(got[0]), dynos: map };
  }
}
