/**
 * One body's worst case (issue #8 item 2): a ~1 MiB body of R14 lines, each for a distinct
 * `web.N`, posted to the real HTTP drain, pipeline and rules engine on Redis, against a baseline
 * in the same run: a body of the same size whose lines no rule matches. Each round posts both to
 * a fresh app (so each fan-out body meets an empty target budget), and reports the status, the
 * time to the answer, the process CPU, and the Redis keys the fan-out left.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { buildApp } from '../src/server/app.js';
import { Pipeline } from '../src/server/pipeline.js';
import { RulesEngine } from '../src/rules/engine.js';
import { loadRulesText } from '../src/rules/load.js';
import { redisKeys } from '../src/keys.js';
import { createMetrics } from '../src/metrics.js';
import type { Firing, FiringOutcome } from '../src/rules/Firing.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const LINES = Number(process.env.BENCH_LINES ?? 10_000);
const PASSWORD = 'bench-drain-password';
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
const logger = pino({ level: 'silent' });
const loaded = loadRulesText(`version: 1
rules:
  - name: r14
    match: { process: "web.*", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
`, 'rules.yml', {});
if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
const ruleSet = loaded.ruleSet;
const prefix = `mbench-fanout-${randomBytes(4).toString('hex')}`;
const keys = redisKeys(prefix);
const metrics = createMetrics(undefined, { defaults: false });
const sink = { async submit(f: readonly Firing[]): Promise<FiringOutcome[]> { return f.map(() => 'enqueued'); } };
const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => ruleSet });
const pipeline = new Pipeline({ redis, keys, engine, sink, metrics, logger });
const app = await buildApp({ logger, metrics, redis, drainPassword: PASSWORD, getApps: () => undefined, ingest: pipeline.ingest });
const url = await app.listen({ port: 0, host: '127.0.0.1' });

const ts = new Date().toISOString().replace('Z', '+00:00');
const frameOf = (lines: string[]) => Buffer.concat(lines.map((m) => { const b = Buffer.from(m); return Buffer.concat([Buffer.from(`${b.length} `), b]); }));
const fanOut = frameOf(Array.from({ length: LINES }, (_x, i) => `<134>1 ${ts} host heroku web.${1000 + i} - Error R14 (Memory quota exceeded)\n`));
const quiet = frameOf(Array.from({ length: LINES }, (_x, i) => `<134>1 ${ts} host heroku web.${1000 + i} - State changed from up to down\n`));

async function post(appName: string, body: Buffer): Promise<{ status: number; ms: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const res = await fetch(`${url}/drains/${appName}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/logplex-1', Authorization: 'Basic ' + Buffer.from(`mallet:${PASSWORD}`).toString('base64'), 'Logplex-Frame-Id': randomBytes(16).toString('hex') },
    body: new Uint8Array(body),
  });
  await res.arrayBuffer();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { status: res.status, ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function keysUnder(p: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${p}:*`, 'COUNT', 1000);
    cursor = next;
    n += found.length;
  } while (cursor !== '0');
  return n;
}

const rows: string[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fan: number[] = [];
const base: number[] = [];
const fanCpu: number[] = [];
const baseCpu: number[] = [];
try {
  for (let r = 0; r < ROUNDS; r++) {
    const b = await post(`quiet-app-${r}`, quiet);
    const f = await post(`fan-app-${r}`, fanOut);
    base.push(b.ms); baseCpu.push(b.cpuMs); fan.push(f.ms); fanCpu.push(f.cpuMs);
    rows.push(`| ${r + 1} | ${b.status} | ${b.ms.toFixed(0)} | ${b.cpuMs.toFixed(0)} | ${f.status} | ${f.ms.toFixed(0)} | ${f.cpuMs.toFixed(0)} |`);
  }
  const left = await keysUnder(prefix);
  console.log(`bodies: ${(fanOut.length / 2 ** 20).toFixed(2)} MiB, ${LINES} lines (fan-out: one R14 per distinct dyno); ${ROUNDS} rounds\n`);
  console.log('| round | baseline status | ms | CPU ms | fan-out status | ms | CPU ms |');
  console.log('|---|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
  console.log(`\nmedian fan-out / baseline: time ${(median(fan) / median(base)).toFixed(2)}×, CPU ${(median(fanCpu) / median(baseCpu)).toFixed(2)}×`);
  console.log(`Redis keys left by ${ROUNDS} fan-out bodies: ${left} (${(left / ROUNDS).toFixed(0)} per body)`);
} finally {
  await app.close();
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (found.length) await redis.unlink(...found);
  } while (cursor !== '0');
  redis.disconnect();
}
