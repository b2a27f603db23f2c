/**
 * What encoding a drain body's script call costs in Node, without Redis time or HTTP: corpus
 * bodies through the pipeline (the example rules, the dyno observer, wired as service.ts wires
 * them, on a real Redis so the observers' and rules' state moves as in the service), each body's
 * script call captured as it is made; then the captured calls encoded again and again, timed
 * (encodeBody, then encodeScriptCall). Prints µs per body for each step and the call's shape.
 *
 *   node --import tsx bench/support/encodeCost.ts BODIES REDIS_URL [PASSES]
 *   ENCODE_COST_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no node --import tsx bench/support/encodeCost.ts …
 *     (instructions of the fresh-string encodeBody passes only: divide by PASSES × calls)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ensureCorpus } from '../corpus.js';
import { loadRules } from '../../src/rules/load.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { Pipeline } from '../../src/server/pipeline.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { BodyScript, encodeBody } from '../../src/server/bodyScript.js';
import type { BodyPart } from '../../src/bodyPart.js';
import { encodeScriptCall } from '../../src/server/respCall.js';
import { cleanupPrefix } from '../../test/support/redis.js';

const bodies = Number(process.argv[2] ?? 300);
const redis = new Redis(process.argv[3] ?? 'redis://127.0.0.1:6379');
const passes = Number(process.argv[4] ?? 20);
const corpus = await ensureCorpus(100_000);
const bytes = readFileSync(corpus.file);
const loaded = await loadRules(new URL('../../config/rules.example.yml', import.meta.url).pathname, process.env, { allowUnsetEnv: true });
if (!loaded.ok) throw new Error('example rules do not load');
const prefix = `mallet-encode-${process.pid}`;
const keys = redisKeys(prefix);
const metrics = createMetrics(undefined, { defaults: false });
const logger = pino({ level: 'silent' });
const life = new RedisLifeStore(redis, keys);
const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => loaded.ruleSet, life });
const pipeline = new Pipeline({ redis, keys, engine, sink: { submit: async (f) => f.map(() => 'enqueued' as const) }, observers: [new DynoObserver(new RedisDynoStore(redis, keys), undefined, life)], metrics, logger });
const calls: Array<[string, string, number, boolean, readonly BodyPart[]]> = [];
const original = BodyScript.prototype.run;
// The first encoding of each call, timed as it is made: the strings as the service has them (a
// key built again per vote is fresh, a remembered one is not), wall time around it.
let liveNs = 0n;
let liveCalls = 0;
BodyScript.prototype.run = function (framesKey, frameId, now, mark, parts) {
  const t0 = process.hrtime.bigint();
  encodeScriptCall({ lua: '', sha: '0'.repeat(40) }, encodeBody(framesKey, frameId, now, mark, parts));
  liveNs += process.hrtime.bigint() - t0;
  if (calls.length >= 20) liveCalls++;
  else liveNs = 0n;
  calls.push([framesKey, frameId, now, mark, parts]);
  return original.call(this, framesKey, frameId, now, mark, parts);
};
const run = Date.now().toString(16);
for (let i = 0; i < bodies; i++) {
  const b = corpus.index[i % corpus.index.length]!;
  const body = bytes.subarray(b.offset, b.offset + b.length);
  await pipeline.ingest({ app: 'cost-app', drainToken: 'd.1', frameId: `${run}-${i}`, dedupe: true, receivedAt: Date.now(), messages: parseLogplexBody(body).messages });
}
const script = { lua: 'return 1', sha: '0'.repeat(40) };
let args = 0;
let sink = 0;
const time = (f: () => void): number => {
  for (let w = 0; w < 3; w++) f();
  const t0 = process.cpuUsage();
  for (let p = 0; p < passes; p++) f();
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / (passes * calls.length);
};
// Each pass gets fresh copies of the strings (flat, their hashes not yet computed), as each body's
// are in the service: a string seen again has its hash cached, which would flatter a Map.
const fresh = (x: string | number): string | number => (typeof x === 'string' ? Buffer.from(x, 'utf8').toString('utf8') : x);
const copies = (): typeof calls => calls.map(([k, f, n, m, parts]) => [fresh(k) as string, fresh(f) as string, n, m, parts.map((p) => ({ ...p, keys: p.keys.map((x) => fresh(x) as string), args: p.args.map(fresh) }))]);
const encoded = calls.map((c) => encodeBody(...c));
for (const e of encoded) args += e.length;
const timeFresh = <T>(make: () => T[], f: (x: T) => number): number => {
  const sets = Array.from({ length: passes + 3 }, make);
  let k = 0;
  for (let w = 0; w < 3; w++) for (const x of sets[k++]!) sink += f(x);
  const t0 = process.cpuUsage();
  if (counting === f) ctl(true);
  for (let p = 0; p < passes; p++) for (const x of sets[k++]!) sink += f(x);
  if (counting === f) ctl(false);
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / (passes * calls.length);
};
const encodeUs = time(() => { for (const c of calls) sink += encodeBody(...c).length; });
const respUs = time(() => { for (const e of encoded) sink += encodeScriptCall(script, e).bytes.length; });
const encodeFresh = (c: (typeof calls)[number]): number => encodeBody(...c).length;
// ENCODE_COST_CALLGRIND=1 under `valgrind --tool=callgrind --instr-atstart=no`: only the fresh encodeBody passes are counted.
const counting: unknown = process.env.ENCODE_COST_CALLGRIND ? encodeFresh : undefined;
const ctl = (on: boolean) => execFileSync('callgrind_control', ['-i', on ? 'on' : 'off', String(process.pid)], { stdio: 'ignore' });
const encodeFreshUs = timeFresh(copies, encodeFresh);
const respFreshUs = timeFresh(() => encoded.map((e) => e.map(fresh)), (e) => encodeScriptCall(script, e).bytes.length);
console.log(JSON.stringify({ liveEncodeUs: Number(liveNs) / 1000 / liveCalls, calls: calls.length, argsPerCall: args / calls.length, encodeBodyUs: encodeUs, encodeScriptCallUs: respUs, encodeBodyFreshUs: encodeFreshUs, encodeScriptCallFreshUs: respFreshUs, sink }));
await cleanupPrefix(redis, prefix);
redis.disconnect();
