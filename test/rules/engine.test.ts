import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { loadRulesText, type CompiledRuleSet } from '../../src/rules/load.js';
import { RulesEngine } from '../../src/rules/engine.js';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { event } from './events.js';

const RULES = `
version: 1
rules:
  - name: puma-memory
    match: { process: "web.*", message: '^Error R1[45] ' }
    threshold: { count: 2, within: 5m }
    cooldown: 10m
    actions: [ { type: redis-stop-key } ]
  - name: h12
    match: { process: router, fields: { code: H12 } }
    target: "{{fields.dyno}}"
    actions: [ { type: heroku-restart } ]
`;

function rules(text = RULES): CompiledRuleSet {
  const r = loadRulesText(text, 'rules.yml', { HOOK: 'https://hooks.example.test/x' });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.ruleSet;
}

let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => { redis = testRedis(); });
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); await redis.quit(); });

function engine(ruleSet = rules(), prefix = uniquePrefix('eng')) {
  prefixes.push(prefix);
  const metrics = createMetrics(undefined, { defaults: false });
  let now = 1_700_000_000_000;
  const e = new RulesEngine({
    redis, keys: redisKeys(prefix), metrics, logger: pino({ level: 'silent' }),
    getRuleSet: () => ruleSet, clock: () => now,
  });
  return { engine: e, metrics, prefix, step: (ms: number) => { now += ms; }, at: () => now };
}

const r14 = (proc = 'web.1', id?: string) => event('heroku', proc, 'Error R14 (Memory quota exceeded)', id ? { id } : {});

async function outcome(metrics: ReturnType<typeof createMetrics>, o: string): Promise<number> {
  const m = await metrics.firingsTotal.get();
  return m.values.filter((v) => v.labels.outcome === o).reduce((a, v) => a + v.value, 0);
}

describe('RulesEngine', () => {
  it('fires when the count is reached within the window, then cools down', async () => {
    const { engine: e, metrics, step } = engine();
    expect(await e.evaluate([r14()])).toEqual([]);
    step(60_000);
    const [f, ...rest] = await e.evaluate([r14()]);
    expect(rest).toEqual([]);
    expect(f).toMatchObject({ rule: 'puma-memory', app: 'acme-shop', target: 'web.1', processType: 'web', dryRun: false });
    expect(f!.id).toMatch(/^f[0-9a-f]{40}$/);
    expect(f!.triggerLines).toHaveLength(2);
    expect(f!.triggerLines[0]).toMatch(/^\S+ heroku\[web\.1\]: Error R14 \(Memory quota exceeded\)$/);
    expect(f!.actions).toEqual([{ type: 'redis-stop-key', key: 'puma::stop::web.1', value: 'puma-memory', ttlMs: 60_000 }]);
    step(60_000);
    expect(await e.evaluate([r14(), r14()])).toEqual([]);
    expect(await outcome(metrics, 'cooldown')).toBe(2);
    step(10 * 60_000);
    expect(await e.evaluate([r14()])).toEqual([]);
    expect(await e.evaluate([r14()])).toHaveLength(1);
  });

  it('does not fire when the lines are further apart than the window', async () => {
    const { engine: e, step } = engine();
    expect(await e.evaluate([r14()])).toEqual([]);
    step(5 * 60_000);
    expect(await e.evaluate([r14()])).toEqual([]);
    step(60_000);
    expect(await e.evaluate([r14()])).toHaveLength(1);
  });

  it('counts a retried event once and returns the same firing for it', async () => {
    const { engine: e } = engine();
    const a = r14('web.2', 'd.x:F1:0');
    expect(await e.evaluate([a])).toEqual([]);
    expect(await e.evaluate([a])).toEqual([]);
    const b = r14('web.2', 'd.x:F2:0');
    const first = await e.evaluate([b]);
    expect(first).toHaveLength(1);
    const again = await e.evaluate([b]);
    expect(again.map((f) => f.id)).toEqual(first.map((f) => f.id));
    const body = await e.evaluate([a, b]);
    expect(body.map((f) => f.id)).toEqual(first.map((f) => f.id));
  });

  it('fires once when two engines on one Redis see alternating lines of one dyno', async () => {
    const prefix = uniquePrefix('eng2');
    const one = engine(rules(), prefix);
    const two = engine(rules(), prefix);
    const firings = [];
    for (let i = 0; i < 6; i++) {
      const ev = r14('web.3');
      firings.push(...await (i % 2 ? two : one).engine.evaluate([ev]));
      // the other replica gets the same line too (a retry landing elsewhere)
      firings.push(...await (i % 2 ? one : two).engine.evaluate([ev]));
    }
    expect(new Set(firings.map((f) => f.id)).size).toBe(1);
  });

  it('keys thresholds per target and takes the target from a field', async () => {
    const { engine: e } = engine();
    const h12 = (dyno: string) => event('heroku', 'router', `at=error code=H12 desc="Request timeout" method=GET path="/" dyno=${dyno} connect=1ms service=30000ms status=503`);
    const out = await e.evaluate([h12('web.1'), h12('web.2')]);
    expect(out.map((f) => f.actions[0])).toEqual([
      { type: 'heroku-restart', app: 'acme-shop', scope: 'dyno', dyno: 'web.1' },
      { type: 'heroku-restart', app: 'acme-shop', scope: 'dyno', dyno: 'web.2' },
    ]);
  });

  it.each([
    ['path traversal', 'web.1/../x'],
    ['CRLF command', 'web.1\r\nDEL *'],
    ['10 KiB value', 'w'.repeat(10 * 1024)],
    ['empty dyno', ''],
    ['glob', 'web.*'],
  ])('rejects a firing whose target from the line is a %s', async (_name, dyno) => {
    const { engine: e, metrics, prefix } = engine();
    const line = event('heroku', 'router', `at=error code=H12 dyno="${dyno}" service=30000ms`);
    expect(await e.evaluate([line])).toEqual([]);
    expect(await outcome(metrics, 'rejected')).toBe(1);
    // Only the history's own keys (the stream, a stats bucket, the rule+app's record of
    // rejections): no key is built from the line's value.
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
    const k = redisKeys(prefix);
    const own = k.threshold('h12', 'acme-shop', '');
    const history = k.history('acme-shop');
    for (const key of keys) expect([history, own.spell, own.seen, k.historyApps()]).toContain(key.startsWith(`${prefix}:stats:`) ? history : key);
    expect(keys).toContain(history);
  });

  it('rejects captures that would make a bad stop key', async () => {
    const rs = rules(`
version: 1
rules:
  - name: cap
    match: { source: app, message: 'stop (?<who>\\S+)' }
    actions: [ { type: redis-stop-key, key: "stop::{{captures.who}}" } ]
`);
    const { engine: e, metrics } = engine(rs);
    expect(await e.evaluate([event('app', 'web.1', 'stop web.1*')])).toEqual([]);
    expect(await outcome(metrics, 'rejected')).toBe(1);
    const ok = await e.evaluate([event('app', 'web.1', 'stop web.2')]);
    expect(ok[0]!.actions[0]).toMatchObject({ key: 'stop::web.2' });
  });

  it('escapes what a line brings into a notify text, and keeps the operator\'s own Slack markup', async () => {
    const rs = rules(`
version: 1
rules:
  - name: tell
    match: { source: app, message: '^Error R14 ' }
    actions: [ { type: notify, url: "\${HOOK}", text: "<!here> {{process}}: {{message}}" } ]
`);
    const { engine: e } = engine(rs);
    const [f] = await e.evaluate([event('app', 'web.1', 'Error R14 <!channel> <https://evil.example/ack|Cancel the restart> & more')]);
    expect(f!.actions[0]).toMatchObject({ text: '<!here> web.1: Error R14 &lt;!channel&gt; &lt;https://evil.example/ack|Cancel the restart&gt; &amp; more' });
  });

  it('does not let an app line imitating a platform line fire a heroku rule', async () => {
    const { engine: e } = engine(rules(RULES.replace('count: 2', 'count: 1')));
    const fake: DrainEvent[] = [event('app', 'web.1', 'Error R14 (Memory quota exceeded)'), event('app', 'web.1', 'Error R15 (Memory quota vastly exceeded)')];
    expect(await e.evaluate(fake)).toEqual([]);
    expect(await e.evaluate([r14()])).toHaveLength(1);
  });
});
