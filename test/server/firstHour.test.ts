import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queue } from 'bullmq';
import type { Service } from '../../src/server/service.js';
import { testRedis, uniquePrefix } from '../support/redis.js';
import { postDrain } from '../support/drainClient.js';
import { startTestService } from '../support/testService.js';

/**
 * The README's first POST, as a new user makes it: the example rules, the sample body with its
 * Logplex-Frame-Id → a firing; the same POST again → de-duplicated (204, no second job).
 */
const ROOT = join(import.meta.dirname, '../..');
const PASSWORD = 'first-hour-password';
const redis = testRedis();
const prefix = uniquePrefix('first');
const queuePrefix = uniquePrefix('firstq');
let running: Awaited<ReturnType<typeof startTestService>>;
let service: Service;
let queue: Queue;

beforeAll(async () => {
  // No worker: the job is the evidence, and its stop key must not land in the shared Redis.
  running = await startTestService({ redis, prefix, queuePrefix, drainPassword: PASSWORD, rulesFile: join(ROOT, 'config/rules.example.yml'), dir: ROOT, worker: false });
  ({ service, queue } = running);
});
afterAll(async () => {
  await running?.close();
  redis.disconnect();
});

describe('the first hour', () => {
  it('the README sample body fires web-memory-quota on the first POST, and the same frame again is skipped', async () => {
    const body = readFileSync(join(ROOT, 'examples/r14-twice.logplex'));
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    // The README shows this very request.
    expect(readme).toContain("-H 'Logplex-Frame-Id: first-post-1'");
    expect(readme).toContain('--data-binary @examples/r14-twice.logplex');
    const post = () => postDrain(service.url!, 'my-app', body, { password: PASSWORD, headers: { 'Logplex-Frame-Id': 'first-post-1' } });
    expect((await post()).status).toBe(204);
    const jobs = await queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed', 'prioritized']);
    expect(jobs.map((j) => [j.data.rule, j.data.app, j.data.target, j.data.mode])).toEqual([['web-memory-quota', 'my-app', 'web.1', 'execute']]);
    expect((await post()).status).toBe(204);
    expect(await queue.getJobCountByTypes('waiting', 'delayed', 'active', 'completed', 'failed', 'prioritized')).toBe(1);
  });

  it('GET / points to the dashboard and the docs, as JSON or a page', async () => {
    const json = await fetch(`${service.url}/`);
    expect(json.status).toBe(200);
    const links = await json.json() as Record<string, string>;
    expect(links.dashboard).toBe('/admin/queues (off: set MALLET_ADMIN_PASSWORD)');
    expect(links.docs).toBe('/docs');
    const page = await fetch(`${service.url}/`, { headers: { Accept: 'text/html' } });
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('<a href="/docs">/docs</a>');
    const docs = await fetch(`${service.url}/docs`);
    expect(docs.headers.get('content-type')).toContain('text/markdown');
    expect(await docs.text()).toContain('# mallet');
  });
});
