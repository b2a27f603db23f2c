import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ACTION_QUEUE } from '../../../src/keys.js';
import type { Service } from '../../../src/server/service.js';
import { eventually } from '../../support/eventually.js';
import { sendLogs } from '../../support/otelSdk.js';
import { restartableRedis } from '../../support/restartableRedis.js';
import { startSilentService } from '../../support/testService.js';

/**
 * Redis away while a Fir telemetry drain exports: mallet answers 503 with Retry-After, the SDK's
 * exporter retries on its own, and once Redis is back the line makes exactly one firing. Runs its
 * own redis-server, since it has to stop it. The capture folder records what arrived.
 */
const TOKEN = 'fir-outage-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'mallet-otlp-outage-'));
const own = restartableRedis(dir);
const port = own.port;
const captureDir = join(dir, 'capture');
let service: Service;

async function counted(status: string): Promise<number> {
  const m = (await service.metrics.registry.getSingleMetric('mallet_otlp_requests_total')?.get()) as { values: { labels: Record<string, string>; value: number }[] };
  return m.values.filter((v) => v.labels.status === status).reduce((a, v) => a + v.value, 0);
}

beforeAll(async () => {
  await own.start();
  const rules = join(dir, 'rules.yml');
  writeFileSync(rules, `version: 1
apps:
  fir-app:
    telemetry_token: \${FIR_TOKEN}
rules:
  - name: fir-boom
    match: { source: app, process: "web-*", message: 'FATAL boom' }
    actions: [ { type: redis-stop-key, ttl: 60s } ]
`);
  service = await startSilentService({ REDIS_URL: own.url, MALLET_DRAIN_PASSWORD: 'outage-drain-pw', MALLET_RULES: rules, FIR_TOKEN: TOKEN, MALLET_OTLP_CAPTURE: captureDir }, dir);
});

afterAll(async () => {
  await service?.close();
  await own.stopIfRunning();
});

describe('Redis away during an OTLP export', () => {
  it('answers 503 with Retry-After; the exporter retries and the line fires exactly once', async () => {
    await own.stop();
    const dyno = 'web-9a8b7c6d5-out01';
    const sent = sendLogs({ url: `${service.url}/otlp/fir-app/v1/logs`, token: TOKEN, encoding: 'protobuf', gzip: true, timeoutMillis: 30_000 },
      { 'service.name': 'fir-app', 'heroku.dyno.name': dyno }, [{ body: 'FATAL boom while Redis is away' }]);
    await eventually('a 503 to the exporter', async () => ((await counted('503')) > 0 ? true : undefined));
    await own.start();
    const results = await sent;
    expect(results.map((r) => r.code)).toEqual([0]);
    expect(await counted('200')).toBe(1);

    const conn = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null });
    const queue = new Queue(ACTION_QUEUE, { connection: conn });
    const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized']);
    expect(jobs.map((j) => j.data.target)).toEqual([dyno]);
    await eventually('the stop key', async () => (await conn.get(`puma::stop::${dyno}`)) ?? undefined);
    await queue.close();
    conn.disconnect();

    // The capture holds the request that got through: headers without the token, the decoded body.
    const files = await eventually('a capture file', async () => { try { const f = readdirSync(captureDir); return f.length ? f : undefined; } catch { return undefined; } });
    expect(files).toHaveLength(1);
    const text = readFileSync(join(captureDir, files![0]!), 'utf8');
    expect(text).not.toContain(TOKEN);
    const rec = JSON.parse(text);
    expect(rec).toMatchObject({ app: 'fir-app', path: '/otlp/fir-app/v1/logs', status: 200, headers: { authorization: '[redacted]', 'content-encoding': 'gzip', 'content-type': 'application/x-protobuf' } });
    expect(rec.decodedBytes).toBeGreaterThan(rec.bytes / 2);
    expect(rec.body.resourceLogs[0].resource).toContainEqual(['heroku.dyno.name', dyno]);
    expect(rec.body.resourceLogs[0].scopeLogs[0].logRecords[0].body).toBe('FATAL boom while Redis is away');
  }, 45_000);
});
