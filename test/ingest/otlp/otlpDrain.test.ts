import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queue } from 'bullmq';
import type { Service } from '../../../src/server/service.js';
import { startFakeHerokuApi, type FakeHerokuApi } from '../../support/fakeHerokuApi.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../../support/redis.js';
import { eventually } from '../../support/eventually.js';
import { memoryStopRule, tempRulesFile } from '../../support/rulesFile.js';
import { startTestService } from '../../support/testService.js';
import { memoryGauges, sendLogs } from '../../support/otelSdk.js';

/**
 * A Fir app's telemetry drain end to end: the OpenTelemetry SDK's own exporters (protobuf and
 * JSON, gzip or not) send to a running mallet, over real HTTP, with real Redis and a real worker;
 * the firings' actions run against Redis and a fake Platform API.
 */
const FIR_TOKEN = 'fir-telemetry-token-0123456789';
const OTHER_TOKEN = 'other-telemetry-token-9876543210';
const redis = testRedis();
const prefix = uniquePrefix('otlp');
const queuePrefix = uniquePrefix('otlpq');
let service: Service;
let api: FakeHerokuApi;
let queue: Queue;
const MB = 1024 * 1024;

const logsUrl = () => `${service.url}/otlp/fir-app/v1/logs`;
const metricsUrl = () => `${service.url}/otlp/fir-app/v1/metrics`;

beforeAll(async () => {
  api = await startFakeHerokuApi();
  const { file: rules, dir } = tempRulesFile(`version: 1
apps:
  fir-app:
    telemetry_token: \${FIR_TOKEN}
    heroku_api_token: \${TEST_HEROKU_TOKEN}
  other-app:
    telemetry_token: \${OTHER_TOKEN}
rules:
${memoryStopRule({ name: 'fir-web-memory', process: 'web-*', over: '>= 90%', count: 3, within: '10m', keyPrefix: prefix, moreActions: '      - type: heroku-restart\n' })}  - name: app-boom
    match: { source: app, message: 'FATAL boom' }
    actions: [ { type: redis-stop-key, key: "${prefix}:boom::{{target}}" } ]
`);
  ({ service, queue } = await startTestService({
    redis, prefix, queuePrefix, drainPassword: 'drain-password-otlp', rulesFile: rules, dir,
    env: { HEROKU_API_URL: api.url, FIR_TOKEN, OTHER_TOKEN, TEST_HEROKU_TOKEN: 'heroku-token-otlp' },
  }));
});

afterAll(async () => {
  await service?.close();
  await queue?.close();
  await api?.close();
  await cleanupPrefix(redis, prefix, queuePrefix);
  redis.disconnect();
});

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await service.metrics.registry.getSingleMetric(name)?.get()) as { values: { labels: Record<string, string>; value: number }[] } | undefined;
  const hit = m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val));
  return hit?.value ?? 0;
}

const linesOf = (app: string) => Promise.all(['app', 'heroku'].map((source) => metricValue('mallet_lines_total', { app, source }))).then(([a, h]) => a! + h!);

function firResource(dyno: string): Record<string, string> {
  return { 'service.name': 'fir-app', 'heroku.dyno.name': dyno, 'cloud.provider': 'heroku' };
}

describe('OTLP logs from the SDK exporters', () => {
  it.each([
    // One process type each: a Fir dyno's cooldown is its process type's.
    ['protobuf', false, 'web-1a2b3c4d5-aaaa1'],
    ['protobuf', true, 'worker-1a2b3c4d5-aaaa2'],
    ['json', false, 'clock-1a2b3c4d5-aaaa3'],
    ['json', true, 'node-worker-1a2b3c4d5-aaaa4'],
  ] as const)('%s (gzip %s): an app line from a Fir dyno fires the rule as a Cedar line would', async (encoding, gzip, dyno) => {
    const results = await sendLogs({ url: logsUrl(), token: FIR_TOKEN, encoding, gzip }, firResource(dyno), [
      { body: 'GET / 200' },
      { body: 'FATAL boom in the request loop\n', severity: 21 },
    ]);
    expect(results.map((r) => r.code)).toEqual([0, 0]);
    // Stored before the 200: the stop key of exactly that dyno is written by the worker.
    const value = await eventually('the stop key', () => redis.get(`${prefix}:boom::${dyno}`).then((v) => v ?? undefined));
    expect(value).toBe('app-boom');
    // Taken as the Puma plugin would: the step (and the process type's rolling slot) is done once consumed.
    await redis.del(`${prefix}:boom::${dyno}`);
  });

  it('a wrong token, or another app\'s token, is 401 and nothing is counted', async () => {
    const before = await linesOf('fir-app');
    const wrong = await sendLogs({ url: logsUrl(), token: 'not-the-token-0123456789', encoding: 'protobuf' }, firResource('api-1a2b3c4d5-bbbb1'), [{ body: 'FATAL boom' }]);
    const other = await sendLogs({ url: logsUrl(), token: OTHER_TOKEN, encoding: 'json' }, firResource('api-1a2b3c4d5-bbbb1'), [{ body: 'FATAL boom' }]);
    for (const r of [...wrong, ...other]) {
      expect(r.code).toBe(1);
      expect((r.error as { code?: number }).code).toBe(401);
    }
    const none = await fetch(logsUrl(), { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array(0) });
    expect(none.status).toBe(401);
    expect(await linesOf('fir-app')).toBe(before);
    expect(await redis.get(`${prefix}:boom::api-1a2b3c4d5-bbbb1`)).toBeNull();
  });
});

describe('OTLP metrics: memory at ≥ 90 % of the limit for 3 samples', () => {
  it('fires on the third sample, stops that Fir dyno and restarts it by name; its replacement stays in cooldown', async () => {
    const dyno = 'web-5f6e7d8c9-mem01';
    const gauges = memoryGauges({ url: metricsUrl(), token: FIR_TOKEN, encoding: 'protobuf', gzip: true }, firResource(dyno));
    gauges.limitBytes = 512 * MB;
    gauges.usageBytes = 300 * MB;
    expect((await gauges.sample()).code).toBe(0);
    gauges.usageBytes = 470 * MB; // 91.8 %
    expect((await gauges.sample()).code).toBe(0);
    expect((await gauges.sample()).code).toBe(0);
    expect(await redis.get(`${prefix}:puma::stop::${dyno}`)).toBeNull();
    gauges.usageBytes = 480 * MB;
    expect((await gauges.sample()).code).toBe(0);
    await gauges.close();

    const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'prioritized']);
    const mine = jobs.filter((j) => j.data.rule === 'fir-web-memory');
    expect(mine).toHaveLength(1);
    expect(mine[0]!.data.target).toBe(dyno);
    await eventually('the stop key', () => redis.get(`${prefix}:puma::stop::${dyno}`).then((v) => v ?? undefined));
    // Taken as the Puma plugin takes it (the step is done once consumed), so the restart step follows.
    await redis.del(`${prefix}:puma::stop::${dyno}`);
    const restart = await eventually('the restart', async () => api.requests.find((r) => r.method === 'DELETE'));
    expect(restart!.path).toBe(`/apps/fir-app/dynos/${dyno}`);

    // Fir restarts the dyno under a new name; it is still the web process type's cooldown.
    const replacement = 'web-5f6e7d8c9-mem02';
    const again = memoryGauges({ url: metricsUrl(), token: FIR_TOKEN, encoding: 'json' }, firResource(replacement));
    again.limitBytes = 512 * MB;
    again.usageBytes = 500 * MB;
    for (let i = 0; i < 3; i++) expect((await again.sample()).code).toBe(0);
    await again.close();
    expect(await metricValue('mallet_firings_total', { rule: 'fir-web-memory', outcome: 'cooldown' })).toBeGreaterThanOrEqual(1);
    const after = (await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'prioritized'])).filter((j) => j.data.rule === 'fir-web-memory');
    expect(after).toHaveLength(1);
  });

  it('accepts metrics on the bare /otlp/:app path, telling the signal from the body', async () => {
    const dyno = 'web-5f6e7d8c9-bare1';
    const gauges = memoryGauges({ url: `${service.url}/otlp/fir-app`, token: FIR_TOKEN, encoding: 'protobuf' }, firResource(dyno));
    gauges.limitBytes = 1024 * MB;
    gauges.usageBytes = 100 * MB;
    expect((await gauges.sample()).code).toBe(0);
    await gauges.close();
    expect(await metricValue('mallet_otlp_items_total', { signal: 'metrics', outcome: 'accepted' })).toBeGreaterThan(0);
    expect(await metricValue('mallet_otlp_requests_total', { signal: 'metrics', status: '200' })).toBeGreaterThan(0);
  });
});

describe('OTLP answers', () => {
  const post = (path: string, body: Buffer | string, headers: Record<string, string>) =>
    fetch(`${service.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${FIR_TOKEN}`, ...headers }, body: typeof body === 'string' ? body : new Uint8Array(body) });

  it.each([
    ['protobuf: a length past the end', Buffer.from([0x0a, 0x7f, 0x01]), 'application/x-protobuf'],
    ['protobuf: a group wire type', Buffer.from([0x0b]), 'application/x-protobuf'],
    ['json: not JSON', Buffer.from('{"resourceLogs": ['), 'application/json'],
    ['json: a string where a list belongs', Buffer.from('{"resourceLogs": "x"}'), 'application/json'],
  ])('undecodable (%s) → 400', async (_name, body, type) => {
    const res = await post('/otlp/fir-app/v1/logs', body, { 'content-type': type });
    expect(res.status).toBe(400);
  });

  it('a point without a value is a partial success, counted as rejected', async () => {
    const body = JSON.stringify({ resourceMetrics: [{ resource: { attributes: [{ key: 'heroku.dyno.name', value: { stringValue: 'web-5f6e7d8c9-part1' } }] },
      scopeMetrics: [{ metrics: [{ name: 'dyno.memory.usage', unit: 'By', gauge: { dataPoints: [{ timeUnixNano: '1764620000000000000' }, { timeUnixNano: '1764620000000000000', asInt: '1048576' }] } }] }] }] });
    const res = await post('/otlp/fir-app/v1/metrics', body, { 'content-type': 'application/json' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ partialSuccess: { rejectedDataPoints: '1', errorMessage: expect.any(String) } });
  });

  it('traces are accepted and dropped, counted', async () => {
    const before = await metricValue('mallet_otlp_items_total', { signal: 'traces', outcome: 'dropped' });
    const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ name: 'GET /' }, { name: 'GET /x' }] }] }] });
    const res = await post('/otlp/fir-app/v1/traces', body, { 'content-type': 'application/json' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{}');
    expect(await metricValue('mallet_otlp_items_total', { signal: 'traces', outcome: 'dropped' })).toBe(before + 2);
  });

  it('an empty protobuf export is a success with an empty body', async () => {
    const res = await post('/otlp/fir-app/v1/logs', Buffer.alloc(0), { 'content-type': 'application/x-protobuf' });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
  });

  it('a decompression bomb is refused with 413 without inflating it', async () => {
    const bomb = gzipSync(Buffer.alloc(16 * MB));
    expect(bomb.length).toBeLessThan(1 * MB);
    const res = await post('/otlp/fir-app/v1/logs', bomb, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' });
    expect(res.status).toBe(413);
  });

  it('a body over 1 MiB before decompression is 413', async () => {
    const res = await post('/otlp/fir-app/v1/logs', Buffer.alloc(1 * MB + 1), { 'content-type': 'application/x-protobuf' });
    expect(res.status).toBe(413);
  });

  it('an unknown Content-Encoding is 415, an unknown signal 404', async () => {
    expect((await post('/otlp/fir-app/v1/logs', Buffer.from([1]), { 'content-type': 'application/x-protobuf', 'content-encoding': 'br' })).status).toBe(415);
    expect((await post('/otlp/fir-app/v1/profiles', Buffer.alloc(0), { 'content-type': 'application/x-protobuf' })).status).toBe(404);
  });
});
