/**
 * The syslog path's kept lines through the service's own pipeline (RulesEngine with the body
 * script, the dyno observer, Redis), without the socket: the benchmark stream is framed and
 * prefiltered by LogplexStream as the listener does (64 KiB reads, batches of 1 MiB read or 4096
 * kept lines), then each batch goes to pipeline.ingest, four in flight, as the listener hands
 * them. What remains of `mallet serve`'s syslog CPU once the listener's own path is taken away.
 * A private redis-server is started (and killed) unless REDIS_URL is set.
 *
 *   node --import tsx bench/support/syslogBatches.ts [--lines 1000000] [--rounds 2] [--warmup 1] [--profile out.cpuprofile] [--parts] [--encode [--encode-split] [--encode-rounds N]]
 *   CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no [--separate-threads=yes] node --expose-gc --import tsx bench/support/syslogBatches.ts …
 *     (instructions of the measured rounds only: divide by rounds × kept lines; --expose-gc: each
 *     measured round starts from a collected heap, see below; main thread: file -01)
 * (each round its own messages, read from the stream again before it; `--reuse`: the first round's
 *  messages in every round, each then wrapped as the event of a later batch (drainEvents.ts);
 *  `--admission`: the sink admits the firings in the body script, as the action queue does;
 *  `--parts`: what the body script calls carry: parts, keys and values per batch, by part name;
 *  `--encode`: the calls' parts captured once, then encodeBody alone timed over them (then with
 *  encodeScriptCall, the RESP bytes), and with
 *  `--encode-split` its two halves apart: String() of each argument, the index tables)
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createMetrics } from '../../src/metrics.js';
import { redisKeys } from '../../src/keys.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { BodyAdmission } from '../../src/actions/bodyAdmission.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { Pipeline } from '../../src/server/pipeline.js';
import * as bodyScript from '../../src/server/bodyScript.js';
import { encodeScriptCall } from '../../src/server/respCall.js';
import type { BodyPart } from '../../src/bodyPart.js';
import { startPrivateRedis, deleteMatching } from './serveProcess.js';
import { BENCH_TOKEN, listenerBatches, streamRuleSet, syslogStream } from './syslogStream.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const LINES = arg('lines', 1_000_000);
const ROUNDS = arg('rounds', 2);
// Unmeasured rounds first (the code optimized; under callgrind the compiler threads' work left out).
const WARMUP = arg('warmup', 1);
const pi = process.argv.indexOf('--profile');
const PROFILE = pi >= 0 ? process.argv[pi + 1] : undefined;
const PARTS = process.argv.includes('--parts');
const ENCODE = process.argv.includes('--encode');

const { stream, frames } = await syslogStream(LINES);
const ruleSet = streamRuleSet();

const redisUrl = process.env.REDIS_URL ?? (await startPrivateRedis());
const redis = new Redis(redisUrl);
const prefix = `mallet-syslog-batches-${process.pid}`;
const keys = redisKeys(prefix, prefix);
const metrics = createMetrics(undefined, { defaults: false });
const logger = pino({ level: 'silent' });
const life = new RedisLifeStore(redis, keys);
const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => ruleSet, life });
const observers = [new DynoObserver(new RedisDynoStore(redis, keys), undefined, life)];
let firings = 0;
const ADMISSION = process.argv.includes('--admission');
const pipeline = new Pipeline({ redis, keys, engine, observers, metrics, logger, sink: {
  submit: async (f) => { firings += f.length; return []; },
  ...(ADMISSION ? { admission: () => new BodyAdmission({ keys, limits: ruleSet.limits, globalDryRun: false, silences: [], now: Date.now() }) } : {}),
} });

// The listener's batches. Which lines are kept does not change between rounds, but each round
// has its own, the stream read again before the rounds, as the listener would: a message is the
// DrainEvent of the first batch it is ingested in, and one ingested again is wrapped
// (drainEvents.ts), which is not the listener's path (`--reuse`: the first round's messages again).
const REUSE = process.argv.includes('--reuse');
const wants = (line: Parameters<typeof pipeline.wants>[0]) => pipeline.wants(line);
let batches = listenerBatches(stream, wants);
const kept = batches.reduce((n, b) => n + b.messages.length, 0);
console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${frames} lines in ${batches.length} batches, ${kept} kept (${(kept / batches.length).toFixed(0)} per batch)`);

if (PARTS) {
  // What one body script call carries, summed over the stream.
  const real = bodyScript.encodeBody;
  const byName = new Map<string, { parts: number; keys: number; args: number; argChars: number }>();
  let calls = 0;
  let values = 0;
  let valueChars = 0;
  const probe = (parts: readonly BodyPart[]) => {
    calls++;
    for (const p of parts) {
      const row = byName.get(p.name) ?? { parts: 0, keys: 0, args: 0, argChars: 0 };
      byName.set(p.name, row);
      row.parts++;
      row.keys += p.keys.length;
      row.args += p.args.length;
      for (const a of p.args) row.argChars += String(a).length;
    }
    const call = real('k', '', 0, true, parts);
    const v = Number(call[Number(call[0]) + 7]);
    values += v;
    for (let i = 0; i < v; i++) valueChars += String(call[Number(call[0]) + 8 + i]).length;
  };
  const engineAny = engine as unknown as { prepareBody: RulesEngine['prepareBody'] };
  const prepare = engineAny.prepareBody.bind(engine);
  engineAny.prepareBody = (events, admission) => { const b = prepare(events, admission); probe(b.parts); return b; };
  for (const [i, b] of batches.entries()) await pipeline.ingest({ app: 'bench-app', drainToken: BENCH_TOKEN, frameId: `p${i}`, dedupe: false, receivedAt: Date.now(), messages: b.messages, passedOver: b.passedOver });
  console.log(`rules' parts over ${calls} calls (observer parts not included):`);
  for (const [name, r] of byName) console.log(`  ${name}: ${r.parts} parts, ${r.keys} keys, ${r.args} args (${(r.argChars / 1024).toFixed(0)} KiB)`);
  console.log(`  distinct values sent: ${values} (${(valueChars / 1024).toFixed(0)} KiB)`);
  engineAny.prepareBody = prepare;
}

if (ENCODE) {
  const captured: (readonly BodyPart[])[] = [];
  const run = bodyScript.BodyScript.prototype.run;
  bodyScript.BodyScript.prototype.run = function (this: bodyScript.BodyScript, framesKey, frameId, now, mark, parts) {
    captured.push(parts);
    return run.call(this, framesKey, frameId, now, mark, parts);
  };
  for (const [i, b] of batches.entries()) await pipeline.ingest({ app: 'bench-app', drainToken: BENCH_TOKEN, frameId: `e${i}`, dedupe: false, receivedAt: Date.now(), messages: b.messages, passedOver: b.passedOver });
  bodyScript.BodyScript.prototype.run = run;
  if (process.argv.includes('--encode-split')) {
    // Where encodeBody's time goes: making each argument a string, and the index tables.
    const time = (what: string, f: () => number) => {
      for (let r = 0; r < 4; r++) {
        const c0 = process.cpuUsage();
        const n = f();
        const cpu = process.cpuUsage(c0);
        if (r > 0) console.log(`  ${what}: ${((cpu.user + cpu.system) / captured.length).toFixed(0)} µs per call (${n})`);
      }
    };
    time('String() of each argument', () => { let n = 0; for (const parts of captured) for (const p of parts) for (const a of p.args) n += (typeof a === 'string' ? a : String(a)).length; return n; });
    const flat = captured.map((parts) => parts.map((p) => ({ keys: p.keys, args: p.args.map((a) => (typeof a === 'string' ? a : String(a))) })));
    let numbers = 0;
    let long = 0;
    for (const parts of captured) for (const p of parts) for (const a of p.args) { if (typeof a === 'number') numbers++; else if (a.length > 64) long++; }
    console.log(`  ${numbers} number arguments, ${long} strings over 64 chars`);
    time('Map get/set of keys and arguments', () => {
      let n = 0;
      const m = new Map<string, number>();
      for (const parts of flat) {
        for (const p of parts) {
          for (const k of p.keys) { let i = m.get(k); if (i === undefined) m.set(k, (i = m.size)); n += i; }
          for (const a of p.args) { let i = m.get(a); if (i === undefined) m.set(a, (i = m.size)); n += i; }
        }
        m.clear();
      }
      return n;
    });
  }
  for (let round = 0; round < 6; round++) {
    const c0 = process.cpuUsage();
    let n = 0;
    for (const parts of captured) n += bodyScript.encodeBody('k', '', Date.now(), true, parts).length;
    const cpu = process.cpuUsage(c0);
    if (round > 0) console.log(`encodeBody over ${captured.length} calls (${n} arguments): ${((cpu.user + cpu.system) / captured.length).toFixed(0)} µs per call, ${((cpu.user + cpu.system) / frames).toFixed(3)} µs per stream line`);
  }
  // Then the calls' RESP bytes (respCall.ts), as BodyFlush makes them on one Redis.
  const script = { lua: '', sha: '0'.repeat(40) };
  for (let round = 0; round < 6; round++) {
    // Under callgrind (CALLGRIND=1 … --encode --rounds 0 --warmup 0): these rounds' instructions only.
    if (round === 1 && process.env.CALLGRIND) spawnSync('callgrind_control', ['-i', 'on', String(process.pid)]);
    const c0 = process.cpuUsage();
    let n = 0;
    for (const parts of captured) n += encodeScriptCall(script, bodyScript.encodeBody('k', '', Date.now(), true, parts)).bytes.length;
    const cpu = process.cpuUsage(c0);
    if (round === 5 && process.env.CALLGRIND) spawnSync('callgrind_control', ['-i', 'off', String(process.pid)]);
    if (round > 0) console.log(`encodeBody + encodeScriptCall over ${captured.length} calls (${(n / captured.length / 1024).toFixed(1)} KiB a call): ${((cpu.user + cpu.system) / captured.length).toFixed(0)} µs per call`);
  }
  // `--encode-rounds N`: N more rounds of both, their least and median CPU per call (the least is
  // what other processes on the cores disturb least).
  const more = arg('encode-rounds', 0);
  if (more > 0) {
    const per: number[] = [];
    for (let round = 0; round < more; round++) {
      const c0 = process.cpuUsage();
      for (const parts of captured) encodeScriptCall(script, bodyScript.encodeBody('k', '', Date.now(), true, parts));
      const cpu = process.cpuUsage(c0);
      per.push((cpu.user + cpu.system) / captured.length);
    }
    per.sort((a, b) => a - b);
    console.log(`encodeBody + encodeScriptCall, ${more} rounds: least ${per[0]!.toFixed(1)} µs per call, median ${per[more >> 1]!.toFixed(1)}`);
  }
}

// Every later round's batches read now, so that no round's time or profile has the reading.
const fresh = REUSE ? [] : Array.from({ length: WARMUP + ROUNDS - 1 }, () => listenerBatches(stream, wants));
const session = PROFILE ? new Session() : undefined;
const post = (method: string) => new Promise((resolve, reject) => session!.post(method, (err, res) => (err ? reject(err) : resolve(res))));
if (session) { session.connect(); await post('Profiler.enable'); }
for (let round = 1 - WARMUP; round <= ROUNDS; round++) {
  const measured = round > 0;
  if (!REUSE && round > 1 - WARMUP) batches = fresh.shift()!;
  // With --expose-gc, each measured round starts from a collected heap: a major GC inside one
  // round's window moved callgrind's count by 10–20 % between runs of the same tree.
  if (measured) (globalThis as { gc?: () => void }).gc?.();
  // One profile over all the measured rounds.
  if (round === 1 && session) await post('Profiler.start');
  if (measured && process.env.CALLGRIND) spawnSync('callgrind_control', ['-i', 'on', String(process.pid)]);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  for (const [i, b] of batches.entries()) {
    // Each round its own frame ids and time: the same lines again as later lines, as a stream would.
    const p = pipeline.ingest({ app: 'bench-app', drainToken: BENCH_TOKEN, frameId: `s${round}-${i}`, dedupe: false, receivedAt: Date.now(), messages: b.messages, passedOver: b.passedOver });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 4) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  if (measured && process.env.CALLGRIND) spawnSync('callgrind_control', ['-i', 'off', String(process.pid)]);
  if (measured) console.log(`round ${round}: ${(ms / 1000).toFixed(2)} s, ${((cpu.user + cpu.system) / frames).toFixed(3)} µs CPU per stream line = ${((cpu.user + cpu.system) / kept).toFixed(1)} µs per kept line (user ${(cpu.user / kept).toFixed(1)}), ${firings} firings so far; load ${loadavg()[0]!.toFixed(2)}`);
}
if (session) {
  const { profile } = await post('Profiler.stop') as { profile: unknown };
  writeFileSync(PROFILE!, JSON.stringify(profile));
  session.disconnect();
}
await deleteMatching(redis, `${prefix}*`);
redis.disconnect();
process.exit(0);
