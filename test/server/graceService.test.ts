import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { adminGet, consoleService } from '../console/consoleService.js';
import { cleanupPrefix, testRedis } from '../support/redis.js';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { DRAIN } from '../console/consoleService.js';

/**
 * The whole path through `mallet serve`: drain POSTs → lifecycle (observer) → grace, then an R14
 * attributed to the one running instance → firing → worker → stop key naming that instance.
 */
const redis = testRedis();
const tag = `mtest-grace-${randomBytes(4).toString('hex')}`;
const KEY = `${tag}::stop::web.1`;
const RULES = `version: 1
rules:
  - name: r14-boot
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    threshold: { count: 2, within: 10m }
    grace: { after_start: 2m }
    actions:
      - type: redis-stop-key
        key: "${tag}::stop::{{target}}"
        ttl: 30s
`;
const A = '4b88c98d-6243-4194-af49-8db9b53be371';
const B = 'cd817c77-4f8e-4e68-b42a-3dea4e04d99c';
let svc: Awaited<ReturnType<typeof consoleService>>;
beforeAll(async () => { svc = await consoleService(RULES); }, 60_000);
afterAll(async () => {
  await svc.service.close();
  await cleanupPrefix(redis, svc.prefix, svc.queuePrefix, tag);
  redis.disconnect();
});

const base = Date.now() - 20 * 60_000;
const ts = (s: number) => new Date(base + s * 1000).toISOString().replace('Z', '+00:00');
const sample = (s: number, id: string) => drainLine('heroku', 'web.1', `source=web.1 dyno=heroku.54241834.${id} sample#memory_total=400.00MB sample#memory_rss=400.00MB sample#memory_quota=512.00MB`, ts(s));
const r14 = (s: number) => drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)', ts(s));
let n = 0;
async function send(...lines: string[]): Promise<void> {
  const res = await postDrain(svc.url, 'acme-shop', frame(...lines), { password: DRAIN, headers: { 'Logplex-Frame-Id': `G${n++}`, 'Logplex-Msg-Count': String(lines.length) } });
  expect(res.status).toBe(204);
}

describe('grace and instance-exact R14 through the service', () => {
  it('a restart and its R14s in one body are grace; later R14s of the one running instance stop that instance', async () => {
    await send(sample(0, A), sample(20, A));
    // The restart's start line and its first R14s in the same body: the rules run before the
    // observer stores the body, and still see the start.
    await send(drainLine('heroku', 'web.1', 'Starting process with command `bundle exec puma`', ts(60)), r14(90), r14(100));
    let graced = await adminGet(svc.url, '/admin/api/firings?outcome=grace');
    expect(graced.json.firings).toHaveLength(1);
    expect(graced.json.firings[0]).toMatchObject({ rule: 'r14-boot', target: 'web.1', count: 2 });
    expect(await redis.exists(KEY)).toBe(0);
    // A retried frame adds nothing.
    const res = await postDrain(svc.url, 'acme-shop', frame(drainLine('heroku', 'web.1', 'Starting process with command `bundle exec puma`', ts(60)), r14(90), r14(100)), { password: DRAIN, headers: { 'Logplex-Frame-Id': 'G1', 'Logplex-Msg-Count': '3' } });
    expect(res.status).toBe(204);
    graced = await adminGet(svc.url, '/admin/api/firings?outcome=grace');
    expect(graced.json.firings[0].count).toBe(2);

    // The new instance B samples; past its grace, two R14s fire, and B is the only one running.
    await send(...[120, 140, 160, 180, 200, 220, 240].map((s) => sample(s, B)));
    await send(r14(250), r14(260));
    let value: string | null = null;
    for (let i = 0; i < 200 && value === null; i++) {
      value = await redis.get(KEY);
      if (value === null) await new Promise((r) => setTimeout(r, 100));
    }
    expect(value).toBe(`r14-boot instance=${B}`);
    const metrics = await fetch(`${svc.url}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/mallet_firings_total\{rule="r14-boot",outcome="grace"\} 2/);
  }, 60_000);
});
