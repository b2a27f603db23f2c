/**
 * Drain throughput: `POST /drains/:app` with ~100-line bodies through the whole service (parse,
 * the example rules, Redis de-dup, firings enqueued) vs a bare Fastify route on the same machine
 * that reads the same body and answers 204, each server in its own process so its CPU per
 * request can be read from /proc beside its req/s; `mallet serve` with WEB_CONCURRENCY=1 and 2.
 * Then trigger latency (line received → stop key written) under background drain load at half of
 * the measured maximum.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { parse, stringify } from 'yaml';
import { pino } from 'pino';
import { ensureCorpus } from './corpus.js';
import { loadConfig } from '../src/config.js';
import { startService } from '../src/server/service.js';
import { probeStopKey, startServe, treeCpuUs, deleteMatching } from './support/serveProcess.js';
import { percentile, runProbes, type ProbeSpan } from './support/latencyProbe.js';
import { watchHealth } from './support/serviceHealth.js';
import { Redis } from 'ioredis';
import { buildApp } from '../src/server/app.js';
import { drainEvents } from '../src/ingest/drainEvents.js';
import { matchEvent, mayMatch, type RuleMatch } from '../src/rules/match.js';
import { wantsDynoLine } from '../src/dynos/dynoLines.js';
import { createMetrics } from '../src/metrics.js';
import type { IngestHandler } from '../src/ingest/IngestBatch.js';
import type { DrainEvent } from '../src/ingest/DrainEvent.js';

const here = dirname(fileURLToPath(import.meta.url));
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 6);
const CONNECTION_LEVELS = (process.env.BENCH_CONNECTIONS ?? '8,32').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PROBES = Number(process.env.BENCH_PROBES ?? 200);
/** Only the trigger-latency section, after one short throughput round to find the maximum. */
const LATENCY_ONLY = process.env.BENCH_LATENCY_ONLY === '1';
const PASSWORD = 'bench-drain-password';

function pingRedis(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.setTimeout(300, () => { s.destroy(); resolve(false); });
    s.once('error', () => resolve(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
  });
}

const auth = 'Basic ' + Buffer.from(`mallet:${PASSWORD}`).toString('base64');
await ensureCorpus(100_000);

interface LoadResult { rps: number; non2xx: number; errors: number; linesPerBody: number }
/** Runs the load generator in its own process (bench/support/drainLoad.ts). */
function load(url: string, opts: { durationS: number; rate?: number; connections?: number }): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const args = ['--import', 'tsx', join(here, 'support/drainLoad.ts'), url, String(opts.durationS), ...(opts.rate ? [String(opts.rate)] : [])];
    const child = spawn(process.execPath, args, { env: { ...process.env, BENCH_DRAIN_PASSWORD: PASSWORD, BENCH_CONNECTIONS: String(opts.connections ?? 8) }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.once('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      try { resolve(JSON.parse(line) as LoadResult); } catch { reject(new Error(`load generator exited ${code}: ${out}`)); }
    });
  });
}

// Baseline: what Fastify alone costs for the same bytes, in its own process.
const bareProc = spawn(process.execPath, ['--import', 'tsx', join(here, 'support/bareServer.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
const bareUrl = await new Promise<string>((resolve) => { bareProc.stdout!.once('data', (d) => resolve(String(d).trim())); });
const bareCpuUs = () => treeCpuUs(bareProc.pid!);
process.once('exit', () => { if (bareProc.exitCode === null) bareProc.kill('SIGTERM'); });

// mallet in the bench process, for the staged routes below (their rules and Redis): the example
// rules, limits opened up so the benchmark measures the path rather than the storm guard.
const dir = mkdtempSync(join(tmpdir(), 'mallet-bench-'));
const rules = parse(readFileSync(new URL('../config/rules.example.yml', import.meta.url), 'utf8')) as { rules: unknown[]; limits?: unknown; apps?: unknown };
delete rules.apps;
rules.limits = { per_app: { max_firings: 1_000_000, within: '10m' }, per_process_type: { concurrency: 1000 }, flapping: { max_firings: 1_000_000, within: '1h' } };
const rulesPath = join(dir, 'rules.yml');
writeFileSync(rulesPath, stringify(rules));
const fakeApi = Fastify();
fakeApi.delete('/*', async (_req, reply) => reply.code(202).header('RateLimit-Remaining', '4000').send({}));
const fakeApiUrl = await fakeApi.listen({ port: 0, host: '127.0.0.1' });

const prefix = `mallet-bench-${process.pid}`;
const redisUrl = process.env.REDIS_URL ?? ((await pingRedis(6379)) ? 'redis://127.0.0.1:6379' : undefined);
const service = await startService({
  config: loadConfig({
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}), PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: PASSWORD, MALLET_RULES: rulesPath,
    MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix, HEROKU_API_URL: fakeApiUrl, HEROKU_API_TOKEN: 'bench-token', LOG_LEVEL: 'info',
  }),
  logger: pino({ level: 'silent' }),
});
// The service measured: `mallet serve` as it runs on a dyno, in its own process(es), with the
// worker in a thread of the (first) process; WEB_CONCURRENCY=1 and 2 (src/cli/serveProcesses.ts). serve1 also takes the
// trigger-latency probes.
const serveEnv = { HEROKU_API_URL: fakeApiUrl, HEROKU_API_TOKEN: 'bench-token' };
const serve1 = await startServe({ redisUrl: redisUrl ?? 'redis://127.0.0.1:6379', password: PASSWORD, processes: 1, env: serveEnv });
const serve2 = LATENCY_ONLY ? undefined : await startServe({ redisUrl: redisUrl ?? 'redis://127.0.0.1:6379', password: PASSWORD, processes: 2, env: serveEnv });

// Where the time goes: mallet's own drain route (auth, hooks, frame and header parse) with the
// rest of the pipeline cut off at two points, so each stage's cost shows against the bare route.
// Both parse with the service's prefilter (Pipeline.wants: the rules, and the dyno lines the
// engine's lifecycle and the observer read); BENCH_PREFILTER=0 makes every line a message.
const stages: Array<{ close(): Promise<unknown> }> = [];
const wants = process.env.BENCH_PREFILTER === '0' ? undefined : (e: DrainEvent) => mayMatch(service.ruleSet().rules, e) || wantsDynoLine(e);
async function stage(ingest: IngestHandler): Promise<string> {
  const app = await buildApp({
    logger: pino({ level: 'silent' }), metrics: createMetrics(undefined, { defaults: false }), redis: service.redis,
    drainPassword: PASSWORD, getApps: () => undefined, ingest, wants,
  });
  stages.push(app);
  return app.listen({ port: 0, host: '127.0.0.1' });
}
const parseOnlyUrl = await stage(async (batch) => ({ duplicate: false, lines: batch.messages.length, firings: 0 }));
const matchOnlyUrl = await stage(async (batch) => {
  const out: RuleMatch[] = [];
  const { rules } = service.ruleSet();
  for (const event of drainEvents(batch)) matchEvent(rules, event, out);
  return { duplicate: false, lines: batch.messages.length, firings: out.length };
});

let malletRps: number;
if (LATENCY_ONLY) {
  await load(serve1.url, { durationS: 2, connections: 32 });
  malletRps = (await load(serve1.url, { durationS: DURATION_S, connections: 32 })).rps;
  console.log(`(BENCH_LATENCY_ONLY: mallet's maximum from one ${DURATION_S} s round at 32 connections: ${malletRps.toFixed(0)} req/s)`);
} else {
  // Warm up every server (JIT, connection pools) before measuring.
  for (const u of [bareUrl, parseOnlyUrl, matchOnlyUrl, serve1.url, serve2!.url]) await load(u, { durationS: 2, connections: 8 });

  const heapAfter: number[] = [];
  let linesPerBody = 0;
  let errors = 0;
  /** req/s and server CPU µs per request of one round. */
  interface Round { rps: number; cpu: number }
  async function measure(url: string, connections: number, cpuUs: () => number): Promise<Round & LoadResult> {
    const c0 = cpuUs();
    const r = await load(url, { durationS: DURATION_S, connections });
    const used = cpuUs() - c0;
    return { ...r, cpu: r.rps > 0 ? used / (r.rps * DURATION_S) : NaN };
  }
  const selfCpuUs = () => { const u = process.cpuUsage(); return u.user + u.system; };
  type Name = 'bare' | 'parse' | 'match' | 'mallet' | 'mallet2';
  const results: Array<{ connections: number } & Record<Name, Round>> = [];
  for (const connections of CONNECTION_LEVELS) {
    const best = Object.fromEntries((['bare', 'parse', 'match', 'mallet', 'mallet2'] as const).map((n) => [n, { rps: 0, cpu: NaN }])) as Record<Name, Round>;
    const keep = (n: Name, r: Round) => { if (r.rps > best[n].rps) best[n] = { rps: r.rps, cpu: r.cpu }; };
    for (let round = 0; round < ROUNDS; round++) {
      keep('bare', await measure(bareUrl, connections, bareCpuUs));
      keep('parse', await measure(parseOnlyUrl, connections, selfCpuUs));
      keep('match', await measure(matchOnlyUrl, connections, selfCpuUs));
      const m = await measure(serve1.url, connections, serve1.cpuUs);
      keep('mallet', m);
      errors += m.non2xx + m.errors;
      linesPerBody = m.linesPerBody;
      const m2 = await measure(serve2!.url, connections, serve2!.cpuUs);
      keep('mallet2', m2);
      errors += m2.non2xx + m2.errors;
      // SPEC §6 "memory stays flat under sustained load": the heap after each round, after a GC.
      (globalThis as { gc?: () => void }).gc?.();
      heapAfter.push(process.memoryUsage().heapUsed / 2 ** 20);
    }
    results.push({ connections, ...best });
  }
  malletRps = Math.max(...results.map((r) => r.mallet.rps));
  const lines = linesPerBody;

  console.log(`bodies of ${lines.toFixed(0)} lines on average (generate.mjs, seed 1); load generator in its own process; each server in its own process, CPU from /proc; ${DURATION_S} s × ${ROUNDS} rounds per level, alternating, best round\n`);
  console.log('| connections | bare Fastify route (reads body, 204) req/s | CPU µs/req | mallet serve (1 process) req/s | CPU µs/req | mallet vs bare req/s | CPU/req vs bare | mallet serve (WEB_CONCURRENCY=2) req/s | CPU µs/req | vs bare |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(`| ${r.connections} | ${r.bare.rps.toFixed(0)} | ${r.bare.cpu.toFixed(0)} | ${r.mallet.rps.toFixed(0)} | ${r.mallet.cpu.toFixed(0)} | **${(r.mallet.rps / r.bare.rps).toFixed(2)}×** | ${(r.mallet.cpu / r.bare.cpu).toFixed(2)}× | ${r.mallet2.rps.toFixed(0)} | ${r.mallet2.cpu.toFixed(0)} | ${(r.mallet2.rps / r.bare.rps).toFixed(2)}× |`);
  }
  console.log(`\nmallet lines/s (1 process): ${results.map((r) => `${(r.mallet.rps * lines).toFixed(0)} at ${r.connections}`).join(', ')}; target ≥ 0.5× the bare route's req/s`);
  console.log('\nwhere the time goes — mallet\'s drain route cut off after each stage (in the bench process), req/s, ratio to the bare route and CPU µs/req:\n');
  console.log('| connections | auth + hooks + frame/header parse | + events and rule matching (no Redis) | + thresholds, de-dup, observers, firings in Redis (mallet serve) |');
  console.log('|---:|---:|---:|---:|');
  for (const r of results) {
    const cell = (x: Round) => `${x.rps.toFixed(0)} (${(x.rps / r.bare.rps).toFixed(2)}×, ${x.cpu.toFixed(0)} µs)`;
    console.log(`| ${r.connections} | ${cell(r.parse)} | ${cell(r.match)} | ${cell(r.mallet)} |`);
  }
  console.log(`\nheap after each round (after GC; the bench process holds the staged routes): ${heapAfter.map((h) => h.toFixed(1)).join(' → ')} MiB`);
  if (errors > 0) console.log(`\n(non-2xx or errors from mallet: ${errors})`);
}

// Trigger latency under load at half the measured maximum, of `mallet serve` as it runs on a dyno
// (WEB_CONCURRENCY=1: the worker in a thread of the service's process, src/actions/workerThread.ts), timed by the
// service's own clocks and a separate subscriber process (bench/support/latencyProbe.ts). The
// background load is the corpus (example rules: their stop keys are watched, as in production).
const redis = new Redis(redisUrl ?? 'redis://127.0.0.1:6379', { connectionName: 'mallet-bench-probe' });
const rate = Math.max(1, Math.floor(malletRps / 2));
const probeGapMs = 100;
const background = load(serve1.url, { durationS: Math.ceil(((PROBES + 5) * (probeGapMs + 60)) / 1000) + 4, rate, connections: 32 });
await new Promise((r) => setTimeout(r, 1000));
const health = await watchHealth(serve1.url, serve1.pid);
// The first firings of a process run code nothing ran before (admission, the BullMQ add, the
// worker, the executor): measured apart, as "cold", and left out of the figures.
const COLD = 5;
const run = await runProbes({
  url: serve1.url, auth, redis, redisUrl: redisUrl ?? 'redis://127.0.0.1:6379', prefix: serve1.prefix,
  stopKey: (dyno) => probeStopKey(serve1.prefix).replace('{{target}}', dyno), app: 'bench-probe', rule: 'latency-probe',
  count: PROBES + COLD, gapMs: probeGapMs, timeoutMs: Number(process.env.BENCH_PROBE_TIMEOUT_MS ?? 30_000),
});
const healthLine = await health.end();
const backgroundResult = await background;
const spans = run.spans.filter((p) => p.n > COLD);
const sorted = (f: (p: ProbeSpan) => number) => spans.map(f).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
const byKey = sorted((p) => p.keyWritten);
const fmt = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(0)} ms, p90 ${percentile(xs, 90).toFixed(0)} ms, p99 ${percentile(xs, 99).toFixed(0)} ms, max ${(xs.at(-1) ?? NaN).toFixed(0)} ms`;
console.log(`\ntrigger latency of mallet serve (1 process, the worker in a thread of it), line received (drain route) → stop key written (step ledger), service clocks, ${spans.length} probes under background load at ${rate} req/s (half the maximum; achieved ${backgroundResult.rps.toFixed(0)} req/s):`);
console.log(fmt(byKey));
console.log(`same probes, line received → wake PUBLISH seen by a separate subscriber process: ${fmt(sorted((p) => p.woke))}`);
const pp = (f: (p: ProbeSpan) => number) => { const xs = sorted(f); return `${percentile(xs, 50)} / ${percentile(xs, 99)} ms`; };
console.log(`split, ms after arrival (p50 / p99): body judged (its script's reply) ${pp((p) => p.judged)}, firing admitted and its job built ${pp((p) => p.enqueued)}, taken by the worker ${pp((p) => p.taken)}, key written ${percentile(byKey, 50)} / ${percentile(byKey, 99)} ms`);
console.log(`each stage alone (p50 / p99): arrival → judged ${pp((p) => p.judged)}, → admitted ${pp((p) => p.enqueued - p.judged)}, → taken (the add, the worker woken; processedOn is taken as moveToActive is sent) ${pp((p) => p.taken - p.enqueued)}, → key written (moveToActive, step ledger + lock + slot, SET) ${pp((p) => p.keyWritten - p.taken)}`);
console.log(`the first ${COLD} firings (cold code, not in the figures): ${run.spans.filter((p) => p.n <= COLD).map((p) => p.keyWritten.toFixed(0)).join(', ')} ms`);
console.log(`the service process during the probes (its /metrics and /proc schedstat): ${healthLine}`);
if (run.misses.length) {
  console.log(`\n${run.misses.length} probe(s) missed:`);
  for (const m of run.misses) console.log(`  probe ${m.n}: ${m.why}`);
}
console.log('\nthe slowest probes (ms after the line was received; active = jobs running in the worker when it was posted):\n');
console.log('| probe | judged | admitted | taken by the worker | key written | wake seen | active |');
console.log('|---:|---:|---:|---:|---:|---:|---:|');
for (const p of [...spans].sort((a, b) => b.keyWritten - a.keyWritten).slice(0, 8)) {
  console.log(`| ${p.n} | ${p.judged} | ${p.enqueued} | ${p.taken} | ${p.keyWritten} | ${p.woke.toFixed(1)} | ${p.activeBefore} |`);
}

// Clean up the benchmark's keys (the serve processes' too, once they have stopped).
await serve1.stop();
await serve2?.stop();
await deleteMatching(redis, `${prefix}*`, `${serve1.prefix}*`, ...(serve2 ? [`${serve2.prefix}*`] : []));
redis.disconnect();
await service.close();
bareProc.kill('SIGTERM');
for (const app of stages) await app.close();
await fakeApi.close();
process.exit(0);
