import { afterAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/keys.js';
import { HISTORY_BOUNDS } from '../../src/console/historyLua.js';
import { cleanupPrefix, testRedis } from '../support/redis.js';
import { eventually } from '../support/eventually.js';
import { adminGet, consoleService, post } from './consoleService.js';

/**
 * Firing history (issue #9 item 1) through a running service: real HTTP in, real Redis, the
 * records read back through /admin/api/firings.
 */
const redis = testRedis();
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  redis.disconnect();
});

const RULES = `version: 1
rules:
  - name: r14
    match: { process: "web.*", message: '^Error R14 ' }
    threshold: { count: 1, within: 1m }
    cooldown: 10m
    actions: [ { type: redis-stop-key, key: "{{app}}:stop:{{target}}" } ]
  - name: by-field
    match: { process: "router", message: 'code=H12' }
    target: "{{fields.dyno}}"
    actions: [ { type: redis-stop-key } ]
limits:
  per_app: { max_firings: 1, within: 10m }
`;

async function start(yaml = RULES) {
  const s = await consoleService(yaml);
  cleanups.push(async () => { await s.service.close(); await cleanupPrefix(redis, s.prefix, s.queuePrefix); });
  return s;
}

const R14 = 'Error R14 (Memory quota exceeded)';
type Rec = { outcome: string; rule: string; target: string; count: number; job?: string; id: string; at: string; last: string };
const firings = async (url: string, query = ''): Promise<Rec[]> => (await adminGet(url, `/admin/api/firings${query}`)).json.firings;

describe('firing history', () => {
  it('records each outcome once: a firing, its cooldown burst as one record with a count, a rejection; frames retried three times add nothing', async () => {
    const { url } = await start();
    expect(await post(url, 'shop', [['web.1', R14], ['router', 'at=error code=H12 dyno="web.1/../x"']], 'FRAME-A')).toBe(204);
    // Lines of one body at one time beyond the threshold's count are folded before judging
    // (voteBounds.ts), so the cooldown lines come in bodies of their own.
    expect(await post(url, 'shop', [['web.1', R14]], 'FRAME-B')).toBe(204);
    expect(await post(url, 'shop', [['web.1', R14]], 'FRAME-C')).toBe(204);
    const before = await firings(url);
    for (let i = 0; i < 3; i++) {
      const retries: Array<[string, Array<[string, string]>]> = [['FRAME-A', [['web.1', R14], ['router', 'at=error code=H12 dyno="web.1/../x"']]], ['FRAME-B', [['web.1', R14]]]];
      for (const [id, lines] of retries) expect(await post(url, 'shop', lines, id)).toBe(204);
    }
    const after = await firings(url);
    expect(after).toEqual(before);
    const byOutcome = Object.fromEntries(after.map((r) => [r.outcome, r]));
    expect(after.map((r) => r.outcome).sort()).toEqual(['cooldown', 'enqueued', 'rejected']);
    expect(byOutcome.enqueued).toMatchObject({ rule: 'r14', target: 'web.1', count: 1 });
    // Two lines after the firing, in its cooldown: one record counting two, linked to the firing's job.
    expect(byOutcome.cooldown).toMatchObject({ rule: 'r14', target: 'web.1', count: 2, job: byOutcome.enqueued!.job });
    expect(byOutcome.rejected).toMatchObject({ rule: 'by-field', target: '', count: 1 });
    // More cooldown lines in later frames fold into the same record.
    expect(await post(url, 'shop', [['web.1', R14]])).toBe(204);
    expect(await post(url, 'shop', [['web.1', R14]])).toBe(204);
    const folded = (await firings(url, '?outcome=cooldown'))[0]!;
    expect(folded).toMatchObject({ id: byOutcome.cooldown!.id, count: 4 });
    expect(Date.parse(folded.last)).toBeGreaterThanOrEqual(Date.parse(folded.at));
  });

  it('two replicas judging the same frames at once record them once (and the second submission as one duplicate record)', async () => {
    const a = await start();
    const b = await consoleService('', { prefix: a.prefix, queuePrefix: a.queuePrefix, dir: a.dir, file: a.file });
    cleanups.push(() => b.service.close());
    for (const id of ['FRAME-R', 'FRAME-S', 'FRAME-T']) {
      const [sa, sb] = await Promise.all([post(a.url, 'shop', [['web.2', R14]], id), post(b.url, 'shop', [['web.2', R14]], id)]);
      expect([sa, sb]).toEqual([204, 204]);
    }
    const recs = await firings(a.url);
    const counts = (o: string) => recs.filter((r) => r.outcome === o).length;
    expect(counts('enqueued')).toBe(1);
    expect(counts('cooldown')).toBe(1);
    expect(recs.find((r) => r.outcome === 'cooldown')!.count).toBe(2);
    expect(counts('duplicate')).toBeLessThanOrEqual(1);
    expect(recs.length).toBe(2 + counts('duplicate'));
  });

  it('a run of held firings of one target is one record; flapping is its own', async () => {
    const { url } = await start(RULES.replace('cooldown: 10m', 'cooldown: 1s'));
    // per_app max 1: the first executes, the next two are held, the fourth is flapping (more than 3 in 1h).
    for (let i = 0; i < 4; i++) {
      expect(await post(url, 'shop', [['web.3', R14]])).toBe(204);
      await new Promise((r) => setTimeout(r, 1100));
    }
    const recs = await firings(url, '?rule=r14');
    expect(recs.map((r) => [r.outcome, r.count])).toEqual([['flapping', 1], ['held', 2], ['enqueued', 1]]);
  });

  it('filters and pages newest first with a cursor: every record once', async () => {
    const { url } = await start();
    for (let i = 1; i <= 7; i++) expect(await post(url, 'shop', [[`web.${i}`, R14]])).toBe(204);
    const all = await firings(url, '?limit=500');
    expect(all.map((r) => r.target)).toEqual(['web.7', 'web.6', 'web.5', 'web.4', 'web.3', 'web.2', 'web.1']);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await adminGet(url, `/admin/api/firings?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.json.firings.map((r: Rec) => r.id));
      cursor = page.json.next;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual(all.map((r) => r.id));
    expect(pages).toBe(4);
    expect((await adminGet(url, '/admin/api/firings?target=web.[0-9]')).json.field).toBe('target');
    expect((await firings(url, '?target=web.?&outcome=held')).map((r) => r.target)).toEqual(['web.7', 'web.6', 'web.5', 'web.4', 'web.3', 'web.2']);
    const since = all[2]!.at;
    expect((await firings(url, `?since=${encodeURIComponent(since)}&app=shop`)).length).toBe(3);
    expect((await firings(url, `?until=${Date.parse(all[5]!.at)}`)).map((r) => r.target)).toEqual(['web.2', 'web.1']);
  });

  it.each([
    ['limit=0', 'limit'], ['limit=abc', 'limit'], ['outcome=exploded', 'outcome'], ['since=yesterday', 'since'],
    ['cursor=zzz', 'cursor'], ['app=Not_An_App', 'app'], ['rule=R%20X', 'rule'], ['colour=red', 'colour'],
    ['since=2024-01-02T00:00:00Z&until=2024-01-01T00:00:00Z', 'since'],
  ])('answers 400 naming the parameter for %s', async (query, parameter) => {
    const { url } = await shared();
    const res = await adminGet(url, `/admin/api/firings?${query}`);
    expect(res.status).toBe(400);
    expect(res.json.field).toBe(parameter);
    expect(res.json.message).toContain(parameter);
  });

  it('stays bounded: past MAXLEN the stream is trimmed, and entries older than 30 days go', async () => {
    const { url, prefix } = await start();
    const stream = redisKeys(prefix).history('shop');
    // Entries a month and a day old, then enough to pass the entry bound (written directly: quicker than firings).
    const old = Date.now() - HISTORY_BOUNDS.retentionMs - 24 * 3600_000;
    let p = redis.pipeline();
    for (let i = 0; i < 1000; i++) p.xadd(stream, `${old}-${i}`, 'kind', 'enqueued', 'rule', 'old', 'app', 'shop', 'target', 'web.1', 'at', String(old));
    await p.exec();
    for (let n = 0; n < HISTORY_BOUNDS.maxEntries + 500; n += 5000) {
      p = redis.pipeline();
      for (let i = 0; i < 5000; i++) p.xadd(stream, '*', 'kind', 'enqueued', 'rule', 'filler', 'app', 'shop', 'target', 'web.1', 'at', String(Date.now()));
      await p.exec();
    }
    expect(await redis.xlen(stream)).toBeGreaterThan(HISTORY_BOUNDS.maxEntries + 1000);
    expect(await post(url, 'shop', [['web.9', R14]])).toBe(204);
    const len = await redis.xlen(stream);
    // MAXLEN ~ trims whole stream nodes (100 entries by default), so a node's worth above the bound.
    expect(len).toBeLessThanOrEqual(HISTORY_BOUNDS.maxEntries + 100);
    expect(len).toBeGreaterThanOrEqual(HISTORY_BOUNDS.maxEntries);
    const [first] = (await redis.xrange(stream, '-', '+', 'COUNT', 1)) as Array<[string, string[]]>;
    expect(Number(first![0].split('-')[0])).toBeGreaterThan(old);
    expect((await firings(url, '?limit=1'))[0]).toMatchObject({ rule: 'r14', target: 'web.9', outcome: 'enqueued' });
  }, 60_000);

  it('the 30-day bound trims old entries even far below MAXLEN', async () => {
    const { url, prefix } = await start();
    const stream = redisKeys(prefix).history('shop');
    const old = Date.now() - HISTORY_BOUNDS.retentionMs - 24 * 3600_000;
    const p = redis.pipeline();
    for (let i = 0; i < 1000; i++) p.xadd(stream, `${old}-${i}`, 'kind', 'enqueued', 'rule', 'old', 'app', 'shop', 'target', 'web.1', 'at', String(old));
    await p.exec();
    expect(await post(url, 'shop', [['web.1', R14]])).toBe(204);
    // MINID ~ keeps at most the one node still holding the cut-off.
    expect(await redis.xlen(stream)).toBeLessThanOrEqual(101);
    await eventually('the firing in the history', async () => (await firings(url, '?rule=r14')).length === 1);
  });
});

let sharedService: Awaited<ReturnType<typeof start>> | undefined;
async function shared() {
  sharedService ??= await start();
  return sharedService;
}
