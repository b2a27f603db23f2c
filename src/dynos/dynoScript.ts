import type { Redis } from 'ioredis';
import type { RedisKeys } from '../keys.js';
import { CALL_LONG_LUA } from './luaSlices.js';
import { DYNO_BOUNDS, MINUTE_MS, minuteOfSlot, type DynoBounds } from './bounds.js';
import type { DynoBatch } from './DynoRecord.js';
import { eventMember, parseEventMember, pushSampleGroups, sortSnapshot, type DynoSnapshot, type DynoStore, type InstanceSeries } from './DynoStore.js';

/**
 * One delivery's dyno records for one app, atomic across replicas. `MemoryDynoStore`
 * (dynoMemory.ts) mirrors it for replay, and test/dynos/dynoStoreEquivalence.test.ts keeps the
 * two equal. Sample times are the lines' own; real-time expiry only collects abandoned apps.

  KEYS[1] instances  sorted set: series key -> last sample time
  KEYS[2] meta       hash: series key -> {i, d, b (first minute), f, l, q (quota MB), s (max swap MB)}
  KEYS[3] events     sorted set: 'kind|dyno|detail|at' -> at
  KEYS[4..] one series key per instance group below, in order

  ARGV[1] max instances   ARGV[2] retention ms   ARGV[3] max events   ARGV[4] fine slots
  ARGV[5] coarse step     ARGV[6] coarse slots   ARGV[7] max MB       ARGV[8] real-time ttl ms
  ARGV[9] n events, then n x (member, at)
  then per instance group: instance, dyno, n minutes, then n x (at, MB, quota MB or '', swap MB or ''): the first sample of each minute (DynoStore.ts)
 */
export const DYNO_LUA = `${CALL_LONG_LUA}
-- ARGV numbers (sent by the service, always numeric) read as x + 0: one strtod, where
-- tonumber in Redis's Lua 5.1 is two (lua_isnumber, then lua_tonumber).
local maxInst, retention, maxEvents = (ARGV[1] + 0), (ARGV[2] + 0), (ARGV[3] + 0)
local fine, step, coarse, maxMb = (ARGV[4] + 0), (ARGV[5] + 0), (ARGV[6] + 0), (ARGV[7] + 0)
local a = 10
local nEvents = (ARGV[9] + 0)
if nEvents > 0 then
  -- One ZADD for the delivery's events (NX holds per member, as one call each would).
  local add = {'ZADD', KEYS[3], 'NX'}
  for i = 1, nEvents do
    add[#add + 1] = ARGV[a + 1]
    add[#add + 1] = ARGV[a]
    a = a + 2
  end
  callLong(add, 3)
  local top = redis.call('ZRANGE', KEYS[3], '-1', '-1', 'WITHSCORES')
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. string.format('%.0f', tonumber(top[2]) - retention))
  local card = redis.call('ZCARD', KEYS[3])
  if card > maxEvents then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, card - maxEvents - 1) end
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
end

-- Every series' meta read in one HMGET and written in one HSET, the instances' times in one
-- ZADD, however many instances the delivery has samples of.
local metas = {}
if #KEYS > 3 then
  local got = redis.call('HMGET', KEYS[2], unpack(KEYS, 4))
  for k = 4, #KEYS do if metas[KEYS[k]] == nil then metas[KEYS[k]] = got[k - 3] end end
end
local putMeta = {'HSET', KEYS[2]}
local putLast = {'ZADD', KEYS[1]}
for k = 4, #KEYS do
  local key = KEYS[k]
  local inst, dyno, n = ARGV[a], ARGV[a + 1], (ARGV[a + 2] + 0)
  a = a + 3
  local raw = metas[key]
  local m
  if type(raw) == 'table' then m = raw elseif raw then m = cjson.decode(raw) else
    local first = (ARGV[a] + 0)
    m = { i = inst, d = dyno, b = math.floor(first / 60000), f = first, l = first, s = 0 }
  end
  metas[key] = m
  for j = 1, n do
    local at, mb, q, sw = (ARGV[a] + 0), (ARGV[a + 1] + 0), ARGV[a + 2], ARGV[a + 3]
    a = a + 4
    local off = math.floor(at / 60000) - m.b
    local slot = -1
    if off >= 0 then
      if off < fine then slot = off else
        slot = fine + math.floor((off - fine) / step)
        if slot >= fine + coarse then slot = -1 end
      end
    end
    if slot >= 0 then
      -- Numbers as text (%d, or ARGV as sent): a number argument of redis.call costs a %.17g.
      local cur = redis.call('GETRANGE', key, string.format('%d', slot * 2), string.format('%d', slot * 2 + 1))
      -- Only a slot's first sample counts: a later one (a retry, another line of the minute) changes nothing.
      if cur == '' or cur == '\\0\\0' then
        local v = math.min(maxMb, math.floor(mb + 0.5)) + 1
        redis.call('SETRANGE', key, string.format('%d', slot * 2), string.char(math.floor(v / 256), v % 256))
        if at < m.f then m.f = at end
        if at > m.l then m.l = at end
        if q ~= '' then m.q = tonumber(q) end
        if sw ~= '' and tonumber(sw) > m.s then m.s = tonumber(sw) end
      end
    end
  end
  putMeta[#putMeta + 1] = key
  putMeta[#putMeta + 1] = cjson.encode(m)
  putLast[#putLast + 1] = m.l
  putLast[#putLast + 1] = key
  redis.call('PEXPIRE', key, ARGV[8])
end
if #KEYS > 3 then
  callLong(putMeta, 2)
  callLong(putLast, 2)
end

if #KEYS > 3 then
  local top = redis.call('ZRANGE', KEYS[1], '-1', '-1', 'WITHSCORES')
  local old = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. string.format('%.0f', tonumber(top[2]) - retention))
  local total = redis.call('ZCARD', KEYS[1])
  local cut = old
  if total - old > maxInst then cut = total - maxInst end
  if cut > 0 then
    local victims = redis.call('ZRANGE', KEYS[1], 0, cut - 1)
    redis.call('DEL', unpack(victims))
    redis.call('HDEL', KEYS[2], unpack(victims))
    redis.call('ZREM', KEYS[1], unpack(victims))
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  redis.call('PEXPIRE', KEYS[2], ARGV[8])
end
return 1
`;

const COMMAND = 'malletDynos';
type WithDynos = { [COMMAND](numKeys: number, ...args: (string | number)[]): Promise<unknown> };
/** Real-time expiry: a day past the retention, so an app that stops sending is collected. */
const REAL_TTL_MS = DYNO_BOUNDS.retentionMs + 24 * 60 * 60 * 1000;

export interface MetaJson { i: string; d: string; b: number; f: number; l: number; q?: number; s: number }

/** Points of a series string: 2 bytes a slot, MB + 1, 0 = empty. */
export function decodeSeries(buf: Buffer, base: number, b: DynoBounds): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let slot = 0; slot * 2 + 1 < buf.length; slot++) {
    const v = buf.readUInt16BE(slot * 2);
    if (v !== 0) out.push([minuteOfSlot(slot, base, b) * MINUTE_MS, v - 1]);
  }
  return out;
}

export function seriesOf(m: MetaJson, points: Array<[number, number]>): InstanceSeries {
  return { instance: m.i, dyno: m.d, firstAt: m.f, lastAt: m.l, limitMb: m.q, maxSwapMb: m.s, points };
}

/** Series keys remembered (an optimisation only: past it they are made again). */
const MAX_SERIES_KEYS = 4096;

export class RedisDynoStore implements DynoStore {
  #lastApp = '';
  #lastKeys: ReturnType<RedisKeys['dynos']> | undefined;

  /** The last app's series keys by instance (an instance writes a sample a minute for hours). */
  readonly #seriesKeys = new Map<string, string>();

  /** The app's keys, kept for the last app (consecutive bodies are mostly one app's). */
  #dynoKeys(app: string): ReturnType<RedisKeys['dynos']> {
    if (this.#lastKeys === undefined || app !== this.#lastApp) {
      this.#lastKeys = this.keys.dynos(app);
      this.#lastApp = app;
      this.#seriesKeys.clear();
    }
    return this.#lastKeys;
  }

  /** keys.memorySeries(app, instance) for the app #dynoKeys last gave. */
  #seriesKey(app: string, instance: string): string {
    let key = this.#seriesKeys.get(instance);
    if (key === undefined) {
      if (this.#seriesKeys.size >= MAX_SERIES_KEYS) this.#seriesKeys.clear();
      this.#seriesKeys.set(instance, (key = this.keys.memorySeries(app, instance)));
    }
    return key;
  }

  constructor(private readonly redis: Redis, private readonly keys: RedisKeys, private readonly bounds: DynoBounds = DYNO_BOUNDS) {
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { lua: DYNO_LUA });
  }

  async write(app: string, batch: DynoBatch): Promise<void> {
    const p = this.part(app, batch);
    if (p === undefined) return;
    await (this.redis as unknown as WithDynos)[COMMAND](p.keys.length, ...p.keys, ...p.args);
  }

  /** write()'s script call as keys and args (a part of the drain's body script); undefined: nothing to write. */
  part(app: string, batch: DynoBatch): { name: 'dynos'; keys: string[]; args: (string | number)[] } | undefined {
    const { samples, events } = batch;
    if (samples.length === 0 && events.length === 0) return undefined;
    const k = this.#dynoKeys(app);
    const b = this.bounds;
    const keys = [k.instances, k.meta, k.events];
    const args: (string | number)[] = [b.maxInstances, b.retentionMs, b.maxEvents, b.fineSlots, b.coarseStepMinutes, b.coarseSlots, b.maxMb, REAL_TTL_MS, events.length];
    for (let i = 0; i < events.length; i++) args.push(eventMember(events[i]!), events[i]!.at);
    // The groups' instances land after the three keys, then become their series keys.
    pushSampleGroups(samples, keys, args);
    for (let i = 3; i < keys.length; i++) keys[i] = this.#seriesKey(app, keys[i]!);
    return { name: 'dynos', keys, args };
  }

  async read(app: string): Promise<DynoSnapshot> {
    const k = this.keys.dynos(app);
    const [meta, events] = await Promise.all([this.redis.hgetall(k.meta), this.redis.zrange(k.events, '0', '-1', 'WITHSCORES')]);
    const seriesKeys = Object.keys(meta);
    const bufs = seriesKeys.length ? await this.redis.mgetBuffer(...seriesKeys) : [];
    const instances = seriesKeys.map((key, i) => {
      const m = JSON.parse(meta[key]!) as MetaJson;
      return seriesOf(m, decodeSeries(bufs[i] ?? Buffer.alloc(0), m.b, this.bounds));
    });
    const evs = [];
    for (let i = 0; i + 1 < events.length; i += 2) {
      const e = parseEventMember(events[i]!, Number(events[i + 1]));
      if (e) evs.push(e);
    }
    return sortSnapshot(instances, evs);
  }
}
