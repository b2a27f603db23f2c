import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { cleanupPrefix, testRedis, testRedisUrl } from '../support/redis.js';
import { adminGet, adminSend, consoleService, post } from './consoleService.js';

/** Explain (issue #9 item 2): why a rule did or did not act on a target, from the engine's state. */
const redis = testRedis();
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  redis.disconnect();
});

const RULES = (prefix: string) => `version: 1
rules:
  - name: r14
    match: { process: "web.*", message: '^Error R14 ' }
    threshold: { count: 3, within: 90s }
    cooldown: 10m
    actions: [ { type: redis-stop-key, key: "${prefix}:stop:{{target}}" } ]
  - name: r15
    match: { process: "web.*", message: '^Error R15 ' }
    actions: [ { type: redis-stop-key, key: "${prefix}:stop15:{{target}}" } ]
limits:
  per_app: { max_firings: 1, within: 10m }
`;
const R14 = 'Error R14 (Memory quota exceeded)';
const R15 = 'Error R15 (Memory quota vastly exceeded)';
const hhmmss = (ms: number) => new Date(ms).toISOString().slice(11, 19);

async function start() {
  const probe = `mtest-exstop-${Math.random().toString(16).slice(2, 8)}`;
  const s = await consoleService(RULES(probe));
  cleanups.push(async () => { await s.service.close(); await cleanupPrefix(redis, s.prefix, s.queuePrefix, probe); });
  return s;
}

const explainApi = async (url: string, rule: string, target: string) => (await adminGet(url, `/admin/api/explain?app=shop&rule=${rule}&target=${target}`)).json;

describe('explain', () => {
  it('a rule at 2 of 3 says which condition is short and until when; then cooldown; then the storm guard; then a silence', async () => {
    const s = await start();
    const { url } = s;
    const t0 = Date.now();
    expect(await post(url, 'shop', [['web.3', R14], ['web.3', R14]])).toBe(204);
    let e = await explainApi(url, 'r14', 'web.3');
    expect(e.verdict).toBe('counting');
    expect(e.threshold).toMatchObject({ count: 3, withinMs: 90_000, inWindow: 2 });
    const before = e.threshold.neededBefore as number;
    expect(before).toBeGreaterThanOrEqual(t0 + 90_000);
    expect(e.summary).toBe(`2 of 3 matches within 90s; next needed before ${hhmmss(before)} (1 more needed)`);

    expect(await post(url, 'shop', [['web.3', R14]])).toBe(204);
    e = await explainApi(url, 'r14', 'web.3');
    expect(e.verdict).toBe('cooldown');
    expect(e.cooldown.active).toBe(true);
    expect(e.cooldown.remainingMs).toBeGreaterThan(9 * 60_000);
    expect(e.summary).toMatch(/^in cooldown after the firing at \d\d:\d\d:\d\d until \d\d:\d\d:\d\d \(\d+m( \d+s)? left\)/);
    expect(e.recent.map((r: { outcome: string }) => r.outcome)).toEqual(['enqueued']);
    expect(e.cooldown.job).toBe(e.recent[0].job);

    // The storm guard: shop has had one firing (max 1), so r15's next match on web.5 would be held.
    e = await explainApi(url, 'r15', 'web.5');
    expect(e.verdict).toBe('held');
    expect(e.stormGuard).toMatchObject({ firings: 1, max: 1, tripped: true });
    expect(e.summary).toContain('0 of 1 match within 1m (1 more needed); when it fires, its actions are held');
    expect(await post(url, 'shop', [['web.5', R15]])).toBe(204);
    e = await explainApi(url, 'r15', 'web.5');
    expect(e.recent.map((r: { outcome: string }) => r.outcome)).toEqual(['held']);

    expect((await adminSend(url, 'POST', '/admin/api/silences', { app: 'shop', target: 'web.6', for: '1h', comment: 'deploying' })).status).toBe(201);
    e = await explainApi(url, 'r15', 'web.6');
    expect(e.verdict).toBe('silenced');
    expect(e.summary).toContain('(deploying)');
    expect(e.silences).toHaveLength(1);

    // The CLI prints the same, in text.
    let out = '';
    const code = await main(['explain', '--app', 'shop', '--rule', 'r14', '--target', 'web.3'], {
      stdout: new Writable({ write(c, _e, cb) { out += String(c); cb(); } }), stderr: new Writable({ write(_c, _e, cb) { cb(); } }), cwd: s.dir,
      env: { REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: s.prefix, MALLET_RULES: s.file },
    });
    expect(code).toBe(0);
    expect(out).toMatch(/^r14 on shop web\.3: in cooldown after the firing at/);
    expect(out).toContain('storm guard shop: 2/1 firings within 10m — tripped: firings are held');
    expect(out).toMatch(/last decisions:\n {2}\S+ {2}enqueued/);
  });

  it('answers 400 naming a missing or bad parameter, and says so for an unknown rule', async () => {
    const { url } = await start();
    for (const [q, field] of [['rule=r14&target=web.1', 'app'], ['app=shop&target=web.1', 'rule'], ['app=shop&rule=r14&target=web%2F1', 'target']]) {
      const res = await adminGet(url, `/admin/api/explain?${q}`);
      expect(res.status).toBe(400);
      expect(res.json.field).toBe(field);
    }
    const e = await explainApi(url, 'nope', 'web.1');
    expect(e.verdict).toBe('unknown-rule');
    expect(e.summary).toContain('r14, r15');
  });
});
