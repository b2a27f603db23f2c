import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../../../src/config.js';
import type { LeakReport } from '../../../src/dynos/report.js';
import { startService, type Service } from '../../../src/server/service.js';
import { basic } from '../../support/drainClient.js';
import { eventually } from '../../support/eventually.js';
import { REPO, spawnMallet } from '../../support/malletProcess.js';
import { exportMemorySeries, type SeriesPoint } from '../../support/otelSdk.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../../support/redis.js';
import { tempRulesFile } from '../../support/rulesFile.js';

/**
 * A Fir app's memory through the whole product: series with known slopes, sent by the
 * OpenTelemetry SDK's own metric exporter (protobuf, gzip, and JSON) to a running mallet; the leak
 * report (`mallet report --json` as a real process, and GET /admin/api/report) recovers the slopes
 * and Fir's restarts at the quota, and the example rule `fir-web-memory-high` fires and shows in
 * the console's history and status page as a Cedar firing does.
 */
const TOKEN = 'fir-leak-telemetry-token-0123456789';
const ADMIN = 'admin-secret-fir-leak';
const redis = testRedis();
const prefix = uniquePrefix('firleak');
const queuePrefix = uniquePrefix('firleakq');
const MB = 1024 * 1024;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
// Names unique to this run: the example rule's stop key (`puma::stop::DYNO`) has no prefix.
const run = Math.random().toString(36).slice(2, 7).padEnd(5, '0');
const WEB = ['a1', 'b2', 'c3'].map((s) => `web-${s}${run}f6-${s}x${run.slice(0, 2)}`);
const WORKER = `worker-d4${run}e5-d4y${run.slice(0, 2)}`;
const START = Date.now() - 30 * HOUR;
let service: Service;
let rulesFile: string;
let dir: string;

/** A rule of the example rules file, as shipped. */
function exampleRule(name: string): unknown {
  const example = parse(readFileSync(join(REPO, 'config/rules.example.yml'), 'utf8')) as { rules: Array<{ name: string }> };
  const rule = example.rules.find((r) => r.name === name);
  if (!rule) throw new Error(`config/rules.example.yml has no ${name}`);
  return rule;
}

/** One sample a minute from `startMb`, `mbPerHour`, while below `stopMb` (Fir restarts it at 100 %). */
function series(from: number, startMb: number, mbPerHour: number, stopMb: number, limitMb: number | undefined): SeriesPoint[] {
  const out: SeriesPoint[] = [];
  for (let i = 0; startMb + (i * mbPerHour) / 60 < stopMb; i++) {
    out.push({ at: from + i * MINUTE, usageBytes: (startMb + (i * mbPerHour) / 60) * MB, limitBytes: limitMb === undefined ? undefined : limitMb * MB });
  }
  return out;
}

beforeAll(async () => {
  const rules = {
    version: 1,
    apps: { 'fir-app': { telemetry_token: '${FIR_TOKEN}' } },
    // The worker sends no limit metric: its limit is configured (a Fir dyno size).
    fir: { memory_quota: { worker: 'dyno-1c-1gb' } },
    rules: [exampleRule('fir-web-memory-high'), exampleRule('fir-web-memory-predict')],
  };
  ({ file: rulesFile, dir } = tempRulesFile(stringify(rules)));
  const config = loadConfig({
    REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: queuePrefix, PORT: '0', HOST: '127.0.0.1',
    MALLET_DRAIN_PASSWORD: 'drain-secret-fir-leak', MALLET_ADMIN_PASSWORD: ADMIN, MALLET_RULES: rulesFile, FIR_TOKEN: TOKEN, LOG_LEVEL: 'silent',
  }, dir);
  service = await startService({ config, logger: pino({ level: 'silent' }) });
});

afterAll(async () => {
  await service?.close();
  for (const d of [...WEB, WORKER]) await redis.del(`puma::stop::${d}`);
  await cleanupPrefix(redis, prefix, queuePrefix);
  redis.disconnect();
});

const admin = async (path: string) => {
  const res = await fetch(service.url + path, { headers: { Authorization: basic(ADMIN) } });
  return { status: res.status, text: await res.text() };
};

describe('Fir memory metrics → the leak report and the console', () => {
  it('recovers 40 and 15 MB/h within 5 %, Fir\'s restarts at the quota, and shows the firing like a Cedar one', async () => {
    const url = `${service.url}/otlp/fir-app/v1/metrics`;
    // web: three dynos in turn, each 200 → 512 MB at 40 MB/h (7.8 h), replaced under a new name.
    let at = START;
    const sends: Array<[string, SeriesPoint[]]> = [];
    for (const dyno of WEB) {
      const s = series(at, 200, 40, 512, 512);
      sends.push([dyno, s]);
      at = s[s.length - 1]!.at + MINUTE;
    }
    // worker: 300 MB at 15 MB/h for 24 h, no limit metric.
    sends.push([WORKER, series(START, 300, 15, 300 + 15 * 24, undefined)]);

    let n = 0;
    for (const [dyno, points] of sends) {
      // An hour of samples an export (hours of history in seconds), then from 480 MB, where the
      // rules act, one sample an export as Fir's interval would send them.
      const batches: SeriesPoint[][] = [];
      const late = points.findIndex((p) => p.usageBytes >= 480 * MB);
      const early = late === -1 ? points : points.slice(0, late);
      for (let i = 0; i < early.length; i += 60) batches.push(early.slice(i, i + 60));
      if (late !== -1) for (const p of points.slice(late)) batches.push([p]);
      for (const batch of batches) {
        const encoding = n % 2 === 0 ? 'protobuf' as const : 'json' as const;
        const result = await exportMemorySeries({ url, token: TOKEN, encoding, gzip: n % 3 === 0 }, { 'service.name': 'fir-app', 'heroku.dyno.name': dyno }, batch);
        expect(result.code, `export ${n} of ${dyno}`).toBe(0);
        n++;
      }
    }

    const api = await eventually('the report', async () => {
      const r = await admin('/admin/api/report?app=fir-app');
      const json = JSON.parse(r.text) as LeakReport;
      return json.types.find((t) => t.processType === 'web')?.instances === 3 ? json : undefined;
    });
    const cli = spawnMallet(['report', '--app', 'fir-app', '--json'], { env: { ...process.env, REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix, MALLET_RULES: rulesFile } });
    expect((await cli.exited).code).toBe(0);
    const report = JSON.parse(cli.output()) as LeakReport;
    // The CLI and the API are the same report from the same Redis.
    expect(report).toEqual(api);

    const web = report.types.find((t) => t.processType === 'web')!;
    expect(web.generation).toBe('fir');
    expect(web.instances).toBe(3);
    expect(Math.abs(web.growthMbPerHour!.median - 40) / 40).toBeLessThan(0.05);
    expect(web.quotaMb).toBe(512);
    expect(web.hoursTo90).toBeCloseTo((0.9 * 512 - 200) / 40, 0);
    expect(web.hoursTo100).toBeCloseTo((512 - 200) / 40, 0);
    // All three stopped at the quota while the app went on sending (the worker's samples run
    // 36 min past the third web dyno's last): Fir's restart at 100 %, which it logs nowhere.
    expect(web.quotaRestarts).toBe(3);
    // Each example rule fired once, for the first dyno (the cooldown is the web type's, whatever
    // the dyno's name): the 90 % one at its third sample over 460.8 MB, then the predictive one
    // once the line through the last 15 min reached 512 MB within 30 min (at 40 MB/h: ~492 MB).
    expect(web.remediations).toBe(2);
    expect(web.marks.map((m) => [m[1], m[2]])).toEqual([[WEB[0], 'fir-web-memory-high/redis-stop-key'], [WEB[0], 'fir-web-memory-predict/redis-stop-key']]);
    expect(web.sentence).toMatch(/^web grows ~40 MB\/h and reaches its 512 MB quota ~7\.\d h after start; Fir restarted it at its memory limit 3 times; mallet stopped or restarted it 2 times/);

    const worker = report.types.find((t) => t.processType === 'worker')!;
    expect(Math.abs(worker.growthMbPerHour!.median - 15) / 15).toBeLessThan(0.05);
    expect(worker.quotaMb).toBe(1024);
    expect(worker.projectedHoursTo100).toBeCloseTo((1024 - 300) / 15, 0);

    // The console: the firing in the history API and on the status page, with the report section.
    const firings = JSON.parse((await admin('/admin/api/firings?app=fir-app&rule=fir-web-memory-high')).text) as { firings: Array<{ rule: string; target: string; outcome: string }> };
    const enqueued = firings.firings.filter((f) => f.outcome === 'enqueued');
    expect(enqueued.map((f) => [f.rule, f.target])).toEqual([['fir-web-memory-high', WEB[0]]]);
    // The dyno's later batches, and its replacements at ≥ 90 %, were held by the web type's cooldown.
    expect(firings.firings.filter((f) => f.outcome === 'cooldown').length).toBeGreaterThanOrEqual(1);
    const page = await admin('/admin');
    expect(page.status).toBe(200);
    expect(page.text).toContain('fir-web-memory-high');
    expect(page.text).toContain(WEB[0]);
    expect(page.text).toContain('Fir restarted it at its memory limit 3 times');
  }, 120_000);
});
