import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Pipeline } from '../../src/server/pipeline.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { loadRulesText } from '../../src/rules/load.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import type { FiringSink } from '../../src/rules/Firing.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { buildReport, type LeakReport } from '../../src/dynos/report.js';
import { reportRoutes, REPORT_PATH } from '../../src/server/reportRoute.js';
import { runReplayReport } from '../../src/cli/replayReport.js';
import { runReport } from '../../src/cli/report.js';
import type { CliIo } from '../../src/cli/CliIo.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { basic } from '../support/drainClient.js';
import { herokuLogsBody } from './events.js';
import { weekOfLogs } from './weekOfLogs.js';

const redis = testRedis();
const prefix = uniquePrefix('dynrep');
const keys = redisKeys(prefix);
const store = new RedisDynoStore(redis, keys);
const DAY = 86_400_000;
const RULES = `version: 1
rules:
  - name: r14-stop
    match: { source: heroku, process: "*.*", message: '^Error R14 ' }
    threshold: { count: 3, within: 5m }
    cooldown: 2m
    actions: [ { type: redis-stop-key } ]
`;
const dir = mkdtempSync(join(tmpdir(), 'mallet-report-'));
const logFile = join(dir, 'week.log');
const rulesFile = join(dir, 'rules.yml');
const lines = weekOfLogs();
let service: LeakReport;

function capture(env: Record<string, string | undefined> = {}): { io: CliIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const w = (f: (s: string) => void) => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
  return { io: { stdout: w((s) => { out += s; }), stderr: w((s) => { err += s; }), env, cwd: dir }, out: () => out, err: () => err };
}

beforeAll(async () => {
  writeFileSync(logFile, lines.join('\n') + '\n');
  writeFileSync(rulesFile, RULES);
  const loaded = loadRulesText(RULES, 'rules.yml', {});
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  const logger = pino({ level: 'silent' });
  const metrics = createMetrics(undefined, { defaults: false });
  const life = new RedisLifeStore(redis, keys);
  const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => loaded.ruleSet, life });
  const sink: FiringSink = { async submit(f) { return f.map(() => 'enqueued' as const); } };
  const pipeline = new Pipeline({ redis, keys, engine, sink, observers: [new DynoObserver(store, undefined, life)], metrics, logger });
  // As a live drain delivers it: a body per ten seconds of log, received at its last line's time.
  let body: string[] = [];
  let second = '';
  let n = 0;
  const send = async () => {
    if (!body.length) return;
    const receivedAt = Date.parse(body[body.length - 1]!.slice(0, body[body.length - 1]!.indexOf(' ')));
    await pipeline.ingest({ app: 'acme-shop', drainToken: 'd.1', frameId: `F${n++}`, dedupe: true, receivedAt, messages: parseLogplexBody(herokuLogsBody(body)).messages });
    body = [];
  };
  for (const l of lines) {
    const s = l.slice(0, 18);
    if (s !== second) { await send(); second = s; }
    body.push(l);
  }
  await send();
  service = buildReport('acme-shop', await store.read('acme-shop'), 7 * DAY);
}, 900_000);
afterAll(async () => { await cleanupPrefix(redis, prefix); redis.disconnect(); });

describe('the leak report over a generated week', () => {
  it('recovers the known growth rates within 5 % and says it in one sentence per type', () => {
    const by = Object.fromEntries(service.types.map((t) => [t.processType, t]));
    expect(Object.keys(by)).toEqual(['clock', 'web', 'worker']);
    expect(Math.abs(by.web!.growthMbPerHour!.median - 20) / 20).toBeLessThan(0.05);
    expect(Math.abs(by.worker!.growthMbPerHour!.median - 60) / 60).toBeLessThan(0.05);
    expect(Math.abs(by.worker!.growthMbPerHour!.p90 - 60) / 60).toBeLessThan(0.05);
    // (512 - 150) / 20 = 18.1 h; (1024 - 200) / 60 = 13.7 h.
    expect(by.web!.hoursTo100).toBeGreaterThan(17.5);
    expect(by.web!.hoursTo100).toBeLessThan(18.7);
    expect(by.worker!.hoursTo100).toBeGreaterThan(13.2);
    expect(by.worker!.hoursTo100).toBeLessThan(14.2);
    expect(by.worker!.sentence).toMatch(/^worker grows ~(59|60|61) MB\/h and reaches its 1024 MB quota ~1[34]\.\d h after start; mallet stopped or restarted it \d+ times in 7 days\.$/);
    expect(by.clock!.sentence).toMatch(/^clock is flat/);
    expect(by.clock!.cyclingPerDay).toBeGreaterThan(0.8);
    expect(by.clock!.cyclingPerDay).toBeLessThan(1.2);
    // Each worker life ends in one stop: a week / ~13.7 h ≈ 12.
    expect(by.worker!.remediations).toBeGreaterThanOrEqual(11);
    expect(by.worker!.remediations).toBeLessThanOrEqual(13);
    expect(by.worker!.remediationsPerDay).toEqual({ 'r14-stop/redis-stop-key': expect.any(Number) });
    expect(service.releases).toBe(1);
    expect(by.web!.chart.length).toBeGreaterThan(600);
    expect(by.web!.marks.length).toBe(by.web!.remediations);
  });

  it('mallet replay FILE --report prints the same report as the service built from the drain', async () => {
    const { io, out, err } = capture();
    expect(await runReplayReport([logFile, '--app', 'acme-shop', '--rules', rulesFile, '--report', '--json'], io)).toBe(0);
    expect(err()).toMatch(/firings? .*nothing executed/);
    expect(JSON.parse(out())).toEqual(JSON.parse(JSON.stringify(service)));
  });

  it('mallet report reads it from Redis, as text and JSON', async () => {
    const text = capture({ REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix });
    expect(await runReport(['--app', 'acme-shop'], text.io)).toBe(0);
    expect(text.out()).toContain(service.types.find((t) => t.processType === 'web')!.sentence);
    const json = capture({ REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix });
    expect(await runReport(['--app', 'acme-shop', '--since', '2d', '--json'], json.io)).toBe(0);
    const short = JSON.parse(json.out()) as LeakReport;
    expect(short.days).toBeCloseTo(2, 5);
  });

  it('without REDIS_URL it reads the embedded Redis that npm start runs in its directory (a unix socket), and says so when none runs', async () => {
    const here = mkdtempSync(join(tmpdir(), 'mallet-report-embedded-'));
    const none = capture({});
    expect(await runReport(['--app', 'acme-shop'], { ...none.io, cwd: here })).toBe(1);
    expect(none.err()).toContain('no embedded Redis is running here (.mallet/redis): set REDIS_URL');
    mkdirSync(join(here, '.mallet/redis'), { recursive: true });
    const path = join(here, '.mallet/redis/redis.sock');
    const server = spawn('redis-server', ['--port', '0', '--unixsocket', path, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const admin = new Redis({ path, retryStrategy: (n) => (n > 100 ? null : 25) });
    admin.on('error', () => {});
    try {
      // The week of samples copied onto the embedded server: the report must come from there.
      await admin.ping();
      for (const key of await redis.keys(`${prefix}*`)) {
        const dump = await redis.dumpBuffer(key);
        if (dump) await admin.restore(key, 0, dump, 'REPLACE');
      }
      const text = capture({ MALLET_KEY_PREFIX: prefix });
      expect(await runReport(['--app', 'acme-shop'], { ...text.io, cwd: here })).toBe(0);
      expect(text.out()).toContain(service.types.find((t) => t.processType === 'web')!.sentence);
    } finally {
      admin.disconnect();
      server.kill('SIGKILL');
      rmSync(here, { recursive: true, force: true });
    }
  });

  it('an app without runtime metrics is told how to enable them', async () => {
    const { io, out } = capture({ REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix });
    expect(await runReport(['--app', 'quiet-app'], io)).toBe(0);
    expect(out()).toContain('heroku labs:enable log-runtime-metrics -a quiet-app');
  });
});

describe('GET /admin/api/report', () => {
  let app: FastifyInstance;
  let base: string;
  beforeAll(async () => {
    app = Fastify();
    await app.register(reportRoutes, { store, password: 'admin-secret' });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => { await app.close(); });

  it('asks for the admin password, checks the app name and answers the report', async () => {
    expect((await fetch(`${base}${REPORT_PATH}?app=acme-shop`)).status).toBe(401);
    const auth = { authorization: basic('admin-secret', 'admin') };
    expect((await fetch(`${base}${REPORT_PATH}?app=..%2Fx`, { headers: auth })).status).toBe(400);
    expect((await fetch(`${base}${REPORT_PATH}?app=acme-shop&since=soon`, { headers: auth })).status).toBe(400);
    const res = await fetch(`${base}${REPORT_PATH}?app=acme-shop`, { headers: auth });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(service)));
  });
});
