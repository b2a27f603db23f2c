/**
 * Redis memory of frame de-duplication (issue #8 item 3): BENCH_BODIES bodies (default 1 000 000)
 * over BENCH_DRAINS drains (default 100, each drain one request at a time, as logplex sends them)
 * through the real pipeline and rules engine, then the keys and bytes left under the run's prefix.
 * Baseline in the same run: the old scheme, one done-marker per frame kept a day
 * (`SET NX EX 86400`), for BENCH_BASELINE_BODIES bodies (default 100 000: a million would put
 * ~180 MB into a shared Redis), per body and extrapolated.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Pipeline } from '../src/server/pipeline.js';
import { RulesEngine } from '../src/rules/engine.js';
import { loadRules } from '../src/rules/load.js';
import { redisKeys } from '../src/keys.js';
import { createMetrics } from '../src/metrics.js';
import { parseLogplexBody } from '../src/ingest/logplexFrames.js';
import type { IngestBatch } from '../src/ingest/IngestBatch.js';

const BODIES = Number(process.env.BENCH_BODIES ?? 1_000_000);
const BASELINE_BODIES = Number(process.env.BENCH_BASELINE_BODIES ?? 100_000);
const DRAINS = Number(process.env.BENCH_DRAINS ?? 100);
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const logger = pino({ level: 'silent' });

const rules = await loadRules(new URL('../config/rules.example.yml', import.meta.url).pathname, { SLACK_WEBHOOK_URL: 'https://hooks.example/x' });
if (!rules.ok) throw new Error(JSON.stringify(rules.errors));
const ruleSet = rules.ruleSet;
const line = (text: string) => `<190>1 2026-12-01T00:00:00+00:00 host app web.1 - ${text}\n`;
const msg = line('GET /health 200 in 3ms');
const messages = parseLogplexBody(Buffer.from(`${Buffer.byteLength(msg)} ${msg}`)).messages;
const token = (d: number) => `d.00000000-0000-0000-0000-${d.toString(16).padStart(12, '0')}`;
const frameId = (i: number) => randomBytes(16).toString('hex').toUpperCase() + i.toString(36);

async function under(prefix: string): Promise<{ keys: number; bytes: number }> {
  let cursor = '0';
  let keys = 0;
  let bytes = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys += found.length;
    const p = redis.pipeline();
    for (const k of found) p.memory('USAGE', k, 'SAMPLES', '0');
    for (const [, b] of (await p.exec()) ?? []) bytes += Number(b ?? 0);
  } while (cursor !== '0');
  return { keys, bytes };
}

async function cleanup(prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (found.length) await redis.unlink(...found);
  } while (cursor !== '0');
}

/** Each drain posts its share one body at a time; drains run side by side. */
async function run(bodies: number, ingest: (b: IngestBatch) => Promise<unknown>): Promise<{ seconds: number; cpuUsPerBody: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: DRAINS }, async (_x, d) => {
    for (let i = d; i < bodies; i += DRAINS) {
      await ingest({ app: 'bench-app', drainToken: token(d), frameId: frameId(i), dedupe: true, receivedAt: Date.now(), messages });
    }
  }));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { seconds, cpuUsPerBody: (cpu.user + cpu.system) / bodies };
}

const prefix = `mbench-frames-${randomBytes(4).toString('hex')}`;
const basePrefix = `${prefix}-old`;
try {
  const keys = redisKeys(prefix);
  const metrics = createMetrics(undefined, { defaults: false });
  const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => ruleSet });
  const pipeline = new Pipeline({ redis, keys, engine, metrics, logger, sink: { async submit(f) { return f.map(() => 'enqueued' as const); } } });
  const mallet = await run(BODIES, pipeline.ingest);
  const now = await under(prefix);

  // The old scheme: EXISTS before judging, SET NX EX 86400 after, one key per frame.
  const oldIngest = async (b: IngestBatch) => {
    const key = `${basePrefix}:frame:${b.app}:${b.drainToken}:${b.frameId}`;
    if ((await redis.exists(key)) === 1) return;
    await engine.judge([]);
    await redis.set(key, '1', 'EX', 86_400, 'NX');
  };
  const old = await run(BASELINE_BODIES, oldIngest);
  const before = await under(basePrefix);

  const kib = (b: number) => (b / 1024).toFixed(1);
  console.log(`bodies: ${BODIES.toLocaleString('en')} over ${DRAINS} drains (baseline: ${BASELINE_BODIES.toLocaleString('en')})\n`);
  console.log('| scheme | bodies | keys left | bytes left (MEMORY USAGE) | bytes per drain | bytes per body | s | CPU µs/body |');
  console.log('|---|---|---|---|---|---|---|---|');
  console.log(`| per-drain recent frames (now) | ${BODIES} | ${now.keys} | ${kib(now.bytes)} KiB | ${(now.bytes / DRAINS).toFixed(0)} | ${(now.bytes / BODIES).toFixed(3)} | ${mallet.seconds.toFixed(1)} | ${mallet.cpuUsPerBody.toFixed(1)} |`);
  console.log(`| one marker per frame, 24 h (old) | ${BASELINE_BODIES} | ${before.keys} | ${kib(before.bytes)} KiB | — | ${(before.bytes / BASELINE_BODIES).toFixed(1)} | ${old.seconds.toFixed(1)} | ${old.cpuUsPerBody.toFixed(1)} |`);
  const extrapolated = (before.bytes / BASELINE_BODIES) * BODIES;
  console.log(`\nold scheme at ${BODIES.toLocaleString('en')} bodies (extrapolated): ${BODIES.toLocaleString('en')} keys, ${(extrapolated / 2 ** 20).toFixed(0)} MiB; ratio old/now: ${(extrapolated / Math.max(1, now.bytes)).toFixed(0)}×`);
} finally {
  await cleanup(prefix);
  await cleanup(basePrefix);
  redis.disconnect();
}
