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
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import { parse, stringify } from 'yaml';
import { pino } from 'pino';
import { ensureCorpus } from './corpus.js';
import { loadConfig } from '../src/config.js';
import { startService } from '../src/server/service.js';
import { startServe, treeCpuUs } from './support/serveProcess.js';
import { buildApp } from '../src/server/app.js';
import { drainEvents } from '../src/ingest/drainEvents.js';
import { matchEvent, type RuleMatch } from '../src/rules/match.js';
import { createMetrics } from '../src/metrics.js';
import type { IngestHandler } from '../src/ingest/IngestBatch.js';

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

// mallet with the example rules, plus a probe rule for the latency run, limits opened up so the
// benchmark measures the path rather than the storm guard.
const dir = mkdtempSync(join(tmpdir(), 'mallet-bench-'));
const rules = parse(readFileSync(new URL('../config/rules.example.yml', import.meta.url), 'utf8')) as { rules: unknown[]; limits?: unknown; apps?: unknown };
delete rules.apps;
rules.rules.push({ name: 'latency-probe', match: { source: 'heroku', process: 'probe.*', message: '^Error R14 ' }, cooldown: '1h', actions: [{ type: 'redis-stop-key', key: 'mallet-bench::stop::{{target}}', ttl: '60s', watch: false }] });
rules.limits = { per_app: { max_firings: 1_000_000, within: '10m' }, per_process_type: { concurrency: 1000 }, flapping: { max_firings: 1_000_000, within: '1h' } };
const rulesPath = join(dir, 'rules.yml');
writeFileSync(rulesPath, stringify(rules));
const fakeApi = Fastify();
fakeApi.delete('/*', async (_req, reply) => reply.code(202).header('RateLimit-Remaining', '4000').send({}));
const fakeApiUrl = await fakeApi.listen({ port: 0, host: '127.0.0.1' });

const prefix = `mallet-bench-${process.pid}`;
/** When mallet logged each probe's firing as stored (its info line), to split the time before the 204. */
const storedAt = new Map<string, number>();
const serviceLogger = pino({ level: 'info' }, {
  write(line: string) {
    if (!line.includes('"firing stored"')) return;
    const target = /"target":"(probe\.\d+)"/.exec(line)?.[1];
    if (target) storedAt.set(target, performance.now());
  },
});
const redisUrl = process.env.REDIS_URL ?? ((await pingRedis(6379)) ? 'redis://127.0.0.1:6379' : undefined);
const service = await startService({
  config: loadConfig({
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}), PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: PASSWORD, MALLET_RULES: rulesPath,
    MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix, HEROKU_API_URL: fakeApiUrl, HEROKU_API_TOKEN: 'bench-token', LOG_LEVEL: 'info',
  }),
  logger: serviceLogger,
});
// The service measured: `mallet serve` as it runs on a dyno, in its own process(es), with the
// in-process worker; WEB_CONCURRENCY=1 and 2 (src/cli/serveProcesses.ts). The in-process service
// above gives the staged routes their rules and Redis, and takes the trigger-latency probes.
const serveEnv = { HEROKU_API_URL: fakeApiUrl, HEROKU_API_TOKEN: 'bench-token' };
const serve1 = await startServe({ redisUrl: redisUrl ?? 'redis://127.0.0.1:6379', password: PASSWORD, processes: 1, env: serveEnv });
const serve2 = await startServe({ redisUrl: redisUrl ?? 'redis://127.0.0.1:6379', password: PASSWORD, processes: 2, env: serveEnv });
// The trigger-latency probes go to the in-process service, whose log tells when each firing was stored.
const malletUrl = service.url!;

// Where the time goes: mallet's own drain route (auth, hooks, frame and header parse) with the
// rest of the pipeline cut off at two points, so each stage's cost shows against the bare route.
const stages: Array<{ close(): Promise<unknown> }> = [];
async function stage(ingest: IngestHandler): Promise<string> {
  const app = await buildApp({
    logger: pino({ level: 'silent' }), metrics: createMetrics(undefined, { defaults: false }), redis: service.redis,
    drainPassword: PASSWORD, getApps: () => undefined, ingest,
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
  await load(malletUrl, { durationS: 2, connections: 32 });
  malletRps = (await load(malletUrl, { durationS: DURATION_S, connections: 32 })).rps;
  console.log(`(BENCH_LATENCY_ONLY: mallet's maximum from one ${DURATION_S} s round at 32 connections: ${malletRps.toFixed(0)} req/s)`);
} else {
  // Warm up every server (JIT, connection pools) before measuring.
  for (const u of [bareUrl, parseOnlyUrl, matchOnlyUrl, serve1.url, serve2.url]) await load(u, { durationS: 2, connections: 8 });

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
      const m2 = await measure(serve2.url, connections, serve2.cpuUs);
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

// Trigger latency under load at half the measured maximum. Each probe is split at the points
// seen from outside the route: the firing stored (mallet's own "firing stored" log line), the
// 204, the stop key written; and the GC pauses and event-loop stalls of this process (mallet,
// its worker and the probe client share it) that fall inside the probe are recorded beside it.
const gcPauses: Array<{ start: number; end: number }> = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, end: e.startTime + e.duration });
});
gcObserver.observe({ entryTypes: ['gc'] });
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
const redis = service.redis.duplicate();
const rate = Math.max(1, Math.floor(malletRps / 2));
const background = load(malletUrl, { durationS: Math.ceil(((PROBES + 5) * 150) / 1000) + 2, rate, connections: 32 });
await new Promise((r) => setTimeout(r, 500));
interface Probe { i: number; total: number; toStored: number; toResponse: number; toKey: number; gcMs: number; loopMaxMs: number }
const probes: Probe[] = [];
let missed = 0;
// The first firings of a process run code that nothing ran before (the firing path: admission,
// the BullMQ add, the worker, the executor) and cost several times the later ones, with or
// without the scripts cached in Redis: measured apart, as "cold", and left out of the figures.
const COLD = 5;
const cold: number[] = [];
for (let i = 0; i < PROBES + COLD; i++) {
  const dyno = `probe.${i + 1}`;
  const ts = new Date().toISOString().replace('Z', '+00:00');
  const text = `<134>1 ${ts} host heroku ${dyno} - Error R14 (Memory quota exceeded)\n`;
  const body = Buffer.concat([Buffer.from(`${Buffer.byteLength(text)} `), Buffer.from(text)]);
  loopDelay.reset();
  loopDelay.enable();
  const started = performance.now();
  const res = await fetch(`${malletUrl}/drains/bench-app`, { method: 'POST', headers: { 'content-type': 'application/logplex-1', authorization: auth }, body: new Uint8Array(body) });
  const responded = performance.now();
  if (res.status !== 204) { missed++; loopDelay.disable(); continue; }
  let seen = false;
  while (performance.now() - started < 10_000) {
    if (await redis.exists(`mallet-bench::stop::${dyno}`)) { seen = true; break; }
  }
  const keyAt = performance.now();
  loopDelay.disable();
  if (seen) {
    const gcMs = gcPauses.filter((g) => g.end > started && g.start < keyAt).reduce((sum, g) => sum + Math.min(g.end, keyAt) - Math.max(g.start, started), 0);
    const stored = storedAt.get(dyno) ?? NaN;
    if (i < COLD) cold.push(keyAt - started);
    else probes.push({ i: i + 1, total: keyAt - started, toStored: stored - started, toResponse: responded - started, toKey: keyAt - responded, gcMs, loopMaxMs: loopDelay.max / 1e6 });
  } else missed++;
  await new Promise((r) => setTimeout(r, 100));
}
await background;
gcObserver.disconnect();
const byTotal = [...probes].sort((a, b) => a.total - b.total);
const pct = (p: number) => byTotal[Math.min(byTotal.length - 1, Math.max(0, Math.ceil((p / 100) * byTotal.length) - 1))]?.total ?? NaN;
console.log(`\ntrigger latency (R14 line posted → stop key written), ${probes.length} probes under background load at ${rate} req/s (half the maximum):`);
console.log(`p50 ${pct(50).toFixed(1)} ms, p90 ${pct(90).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms, max ${byTotal.at(-1)?.total.toFixed(1)} ms${missed ? `, ${missed} missed` : ''}`);
console.log(`the process's first ${COLD} firings (cold code, not in the figures above): ${cold.map((c) => c.toFixed(1)).join(', ')} ms`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
console.log(`median split: posted → firing stored ${median(probes.map((p) => p.toStored)).toFixed(1)} ms, → 204 ${median(probes.map((p) => p.toResponse)).toFixed(1)} ms, 204 → key written ${median(probes.map((p) => p.toKey)).toFixed(1)} ms`);
console.log('\nthe slowest probes (ms; GC = pauses of this process inside the probe, loop = its longest event-loop stall):\n');
console.log('| probe | total | → firing stored | → 204 | 204 → key | GC | loop |');
console.log('|---:|---:|---:|---:|---:|---:|---:|');
for (const p of byTotal.slice(-8).reverse()) {
  console.log(`| ${p.i} | ${p.total.toFixed(1)} | ${p.toStored.toFixed(1)} | ${p.toResponse.toFixed(1)} | ${p.toKey.toFixed(1)} | ${p.gcMs.toFixed(1)} | ${p.loopMaxMs.toFixed(1)} |`);
}

// Clean up the benchmark's keys (the serve processes' too, once they have stopped).
await serve1.stop();
await serve2.stop();
for (const pattern of ['mallet-bench::stop::*', `${prefix}*`, `${serve1.prefix}*`, `${serve2.prefix}*`]) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}
redis.disconnect();
await service.close();
bareProc.kill('SIGTERM');
for (const app of stages) await app.close();
await fakeApi.close();
process.exit(0);
