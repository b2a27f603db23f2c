/**
 * Measurement only: the drain's body script with each part's call timed inside Redis
 * (redis.call('TIME') around it), the totals kept in a hash of the run's own, so a private Redis
 * says which part of the one call costs what. Defined on the connection before the pipeline's
 * BodyScript, which then finds the command there and uses it. TIME costs ~1 µs a call, charged
 * to the overhead line (time outside the parts).
 */
import type { Redis } from 'ioredis';
import { BODY_LUA } from '../../src/server/bodyScript.js';

const CALL = '    r = parts[name](pk, pa)\n';

export function timedBodyLua(statsKey: string): string {
  if (!BODY_LUA.includes(CALL)) throw new Error('bodyPartTimes: the body script no longer calls its parts as expected');
  const clock = `local function usNow() local t = redis.call('TIME'); return tonumber(t[1]) * 1000000 + tonumber(t[2]) end\nlocal tStart = usNow()\nlocal tParts = {}\nlocal tSamples = {}\n`;
  let lua = BODY_LUA.replace('\nlocal frameId = ARGV[1]\n', `\n${clock}local frameId = ARGV[1]\n`);
  lua = lua.replace(CALL, `    local t0 = usNow()\n${CALL}    local dt = usNow() - t0\n    tParts[name] = (tParts[name] or 0) + dt\n    tSamples[#tSamples + 1] = name\n    tSamples[#tSamples + 1] = dt\n    tParts['n' .. name] = (tParts['n' .. name] or 0) + 1\n`);
  const flush = `local tAll = usNow() - tStart\ntParts.mark = usNow() - tMark\nlocal tIn = 0\nfor k, v in pairs(tParts) do redis.call('HINCRBY', '${statsKey}', k, v); if #k == 1 or k == 'check' or k == 'mark' then tIn = tIn + v end end\nredis.call('HINCRBY', '${statsKey}', 'all', tAll)\nfor i = 1, #tSamples, 2 do redis.call('RPUSH', '${statsKey}:' .. tSamples[i], tSamples[i + 1]) end\nredis.call('RPUSH', '${statsKey}:all', tAll)\nredis.call('RPUSH', '${statsKey}:outside', tAll - tIn)\nredis.call('RPUSH', '${statsKey}:check', tParts.check)\nredis.call('RPUSH', '${statsKey}:mark', tParts.mark)\nredis.call('HINCRBY', '${statsKey}', 'outside', tAll - tIn)\nredis.call('HINCRBY', '${statsKey}', 'bodies', 1)\n`;
  lua = lua.replace("local out = {'open'}\n", "local out = {'open'}\ntParts.check = usNow() - tStart\n");
  lua = lua.replace("if frameId == '' then\n", "local tMark = usNow()\nif frameId == '' then\n");
  // Before every return of the script's own top level (the duplicate return is rare: not timed).
  lua = lua.replace(/\nreturn out\n$/, `\n${flush}return out\n`);
  return lua;
}

export function defineTimedBody(redis: Redis, statsKey: string): void {
  redis.defineCommand('malletBody', { lua: timedBodyLua(statsKey) });
}

const NAMES: Record<string, string> = { b: 'budget', p: 'predict', v: 'lives', t: 'threshold', r: 'rejection', d: 'dynos', l: 'life' };

export interface PartTime {
  /** Mean µs per body (preemption included: a loaded machine inflates it). */
  readonly usPerBody: number;
  readonly callsPerBody: number;
  /** Median µs per call (robust to the odd preempted call) and that times calls per body. */
  readonly medianUsPerCall: number;
  readonly medianUsPerBody: number;
}

export async function partTimes(redis: Redis, statsKey: string): Promise<Record<string, PartTime>> {
  const h = await redis.hgetall(statsKey);
  const bodies = Number(h.bodies ?? 0);
  const out: Record<string, PartTime> = {};
  const row = async (name: string, code: string, calls: number): Promise<void> => {
    const list = (await redis.lrange(`${statsKey}:${code}`, 0, -1)).map(Number).sort((a, b) => a - b);
    if (list.length === 0) return;
    const median = list[Math.floor(list.length / 2)]!;
    const sum = list.reduce((a, b) => a + b, 0);
    out[name] = { usPerBody: sum / bodies, callsPerBody: calls / bodies, medianUsPerCall: median, medianUsPerBody: (median * calls) / bodies };
  };
  for (const [code, name] of Object.entries(NAMES)) await row(name, code, Number(h[`n${code}`] ?? 0));
  for (const k of ['check', 'mark', 'outside', 'all']) await row(k, k, bodies);
  return out;
}

/**
 * Measurement only: the body script with every redis.call counted per part and command (the
 * counting wrapper costs time of its own, so this build is for counts, not times).
 */
export function countingBodyLua(statsKey: string): string {
  if (!BODY_LUA.includes(CALL)) throw new Error('bodyPartTimes: the body script no longer calls its parts as expected');
  const head = `local cPart = 'top'\nlocal cCounts = {}\nlocal function rcall(cmd, ...)\n  local k = cPart .. ':' .. string.lower(cmd)\n  cCounts[k] = (cCounts[k] or 0) + 1\n  return redis.call(cmd, ...)\nend\n`;
  let lua = BODY_LUA.replace(/redis\.call\(/g, 'rcall(');
  lua = lua.replace(/^(--\[\[[\s\S]*?\]\]\n)/, `$1${head}`);
  lua = lua.replace(CALL, `    cPart = name\n${CALL}    cPart = 'top'\n`);
  lua = lua.replace(/\nreturn out\n$/, `\nfor k, v in pairs(cCounts) do redis.call('HINCRBY', '${statsKey}:calls', k, v) end\nreturn out\n`);
  return lua;
}

export function defineCountingBody(redis: Redis, statsKey: string): void {
  redis.defineCommand('malletBody', { lua: countingBodyLua(statsKey) });
}

/** redis.calls per body, by part and command. */
export async function partCalls(redis: Redis, statsKey: string, bodies: number): Promise<Record<string, number>> {
  const h = await redis.hgetall(`${statsKey}:calls`);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(h).sort()) out[k] = Math.round((Number(v) / bodies) * 100) / 100;
  return out;
}

/**
 * Measurement only: the body script with one kind of part not run (a canned reply in its place:
 * every target admitted, every sample 'few', no lifecycle, every vote 'counting'), so the
 * difference in Redis's instructions (valgrind --tool=callgrind on the redis-server) or time is
 * that part's cost. Later parts see the canned answers, so this is an estimate.
 */
export function skippingBodyLua(code: string): string {
  if (!BODY_LUA.includes(CALL)) throw new Error('bodyPartTimes: the body script no longer calls its parts as expected');
  const canned = `    if string.find('${code}', name, 1, true) then
      if name == 'b' then r = {}; for i = 4, #pa do r[#r + 1] = 1 end
      elseif name == 'p' then r = {'few', '0', '', '', '', '0'}
      elseif name == 'v' then r = {}; for i = 1, 3 * #pa do r[i] = '' end
      elseif name == 't' then r = {'counting', 0}
      else r = 1 end
    else
${CALL}    end
`;
  return BODY_LUA.replace(CALL, canned);
}
