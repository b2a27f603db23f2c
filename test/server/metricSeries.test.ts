import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_APP_LABELS, OTHER_APP_LABEL } from '../../src/metrics.js';
import type { Service } from '../../src/server/service.js';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { testRedis, uniquePrefix } from '../support/redis.js';
import { tempRulesFile } from '../support/rulesFile.js';
import { startTestService } from '../support/testService.js';

/**
 * Issue 8, item 8: unbounded metric series. Without an `apps:` list every new app name in a drain
 * URL added `mallet_lines_total` series for good (10 000 names → 20 000 series). Through the
 * running service (real HTTP, real Redis): many app names give at most MAX_APP_LABELS app values,
 * the rest counted under `_other`, no line lost from the totals.
 */
const PASSWORD = 'drain-secret-series';
const redis = testRedis();
const prefix = uniquePrefix('series');
const queuePrefix = uniquePrefix('seriesq');
let running: Awaited<ReturnType<typeof startTestService>>;
let service: Service;
const APPS = MAX_APP_LABELS + 150;

beforeAll(async () => {
  const { file, dir } = tempRulesFile(`version: 1
rules:
  - name: puma-r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    actions:
      - { type: redis-stop-key, key: "${prefix}:puma::stop::{{target}}", ttl: 60s }
`);
  running = await startTestService({ redis, prefix, queuePrefix, drainPassword: PASSWORD, rulesFile: file, dir, worker: false, env: { MALLET_DRY_RUN: '1' } });
  service = running.service;
});

afterAll(async () => {
  await running?.close();
  redis.disconnect();
});

describe('mallet_lines_total without an apps: list', () => {
  it(`${APPS} app names in drain URLs make at most ${MAX_APP_LABELS} app series per source, the rest under ${OTHER_APP_LABEL}`, async () => {
    const body = frame(drainLine('app', 'web.1', 'hello'), drainLine('heroku', 'router', 'at=info'));
    for (let i = 0; i < APPS; i++) {
      const res = await postDrain(service.url!, `app-${i}`, body, { password: PASSWORD, headers: { 'Logplex-Frame-Id': `F${i}` } });
      expect(res.status).toBe(204);
    }
    const text = await (await fetch(`${service.url}/metrics`)).text();
    const series = text.split('\n').filter((l) => l.startsWith('mallet_lines_total{'));
    const apps = new Set(series.map((l) => /app="([^"]*)"/.exec(l)![1]));
    expect(apps.size).toBe(MAX_APP_LABELS + 1);
    expect(apps.has(OTHER_APP_LABEL)).toBe(true);
    expect(series).toHaveLength((MAX_APP_LABELS + 1) * 2);
    const total = series.reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    expect(total).toBe(APPS * 2);
    expect(series).toContain(`mallet_lines_total{app="${OTHER_APP_LABEL}",source="app"} ${APPS - MAX_APP_LABELS}`);
  });
});
