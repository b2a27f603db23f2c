import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { ACTION_QUEUE, redisKeys } from '../../src/keys.js';
import { SilenceStore } from '../../src/console/silenceStore.js';
import { main } from '../../src/cli/main.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { eventually } from '../support/eventually.js';
import { adminGet, adminSend, consoleService, post } from './consoleService.js';

/** Silences (issue #9 item 4) over the API and the CLI, and what a silenced firing does. */
const redis = testRedis();
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  redis.disconnect();
});

const RULES = `version: 1
apps:
  shop: {}
  other: {}
rules:
  - name: r14
    match: { process: "web.*", message: '^Error R14 ' }
    actions:
      - { type: redis-stop-key, key: "{{app}}:stop:{{target}}" }
`;
const R14 = 'Error R14 (Memory quota exceeded)';

async function start() {
  const s = await consoleService(RULES);
  cleanups.push(async () => { await s.service.close(); await cleanupPrefix(redis, s.prefix, s.queuePrefix); });
  return s;
}

/** `mallet …` in-process against the service's Redis and rules. */
async function cli(s: { prefix: string; file: string; dir: string }, ...argv: string[]) {
  let out = '';
  let err = '';
  const sink = (f: (t: string) => void) => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
  const code = await main(argv, {
    stdout: sink((t) => { out += t; }), stderr: sink((t) => { err += t; }), cwd: s.dir,
    env: { REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: s.prefix, MALLET_RULES: s.file, LOG_LEVEL: 'silent' },
  });
  return { code, out, err };
}

describe('silences', () => {
  it('add, list and expire over the API; bad input is a 400 naming the field', async () => {
    const { url } = await start();
    const added = await adminSend(url, 'POST', '/admin/api/silences', { app: 'shop', rule: 'r14', target: 'web.*', for: '2h', comment: 'deploying the leak fix' });
    expect(added.status).toBe(201);
    const s = added.json.silence;
    expect(s).toMatchObject({ app: 'shop', rule: 'r14', target: 'web.*', comment: 'deploying the leak fix' });
    expect(s.endsAt - s.startsAt).toBe(2 * 3600_000);
    expect((await adminGet(url, '/admin/api/silences')).json.silences.map((x: { id: string }) => x.id)).toEqual([s.id]);
    expect((await adminSend(url, 'DELETE', `/admin/api/silences/${s.id}`)).status).toBe(204);
    expect((await adminGet(url, '/admin/api/silences')).json.silences).toEqual([]);
    expect((await adminSend(url, 'DELETE', `/admin/api/silences/${s.id}`)).status).toBe(404);

    const cases: Array<[Record<string, unknown>, string]> = [
      [{ rule: 'r14', for: '2h', comment: 'x' }, 'app'],
      [{ app: 'shop', for: '2h' }, 'comment'],
      [{ app: 'shop', for: '8d', comment: 'too long' }, 'for'],
      [{ app: 'shop', for: 'soon', comment: 'x' }, 'for'],
      [{ app: 'shop', for: '2h', comment: 'x'.repeat(501) }, 'comment'],
      [{ app: 'shop', target: 'web.1; DEL *', for: '2h', comment: 'x' }, 'target'],
      [{ app: 'shop', rule: 'R14!', for: '2h', comment: 'x' }, 'rule'],
      [{ app: 'shop', for: '2h', comment: 'x', colour: 'red' }, 'colour'],
      [{ app: 'nope', for: '2h', comment: 'unknown app' }, 'app'],
      [{ app: 'shop', rule: 'no-such-rule', for: '2h', comment: 'unknown rule' }, 'rule'],
    ];
    for (const [body, field] of cases) {
      const res = await adminSend(url, 'POST', '/admin/api/silences', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.field, JSON.stringify(body)).toBe(field);
    }
    const forced = await adminSend(url, 'POST', '/admin/api/silences', { app: 'shop', rule: 'no-such-rule', for: '1h', comment: 'ahead of a new rule', force: true });
    expect(forced.status).toBe(201);
    expect(forced.json.warnings).toEqual(['no rule named no-such-rule in the rules in force']);
  });

  it('add, list and expire from the CLI (the same silences the API lists)', async () => {
    const s = await start();
    const add = await cli(s, 'silence', 'add', '--app', 'shop', '--target', 'web.*', '--for', '2h', '--comment', 'deploy in progress', '--by', 'ana');
    expect(add.code, add.err).toBe(0);
    const id = add.out.trim();
    expect(id).toMatch(/^s[0-9a-f]{12}$/);
    const list = await cli(s, 'silence', 'list');
    expect(list.out).toContain(id);
    expect(list.out).toContain('app shop, every rule, target web.*');
    expect(list.out).toContain('"deploy in progress"');
    expect((await adminGet(s.url, '/admin/api/silences')).json.silences[0]).toMatchObject({ id, createdBy: 'ana' });
    const bad = await cli(s, 'silence', 'add', '--app', 'shop', '--for', '30d', '--comment', '');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--for: must be between');
    expect(bad.err).toContain('--comment: is required');
    const unknown = await cli(s, 'silence', 'add', '--app', 'shop', '--rule', 'nope', '--for', '1h', '--comment', 'x');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('--force');
    const forced = await cli(s, 'silence', 'add', '--app', 'shop', '--rule', 'nope', '--for', '1h', '--comment', 'x', '--force');
    expect(forced.code).toBe(0);
    expect(forced.err).toContain('warning: no rule named nope');
    expect((await cli(s, 'silence', 'expire', id)).code).toBe(0);
    expect((await cli(s, 'silence', 'list')).out).not.toContain(id);
    expect((await cli(s, 'silence', 'expire', id)).code).toBe(1);
  });

  it('ends by itself when its time is up (injected clock)', async () => {
    const prefix = uniquePrefix('sil');
    cleanups.push(() => cleanupPrefix(redis, prefix));
    let now = 1_700_000_000_000;
    const store = new SilenceStore(redis, redisKeys(prefix), () => now);
    const s = await store.add({ app: 'shop', durationMs: 60_000, comment: 'one minute' });
    expect(s).not.toBe('full');
    now += 59_999;
    expect((await store.active()).length).toBe(1);
    now += 1;
    expect(await store.active()).toEqual([]);
    // Gone from Redis too, not only hidden.
    expect(await redis.hlen(redisKeys(prefix).silences())).toBe(0);
  });

  it('a silenced firing runs nothing, is recorded as silenced, and counts toward no limit', async () => {
    const s = await start();
    const { service, url, queuePrefix, prefix } = s;
    expect((await adminSend(url, 'POST', '/admin/api/silences', { app: 'shop', target: 'web.*', for: '1h', comment: 'hands off' })).status).toBe(201);
    expect(await post(url, 'shop', [['web.4', R14]])).toBe(204);
    expect(await post(url, 'other', [['web.4', R14]])).toBe(204);
    const recs = (await adminGet(url, '/admin/api/firings')).json.firings;
    expect(recs.map((r: { app: string; outcome: string }) => `${r.app} ${r.outcome}`)).toEqual(['other enqueued', 'shop silenced']);
    const queue = new Queue(ACTION_QUEUE, { connection: redis, prefix: queuePrefix });
    cleanups.push(() => queue.close());
    const job = await queue.getJob(recs[1].job);
    expect(job!.data.mode).toBe('silenced');
    const done = await eventually('the silenced job to finish', async () => ((await queue.getJob(job!.id!))?.finishedOn ? queue.getJob(job!.id!) : undefined));
    expect((await queue.getJobLogs(done!.id!)).logs.join('\n')).toContain('silenced, did not');
    // The other app's stop key was written, the silenced one's never.
    await eventually('the other app\'s stop key', async () => (await redis.get('other:stop:web.4')) !== null);
    expect(await redis.get('shop:stop:web.4')).toBeNull();
    const k = redisKeys(prefix);
    expect(await redis.zcard(k.stormGuard('shop'))).toBe(0);
    expect(await redis.zcard(k.flapping('shop', 'web.4'))).toBe(0);
    const metrics = await service.metrics.registry.getSingleMetricAsString('mallet_firings_total');
    expect(metrics).toContain('outcome="silenced"} 1');
    await redis.del('other:stop:web.4');
  });
});
