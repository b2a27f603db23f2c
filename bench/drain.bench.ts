/**
 * Drain throughput: `POST /drains/:app` with ~100-line bodies through the whole service (parse,
 * the example rules, Redis de-dup, firings enqueued) vs a bare Fastify route on the same machine
 * that reads the same body and answers 204. Then trigger latency (line received → stop key
 * written) under background drain load at half of the measured maximum.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { parse, stringify } from 'yaml';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { ensureCorpus } from './corpus.js';
import { loadConfig } from '../src/config.js';
import { startService } from '../src/server/service.js';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 6);
const CONNECTIONS = 8;
const PROBES = Number(process.env.BENCH_PROBES ?? 60);
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

const corpus = await ensureCorpus(100_000);
const bytes = readFileSync(corpus.file);
const bodies = corpus.index.map((b) => ({ body: bytes.subarray(b.offset, b.offset + b.length), count: b.msgCount }));
const auth = 'Basic ' + Buffer.from(`mallet:${PASSWORD}`).toString('base64');

function load(url: string, opts: { durationS: number; rate?: number }) {
  let n = 0;
  const run = Date.now().toString(16).toUpperCase();
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration: opts.durationS,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
    requests: [{
      method: 'POST',
      path: '/drains/bench-app',
      setupRequest: (req) => {
        const b = bodies[n++ % bodies.length]!;
        // A fresh frame id per request: a repeated one would be skipped as a logplex retry.
        return { ...req, body: b.body as unknown as string, headers: {
          'content-type': 'application/logplex-1', authorization: auth,
          'logplex-msg-count': String(b.count), 'logplex-frame-id': `${run}${n.toString(16).toUpperCase().padStart(12, '0')}`,
          'logplex-drain-token': 'd.00000000-0000-4000-8000-000000000000',
        } };
      },
    }],
  });
}

// Baseline: what Fastify alone costs for the same bytes.
const bare = Fastify();
bare.addContentTypeParser('application/logplex-1', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_r, b, done) => done(null, b));
bare.post('/drains/:app', async (_req, reply) => reply.code(204).send());
const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });

// mallet with the example rules, plus a probe rule for the latency run, limits opened up so the
// benchmark measures the path rather than the storm guard.
const dir = mkdtempSync(join(tmpdir(), 'mallet-bench-'));
const rules = parse(readFileSync(new URL('../config/rules.example.yml', import.meta.url), 'utf8')) as { rules: unknown[]; limits?: unknown; apps?: unknown };
delete rules.apps;
rules.rules.push({ name: 'latency-probe', match: { source: 'heroku', process: 'probe.*', message: '^Error R14 ' }, cooldown: '1h', actions: [{ type: 'redis-stop-key', key: 'mallet-bench::stop::{{target}}', ttl: '60s' }] });
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
    MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix, HEROKU_API_URL: fakeApiUrl, HEROKU_API_TOKEN: 'bench-token', LOG_LEVEL: 'silent',
  }),
  logger: pino({ level: 'silent' }),
});
const malletUrl = service.url!;

const rounds: Array<{ bare: number; mallet: number; errors: number }> = [];
for (let round = 0; round < 2; round++) {
  const b = await load(bareUrl, { durationS: DURATION_S });
  const m = await load(malletUrl, { durationS: DURATION_S });
  rounds.push({ bare: b.requests.average, mallet: m.requests.average, errors: m.non2xx + m.errors });
}
const bareRps = Math.max(...rounds.map((r) => r.bare));
const malletRps = Math.max(...rounds.map((r) => r.mallet));
const lines = bodies.reduce((a, b) => a + b.count, 0) / bodies.length;

console.log(`bodies of ${lines.toFixed(0)} lines on average (generate.mjs, seed 1), ${CONNECTIONS} connections, ${DURATION_S} s × 2 rounds, best round\n`);
console.log('| server | requests/s | lines/s | vs bare Fastify |');
console.log('|---|---:|---:|---:|');
console.log(`| bare Fastify route (reads body, 204) | ${bareRps.toFixed(0)} | ${(bareRps * lines).toFixed(0)} | 1.00× |`);
console.log(`| mallet /drains (parse, example rules, de-dup, enqueue) | ${malletRps.toFixed(0)} | ${(malletRps * lines).toFixed(0)} | ${(malletRps / bareRps).toFixed(2)}× |`);
if (rounds.some((r) => r.errors > 0)) console.log(`\n(non-2xx or errors from mallet: ${rounds.map((r) => r.errors).join(', ')})`);

// Trigger latency under load at half the measured maximum.
const redis = service.redis.duplicate();
const background = load(malletUrl, { durationS: Math.ceil((PROBES * 150) / 1000) + 2, rate: Math.max(1, Math.floor(malletRps / 2)) });
await new Promise((r) => setTimeout(r, 500));
const latencies: number[] = [];
let missed = 0;
for (let i = 0; i < PROBES; i++) {
  const dyno = `probe.${i + 1}`;
  const ts = new Date().toISOString().replace('Z', '+00:00');
  const text = `<134>1 ${ts} host heroku ${dyno} - Error R14 (Memory quota exceeded)\n`;
  const body = Buffer.concat([Buffer.from(`${Buffer.byteLength(text)} `), Buffer.from(text)]);
  const started = performance.now();
  const res = await fetch(`${malletUrl}/drains/bench-app`, { method: 'POST', headers: { 'content-type': 'application/logplex-1', authorization: auth }, body: new Uint8Array(body) });
  if (res.status !== 204) { missed++; continue; }
  let seen = false;
  while (performance.now() - started < 10_000) {
    if (await redis.exists(`mallet-bench::stop::${dyno}`)) { seen = true; break; }
  }
  if (seen) latencies.push(performance.now() - started); else missed++;
  await new Promise((r) => setTimeout(r, 100));
}
await background;
latencies.sort((a, b) => a - b);
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
console.log(`\ntrigger latency (R14 line posted → stop key written), ${latencies.length} probes under background load at ${Math.floor(malletRps / 2)} req/s:`);
console.log(`p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms${missed ? `, ${missed} missed` : ''}`);

// Clean up the benchmark's keys.
for (const pattern of ['mallet-bench::stop::*', `${prefix}*`]) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}
redis.disconnect();
await service.close();
await bare.close();
await fakeApi.close();
process.exit(0);
