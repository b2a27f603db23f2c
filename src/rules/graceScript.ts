import type { DrainEvent } from '../ingest/DrainEvent.js';
import { eventTimeMs } from '../ingest/timestampMs.js';
import { readDynoLine, wantsDynoLine } from '../dynos/dynoLines.js';
import { LIFE_BOUNDS } from '../dynos/instanceLife.js';
import { START_BEFORE_FIRST_SAMPLE_MS } from '../dynos/instanceAt.js';
import type { RedisKeys } from '../keys.js';
import { CEDAR_DYNO, type LifeJudgement, type LifeQuery } from './grace.js';
import { instanceOf } from './instance.js';

/**
 * judgeLifecycle (grace.ts) inside the drain's body script: the stored lifecycle read, this
 * body's own lifecycle lines before each match merged in, and each match judged (instanceAt.ts,
 * graceSpell), in Lua, so the threshold votes after it take their grace and window start from
 * its reply in the same call instead of a read a round trip before. The same merges and the
 * same judgement as the TypeScript (test/rules/graceScriptEquivalence.test.ts keeps them equal).

  KEYS[1] life  hash (lifeScript.ts): 'r' -> release times; 'd:<dyno>' -> 's1,s2|uuid,first,last;…'
  ARGV[1] n dynos, then the dyno names; then the body's steps in line order, each one of
    'r', at                       a release line
    's', dyno #, at               a process start ('Starting process', 'starting to up')
    'm', dyno #, uuid, at         a memory sample of an instance
    'q', dyno #, t, named, after start ms, after release ms, vote time, predicted
                                  a match to judge (t its line's time; named the instance it names, or '');
                                  predicted: the body part whose prediction gates its vote (0: none)
  A query whose vote is gated by a prediction that does not reach its limit (\`predictionReaches\`,
  the body script's) is not judged: its vote is not cast, so its three strings are '' unread.
  Returns per 'q', in order, three strings: instance (or ''), grace spell (or ''), since (or '').
 */
/** A heroku dyno instance id as a Lua pattern: 8-4-4-4-12 lowercase hex digits. */
const hex = (n: number): string => '[0-9a-f]'.repeat(n);
const UUID_PATTERN = `^${hex(8)}%-${hex(4)}%-${hex(4)}%-${hex(4)}%-${hex(12)}$`;

export const LIVES_LUA = `
local liveMs, before, maxRel, maxStarts, maxInst = ${LIFE_BOUNDS.liveMs}, ${START_BEFORE_FIRST_SAMPLE_MS}, ${LIFE_BOUNDS.releases}, ${LIFE_BOUNDS.starts}, ${LIFE_BOUNDS.instances}
local function fmt(x) return string.format('%.0f', x + 0) end
local function times(text)
  local out = {}
  if text then for p in string.gmatch(text, '[^,]+') do local n = tonumber(p); if n then out[#out + 1] = n end end end
  return out
end
-- newestTimes: the newest n distinct times, ascending, after adding x.
local function addTime(list, x, n)
  for i = 1, #list do if list[i] == x then return list end end
  list[#list + 1] = x
  table.sort(list)
  while #list > n do table.remove(list, 1) end
  return list
end
-- Written out here, not built with string.rep on every call (the body runs this part's code per body).
local uuid = '${UUID_PATTERN}'
local function decode(text)
  local d = { starts = {}, inst = {} }
  if not text then return d end
  local bar = string.find(text, '|', 1, true)
  if not bar then return d end
  d.starts = times(string.sub(text, 1, bar - 1))
  for part in string.gmatch(string.sub(text, bar + 1), '[^;]+') do
    local id, f, l = string.match(part, '^([^,]*),([^,]*),([^,]*)')
    -- Each time parsed once (a tonumber is two strtod calls in Redis's Lua).
    local fx, lx = tonumber(f), tonumber(l)
    if id and fx and lx and string.match(id, uuid) then d.inst[#d.inst + 1] = {id, fx, lx} end
  end
  return d
end
-- The instances are kept unordered (every reader below finds by id or scans them all): past
-- maxInst, the last in newestInstances' order goes (the oldest last sample, the greater id on a
-- tie), one at a time, the set a sort and cut would keep, without a sort per memory sample.
local function sample(d, id, at)
  local inst = d.inst
  local cur
  for i = 1, #inst do if inst[i][1] == id then cur = inst[i] break end end
  if not cur then inst[#inst + 1] = {id, at, at} else
    if at < cur[2] then cur[2] = at end
    if at > cur[3] then cur[3] = at end
  end
  while #inst > maxInst do
    local w = 1
    for i = 2, #inst do
      local x, y = inst[i], inst[w]
      if x[3] < y[3] or (x[3] == y[3] and x[1] > y[1]) then w = i end
    end
    inst[w] = inst[#inst]
    inst[#inst] = nil
  end
end
local function latestStart(d, t)
  local best
  for i = 1, #d.starts do local s = d.starts[i]; if s <= t and (not best or s > best) then best = s end end
  for i = 1, #d.inst do local s = d.inst[i][2]; if s <= t and (not best or s > best) then best = s end end
  return best
end
local function startBefore(d, first)
  local best
  for i = 1, #d.starts do local s = d.starts[i]; if s <= first and s >= first - before and (not best or s > best) then best = s end end
  return best or first
end

-- ARGV numbers (sent by the service, always numeric) read as x + 0: one strtod, where
-- tonumber in Redis's Lua 5.1 is two (lua_isnumber, then lua_tonumber).
local n = (ARGV[1] + 0)
local fields = {'r'}
for i = 1, n do fields[i + 1] = 'd:' .. ARGV[1 + i] end
local got = redis.call('HMGET', KEYS[1], unpack(fields))
local releases = times(got[1] or nil)
local dynos = {}
for i = 1, n do dynos[i] = decode(got[i + 1] or nil) end

local out = {}
local a = n + 2
while a <= #ARGV do
  local kind = ARGV[a]
  if kind == 'r' then
    releases = addTime(releases, (ARGV[a + 1] + 0), maxRel)
    a = a + 2
  elseif kind == 's' then
    local d = dynos[(ARGV[a + 1] + 0)]
    d.starts = addTime(d.starts, (ARGV[a + 2] + 0), maxStarts)
    a = a + 3
  elseif kind == 'm' then
    sample(dynos[(ARGV[a + 1] + 0)], ARGV[a + 2], (ARGV[a + 3] + 0))
    a = a + 4
  else
    local d, t, named = dynos[(ARGV[a + 1] + 0)], (ARGV[a + 2] + 0), ARGV[a + 3]
    local afterStart, afterRelease, time = (ARGV[a + 4] + 0), (ARGV[a + 5] + 0), (ARGV[a + 6] + 0)
    local predicted = (ARGV[a + 7] + 0)
    a = a + 8
    if predicted > 0 and not predictionReaches(predicted) then
      -- Most of a body's queries are its memory samples' predict votes, and most of those are not cast.
      out[#out + 1] = ''
      out[#out + 1] = ''
      out[#out + 1] = ''
    else
      local instance, start = '', nil
      if named ~= '' then
        instance = named
        local own
        for i = 1, #d.inst do if d.inst[i][1] == named then own = d.inst[i] break end end
        if own and own[2] <= t then start = startBefore(d, own[2]) else start = latestStart(d, t) end
      else
        local oldest
        for i = 1, #d.inst do
          local x = d.inst[i]
          if not (x[2] > t or t > x[3] + liveMs) and (not oldest or x[2] < oldest[2] or (x[2] == oldest[2] and x[1] < oldest[1])) then oldest = x end
        end
        if oldest then instance = oldest[1] end
        start = latestStart(d, t)
      end
      local grace = ''
      if afterStart > 0 and start and t - start < afterStart then
        grace = 'start:' .. fmt(start)
      elseif afterRelease > 0 then
        local rel
        for i = 1, #releases do local r = releases[i]; if r <= t and (not rel or r > rel) then rel = r end end
        if rel and t - rel < afterRelease then grace = 'release:' .. fmt(rel) end
      end
      local since = ''
      if start then
        local s = time - (t - start)
        if s >= 0 then s = math.floor(s) else s = math.ceil(s) end
        since = fmt(s)
      end
      out[#out + 1] = instance
      out[#out + 1] = grace
      out[#out + 1] = since
    end
  end
end
return out
`;

/** The lifecycle part of a body, and where each query's judgement is in its reply. */
export interface LifecyclePart {
  readonly keys: readonly string[];
  readonly args: readonly (string | number)[];
  /** Per query: its 1-based place among the reply's judgements, 0 = judged undefined without Redis. */
  readonly slots: readonly number[];
}

/**
 * judgeLifecycle's work as the body script's `lives` part, for one app's body. Undefined when no
 * query has a Cedar dyno target (nothing to read). The body's lifecycle lines are decoded here
 * once, in line order, up to the last match that needs them. A query's `predicted` is the 1-based
 * body part of the prediction its vote waits for (BodyPart.predicted): not judged when that does
 * not reach.
 */
export function lifecyclePart(events: readonly DrainEvent[], queries: readonly (LifeQuery & { readonly predicted?: number })[], keys: RedisKeys): LifecyclePart | undefined {
  const slots: number[] = queries.map(() => 0);
  const dynoIndex = new Map<string, number>();
  const byEvent = new Map<DrainEvent, number[]>();
  let app: string | undefined;
  queries.forEach((q, i) => {
    if (!CEDAR_DYNO.test(q.target)) return;
    app ??= q.event.app;
    if (q.event.app !== app) throw new Error('lifecyclePart: one app per body');
    if (!dynoIndex.has(q.target)) dynoIndex.set(q.target, dynoIndex.size + 1);
    const list = byEvent.get(q.event);
    if (list) list.push(i);
    else byEvent.set(q.event, [i]);
  });
  if (app === undefined) return undefined;
  const args: (string | number)[] = [dynoIndex.size, ...dynoIndex.keys()];
  let left = byEvent.size;
  let slot = 0;
  for (const e of events) {
    if (left === 0) break;
    if (e.app !== app) continue;
    if (wantsDynoLine(e)) {
      const r = readDynoLine(e);
      if (r !== undefined) {
        if ('sample' in r) {
          const d = dynoIndex.get(r.sample.dyno);
          if (d !== undefined) args.push('m', d, r.sample.instance, Math.trunc(r.sample.at));
        } else if (r.event.kind === 'release') {
          args.push('r', Math.trunc(r.event.at));
        } else if (r.event.kind === 'start' || r.event.kind === 'up') {
          const d = dynoIndex.get(r.event.dyno);
          if (d !== undefined) args.push('s', d, Math.trunc(r.event.at));
        }
      }
    }
    const mine = byEvent.get(e);
    if (mine === undefined) continue;
    left--;
    for (const i of mine) {
      const q = queries[i]!;
      const t = eventTimeMs(q.event);
      if (!Number.isFinite(t)) continue;
      slots[i] = ++slot;
      args.push('q', dynoIndex.get(q.target)!, t, instanceOf(q.event, q.target) ?? '', q.grace?.afterStartMs ?? 0, q.grace?.afterReleaseMs ?? 0, q.time, q.predicted ?? 0);
    }
  }
  return { keys: [keys.dynoLife(app).life], args, slots };
}

/** One judgement of the `lives` reply (slot as lifecyclePart gave it). */
export function lifeJudgementOf(reply: readonly string[], slot: number): LifeJudgement | undefined {
  if (slot === 0) return undefined;
  const instance = reply[3 * slot - 3]!;
  const grace = reply[3 * slot - 2]!;
  const since = reply[3 * slot - 1]!;
  return {
    ...(instance !== '' ? { instance } : {}),
    ...(grace !== '' ? { grace } : {}),
    ...(since !== '' ? { sinceMs: Number(since) } : {}),
  };
}
