/**
 * Redis's own cost of the syslog stream's body script calls: the kept batches of the benchmark
 * stream go once through the service's pipeline (as bench/support/syslogBatches.ts), every body
 * script call is captured as sent (its encoded arguments), then the captured calls are sent again
 * `--passes` times, one after another, each pass under keys of its own (a fresh prefix: the same
 * state growing as in the first delivery). Printed per pass: redis-server's main-thread CPU
 * (INFO cpu) per stream line and per call, and the inner commands (INFO commandstats) per call.
 * `--count`: one more pass with a copy of the script that counts its `redis.call`s by part and
 * command (the reply's first element), printed as a table. Needs a private redis-server (CONFIG
 * RESETSTAT is called): `--port P`, else one is started.
 *
 *   node --import tsx bench/support/bodyRedisCost.ts [--lines 1000000] [--passes 3] [--port P] [--count]
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createMetrics } from '../../src/metrics.js';
import { redisKeys } from '../../src/keys.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { Pipeline } from '../../src/server/pipeline.js';
import { BODY_LUA } from '../../src/server/bodyScript.js';
import { BodyFlush } from '../../src/server/bodyFlush.js';
import { startPrivateRedis, deleteMatching } from './serveProcess.js';
import { BENCH_TOKEN, listenerBatches, streamRuleSet, syslogStream } from './syslogStream.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const LINES = arg('lines', 1_000_000);
const PASSES = arg('passes', 3);
const PORT = arg('port', 0);
const COUNT = process.argv.includes('--count');
const bi = process.argv.indexOf('--base');
/**
 * Another tree's body script (`--base DIR`): its passes alternate with this one's, on the same
 * captured calls, so only for a tree whose parts take the same arguments; otherwise run this file
 * in each tree, one after the other.
 */
const BASE = bi >= 0 ? process.argv[bi + 1]! : undefined;
const ci = process.argv.indexOf('--callgrind');
/** redis-server runs under callgrind (`--callgrind PID`): each pass's instructions are zeroed before and dumped after. */
const CALLGRIND = ci >= 0 ? process.argv[ci + 1]! : undefined;
const wi = process.argv.indexOf('--without');
/** Part codes (BODY_LUA's) whose parts are not run, for what they cost: 'p' answers 'few'. */
const WITHOUT = wi >= 0 ? process.argv[wi + 1]! : '';

const { stream, frames } = await syslogStream(LINES);
const ruleSet = streamRuleSet();

const redisUrl = PORT > 0 ? `redis://127.0.0.1:${PORT}` : await startPrivateRedis();
const redis = new Redis(redisUrl);
const prefix = `mallet-body-cost-${process.pid}`;
const keys = redisKeys(prefix, prefix);
const metrics = createMetrics(undefined, { defaults: false });
const logger = pino({ level: 'silent' });
const life = new RedisLifeStore(redis, keys);
const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => ruleSet, life });
const observers = [new DynoObserver(new RedisDynoStore(redis, keys), undefined, life)];
const pipeline = new Pipeline({ redis, keys, engine, sink: { submit: async () => [] }, observers, metrics, logger });

// The listener's batches, as syslogBatches.ts makes them.
const batches = listenerBatches(stream, (line) => pipeline.wants(line));

// Every body script call as sent (numkeys, keys, then ARGV), captured at the flush.
const captured: (readonly (string | number)[])[] = [];
const real = BodyFlush.prototype.call;
BodyFlush.prototype.call = function (this: BodyFlush, key: string, call: readonly (string | number)[]) {
  captured.push([...call]);
  return real.call(this, key, call);
};
for (const [i, b] of batches.entries()) {
  await pipeline.ingest({ app: 'bench-app', drainToken: BENCH_TOKEN, frameId: `c${i}`, dedupe: false, receivedAt: Date.now(), messages: b.messages, passedOver: b.passedOver });
}
BodyFlush.prototype.call = real;
const kept = batches.reduce((n, b) => n + b.messages.length, 0);
console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${frames} lines, ${kept} kept, ${captured.length} body script calls captured`);

const STUBS: Record<string, string> = { p: "{'few', '0', '', '', '', ''}", t: "{'counting', 0}", d: '{}', l: '{}', v: '{}', r: '{}', b: '{}' };
const script = WITHOUT === 'all' ? 'return 1' : WITHOUT === '' ? BODY_LUA : BODY_LUA.replace('\nlocal frameId = ARGV[1]', `\n${[...WITHOUT].map((c) => `parts.${c} = function() return ${STUBS[c]} end`).join('\n')}\nlocal frameId = ARGV[1]`);
{
  let args = 0;
  let bytes = 0;
  for (const c of captured) { args += c.length; for (const a of c) bytes += Buffer.byteLength(String(a)); }
  console.log(`per call: ${(args / captured.length).toFixed(0)} arguments, ${(bytes / captured.length / 1024).toFixed(1)} KiB`);
  // Parts by code over the calls (each call's last ARGV[6] arguments are its descriptors).
  const codes = new Map<string, number>();
  for (const c of captured) {
    const nk = Number(c[0]);
    const nParts = Number(c[nk + 6]);
    for (const d of c.slice(c.length - nParts)) codes.set(String(d)[0]!, (codes.get(String(d)[0]!) ?? 0) + 1);
  }
  console.log(`parts a pass: ${[...codes].map(([k, n]) => `${k} ${n}`).join(', ')}`);
}
const sha = createHash('sha1').update(script).digest('hex');
await redis.script('LOAD', script);
if (WITHOUT !== '') console.log(`parts not run: ${WITHOUT}`);
const info = async (section: string): Promise<string> => String(await redis.info(section));
const mainCpu = async (): Promise<number> => {
  const text = await info('cpu');
  const get = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(text)?.[1] ?? NaN);
  return (get('used_cpu_user_main_thread') + get('used_cpu_sys_main_thread')) * 1e6;
};

/** The captured calls under the keys of pass `n`. */
const withKeys = (call: readonly (string | number)[], n: number): (string | number)[] => {
  const nk = Number(call[0]);
  const out = [...call];
  for (let i = 1; i <= nk; i++) out[i] = String(out[i]).replace(prefix, `${prefix}-${n}`);
  return out;
};
const send = async (script: string, n: number): Promise<unknown[]> => {
  const replies: unknown[] = [];
  // Four in flight, as the listener hands its batches.
  const inFlight = new Set<Promise<unknown>>();
  for (const call of captured) {
    const p = (redis.call('EVALSHA', script, ...withKeys(call, n)) as Promise<unknown>).then((r) => { replies.push(r); });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 4) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return replies;
};

const scripts: { name: string; sha: string }[] = [{ name: BASE ? 'this tree' : '', sha }];
if (BASE) {
  const base = (await import(`${BASE}/src/server/bodyScript.ts`)) as { BODY_LUA: string };
  scripts.push({ name: 'base', sha: String(await redis.script('LOAD', base.BODY_LUA)) });
}
let passNo = 0;
for (let pass = 1; pass <= PASSES; pass++) {
  for (const s of pass % 2 === 1 ? scripts : [...scripts].reverse()) {
    passNo++;
    await redis.config('RESETSTAT');
    if (CALLGRIND) spawnSync('callgrind_control', ['-z', CALLGRIND]);
    const c0 = await mainCpu();
    const t0 = performance.now();
    await send(s.sha, passNo);
    const ms = performance.now() - t0;
    const cpu = (await mainCpu()) - c0;
    let ir = '';
    if (CALLGRIND) {
      const out = spawnSync('callgrind_control', ['-d', `pass${passNo}`, CALLGRIND], { encoding: 'utf8' });
      ir = ` (callgrind dump ${out.status === 0 ? 'written' : 'failed'})`;
    }
    let inner = 0;
    for (const m of (await info('commandstats')).matchAll(/cmdstat_([a-z|]+):calls=(\d+)/g)) if (!/^(evalsha|config|info)/.test(m[1]!)) inner += Number(m[2]);
    console.log(`pass ${pass}${s.name ? ` ${s.name}` : ''}: ${(ms / 1000).toFixed(2)} s, redis-server main thread ${(cpu / 1e6).toFixed(3)} s CPU = ${(cpu / frames).toFixed(3)} µs per stream line, ${(cpu / captured.length / 1000).toFixed(2)} ms per call, ${(inner / captured.length).toFixed(0)} inner commands per call; load ${loadavg()[0]!.toFixed(2)}${ir}`);
  }
}

if (COUNT) {
  // redis.call and pcall counted by the part that made them ('' = the body's own) and command.
  const counting = `local __counts, __part = {}, ''
local function __tally(...)
  local k = __part .. ' ' .. string.upper(tostring((...)))
  __counts[k] = (__counts[k] or 0) + 1
end
local function __count_call(...) __tally(...) return redis.call(...) end
local function __count_pcall(...) __tally(...) return redis.pcall(...) end
` + BODY_LUA
    .replace(/redis\.(p?call)\(/g, (_m, f: string) => `__count_${f}(`)
    .replace('r = parts[name](pk, pa)', `__part = name
    local __t0 = redis.call('TIME')
    r = parts[name](pk, pa)
    local __t1 = redis.call('TIME')
    __counts[name .. ' µs'] = (__counts[name .. ' µs'] or 0) + (__t1[1] - __t0[1]) * 1000000 + (__t1[2] - __t0[2])
    __part = ''`)
    .replace(/\nreturn out\n$/, `\nlocal __flat = {}
for k, v in pairs(__counts) do __flat[#__flat + 1] = k .. '=' .. v end
out[#out + 1] = __flat
return out\n`);
  const countingSha = String(await redis.script('LOAD', counting));
  const replies = await send(countingSha, 999);
  const totals = new Map<string, number>();
  for (const r of replies) {
    const list = (r as unknown[]).at(-1) as string[];
    if (!Array.isArray(list)) continue;
    for (const e of list) {
      const eq = e.lastIndexOf('=');
      totals.set(e.slice(0, eq), (totals.get(e.slice(0, eq)) ?? 0) + Number(e.slice(eq + 1)));
    }
  }
  let all = 0;
  for (const [k, n] of totals) if (!k.endsWith('µs')) all += n;
  console.log(`redis.call by part and command over ${captured.length} calls (${all} in all, ${(all / captured.length).toFixed(0)} per call):`);
  for (const [k, n] of [...totals].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(28)} ${String(n).padStart(8)}`);
}

await deleteMatching(redis, `${prefix}*`);
redis.disconnect();
process.exit(0);
