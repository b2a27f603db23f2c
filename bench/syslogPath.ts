/**
 * The syslog path without Redis, for instruction counts (`valgrind --tool=callgrind`), which stay
 * repeatable on a loaded machine where timings do not: the real listener on loopback TCP, the real
 * pipeline with the example rules and the dyno observer, over in-memory threshold and dyno stores.
 * The stream is sent by a child process (not traced), so the counts are the server's alone.
 *
 *   node --import tsx bench/syslogPath.ts [--lines 200000] [--profile out.cpuprofile] [--once] [--keep-all]
 * (`--keep-all`: every line made a message, as before the listener's prefilter;
 *  `--listener-only`: batches are dropped, not judged, so the figure is the read path's alone —
 *  socket reads, framing, header, prefilter and counting — and `--rounds N` repeats the pass;
 *  instruction counts: see CALLGRIND below)
 */
import { spawn, spawnSync } from 'node:child_process';
import { Session } from 'node:inspector';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import type { Redis } from 'ioredis';
import { createSyslogListener } from '../src/ingest/syslogListener.js';
import { createMetrics } from '../src/metrics.js';
import { redisKeys } from '../src/keys.js';
import { loadRulesText } from '../src/rules/load.js';
import { evaluateEvents } from '../src/rules/evaluate.js';
import { mayMatch } from '../src/rules/match.js';
import { MemoryThresholdStore } from '../src/rules/thresholdMemory.js';
import { MemoryPredictStore } from '../src/rules/predictMemory.js';
import { MemoryDynoStore } from '../src/dynos/dynoMemory.js';
import { DynoObserver } from '../src/dynos/DynoObserver.js';
import { Pipeline } from '../src/server/pipeline.js';
import { BENCH_MARKER, BENCH_TOKEN, syslogStream } from './support/syslogStream.js';

const i = process.argv.indexOf('--lines');
const LINES = i >= 0 ? Number(process.argv[i + 1]) : 200_000;
const p = process.argv.indexOf('--profile');
/** A CPU profile of the measured pass only (setup and the warm-up pass left out). */
const PROFILE = p >= 0 ? process.argv[p + 1] : undefined;
/** Only the measured pass: for callgrind, where a warm-up pass doubles the run time. */
const ONCE = process.argv.includes('--once');
const LISTENER_ONLY = process.argv.includes('--listener-only');
const r = process.argv.indexOf('--rounds');
const ROUNDS = r >= 0 ? Number(process.argv[r + 1]) : 1;
const dir = mkdtempSync(join(tmpdir(), 'mallet-syslog-path-'));
const { stream, frames } = await syslogStream(LINES);
const streamFile = join(dir, 'stream.syslog');
writeFileSync(streamFile, stream);

const rules = parse(readFileSync(new URL('../config/rules.example.yml', import.meta.url), 'utf8')) as { rules: unknown[]; apps?: unknown };
rules.apps = { 'bench-app': { drain_tokens: [BENCH_TOKEN] } };
rules.rules.push({ name: 'bench-marker', match: { source: 'app', message: `^${BENCH_MARKER}` }, cooldown: '1s', actions: [{ type: 'redis-stop-key', key: 'marker', ttl: '60s' }] });
const loaded = loadRulesText(stringify(rules), 'rules.yml', { HEROKU_API_TOKEN: 'x' });
if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
const ruleSet = loaded.ruleSet;
const keys = redisKeys('bench');
const metrics = createMetrics(undefined, { defaults: false });
const store = new MemoryThresholdStore();
const predictor = new MemoryPredictStore();
let marker: () => void = () => {};
const pipeline = new Pipeline({
  redis: { defineCommand: () => {} } as unknown as Redis, keys, metrics, logger: pino({ level: 'silent' }),
  engine: {
    judge: async (events) => { const e = await evaluateEvents(events, { ruleSet, store, predictor, keys, clock: (ev) => ev.receivedAt }); return { firings: e.firings, count: () => {} }; },
    mayMatch: (event) => mayMatch(ruleSet.rules, event),
  },
  sink: { submit: async (firings) => { if (firings.some((f) => f.rule === 'bench-marker')) marker(); return []; } },
  observers: [new DynoObserver(new MemoryDynoStore())],
});
let seq = 0;
const listener = createSyslogListener({
  port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }), metrics,
  // As the service: the lines no rule or observer can read are only counted.
  wants: process.argv.includes('--keep-all') ? undefined : pipeline.wants,
  onBatch: async (drainToken, messages, passedOver) => {
    if (LISTENER_ONLY) {
      if (messages.length > 0 && messages[messages.length - 1]!.hostname === BENCH_TOKEN && messages[messages.length - 1]!.message.startsWith(BENCH_MARKER)) marker();
      return;
    }
    const app = ruleSet.appForDrainToken(drainToken);
    if (app) await pipeline.ingest({ app, drainToken, frameId: `s${seq++}`, dedupe: false, receivedAt: Date.now(), messages, passedOver });
  },
});
const { port } = await listener.listen();
const code = `const s=require('net').createConnection({host:'127.0.0.1',port:${port}},()=>{require('fs').createReadStream(process.argv[1]).pipe(s)});s.on('error',()=>{});`;
/** One pass of the stream; the first warms the JIT, the second is measured (and profiled). */
async function round(measured: boolean): Promise<void> {
  const done = new Promise<void>((r) => { marker = r; });
  const session = measured && PROFILE ? new Session() : undefined;
  if (session) {
    session.connect();
    await post(session, 'Profiler.enable');
    await post(session, 'Profiler.start');
  }
  // Under `CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no --fair-sched=yes
  // --separate-threads=yes`, count the measured pass only (callgrind_control -i switches the
  // instrumentation; with --collect-atstart=no nothing would ever be collected). Main thread: -01.
  if (measured && process.env.CALLGRIND) spawnSync('callgrind_control', ['-i', 'on', String(process.pid)]);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const f0 = minorFaults();
  const sender = spawn(process.execPath, ['-e', code, streamFile], { stdio: 'ignore' });
  await done;
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const faults = minorFaults() - f0;
  if (measured && process.env.CALLGRIND) spawnSync('callgrind_control', ['-i', 'off', String(process.pid)]);
  sender.kill();
  if (session) {
    const { profile } = await post(session, 'Profiler.stop') as { profile: unknown };
    writeFileSync(PROFILE!, JSON.stringify(profile));
    session.disconnect();
  }
  if (measured) console.log(`${frames} frames: ${(ms / 1000).toFixed(2)} s, ${((cpu.user + cpu.system) / frames).toFixed(2)} µs CPU per line (user ${(cpu.user / frames).toFixed(2)}, system ${(cpu.system / frames).toFixed(2)}), ${(faults / frames * 1000).toFixed(1)} page faults per 1000 lines`);
  // The marker rule's cooldown (1 s) must pass before it fires again.
  await new Promise((r) => setTimeout(r, 1100));
}
/** Minor page faults of this process so far (/proc/self/stat field 10): fresh memory touched. */
function minorFaults(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}
const post = (s: Session, method: string) => new Promise((resolve, reject) => s.post(method, (err, res) => (err ? reject(err) : resolve(res))));
if (!ONCE) await round(false);
for (let k = 0; k < ROUNDS; k++) await round(true);
await listener.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
