import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { redisKeys } from '../../src/keys.js';
import { SilenceStore } from '../../src/console/silenceStore.js';
import { SilenceCache } from '../../src/console/silenceCache.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { eventually } from '../support/eventually.js';

/**
 * The silences a firing reads come from memory between changes, and every change made anywhere
 * (another replica's store, the hash expiring, a delete by hand) empties the copy.
 */
const admin = testRedis();
const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  admin.disconnect();
});

async function setup() {
  const prefix = uniquePrefix('silcache');
  const keys = redisKeys(prefix);
  let now = Date.now();
  const clock = () => now;
  const conn = testRedis();
  const store = new SilenceStore(conn, keys, clock);
  let reads = 0;
  // A name of its own: the reconnect test kills this connection and no other test's.
  const connectionName = `mallet-silences-${prefix}`;
  const cache = new SilenceCache(() => { reads++; return store.active(); }, { redis: conn, key: keys.silences(), clock, logger: pino({ level: 'silent' }), connectionName });
  // Another replica: its own connection and store.
  const other = new SilenceStore(admin, keys, clock);
  cleanups.push(async () => { cache.close(); conn.disconnect(); await cleanupPrefix(admin, prefix); });
  await eventually('the invalidation subscription', async () => cache.tracking);
  return { cache, other, keys, connectionName, reads: () => reads, advance: (ms: number) => { now += ms; } };
}

describe('silence cache', () => {
  it('reads Redis once between changes', async () => {
    const s = await setup();
    expect(await s.cache.active()).toEqual([]);
    expect(await s.cache.active()).toEqual([]);
    expect(await s.cache.active()).toEqual([]);
    expect(s.reads()).toBe(1);
  });

  it('a silence another replica adds or ends empties the copy: the next firing sees it', async () => {
    const s = await setup();
    await s.cache.active();
    const added = await s.other.add({ app: 'shop', comment: 'deploy', durationMs: 3600_000 });
    if (added === 'full') throw new Error('full');
    await eventually('the added silence', async () => (await s.cache.active()).some((x) => x.id === added.id), 5000, 5);
    const before = s.reads();
    await s.cache.active();
    expect(s.reads()).toBe(before);
    expect(await s.other.expire(added.id)).toBe(true);
    await eventually('the ended silence gone', async () => (await s.cache.active()).length === 0, 5000, 5);
    // A write by hand (or the hash's own expiry) is a change too.
    const again = await s.other.add({ app: 'shop', comment: 'again', durationMs: 3600_000 });
    if (again === 'full') throw new Error('full');
    await eventually('the second silence', async () => (await s.cache.active()).length === 1, 5000, 5);
    await admin.del(s.keys.silences());
    const n = s.reads();
    await eventually('a read after the delete', async () => (await s.cache.active()).length === 0 && s.reads() > n, 5000, 5);
  });

  it('a silence that ends by its time leaves the copy without a read', async () => {
    const s = await setup();
    const added = await s.other.add({ app: 'shop', comment: 'short', durationMs: 60_000 });
    if (added === 'full') throw new Error('full');
    // The add's own invalidation comes on the cache's connection and may land after the first
    // read (dropping that copy once): wait until a copy holds, then time must end the silence.
    await eventually('a copy that holds', async () => {
      await s.cache.active();
      const r = s.reads();
      await new Promise((res) => setTimeout(res, 50));
      await s.cache.active();
      return s.reads() === r;
    }, 10_000, 5);
    expect((await s.cache.active()).map((x) => x.id)).toEqual([added.id]);
    const n = s.reads();
    s.advance(60_001);
    expect(await s.cache.active()).toEqual([]);
    expect(s.reads()).toBe(n);
  });

  it('after its invalidation connection is killed, tracking comes back on the new one and a change is seen', async () => {
    const s = await setup();
    const idOf = async () => {
      const list = String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
      return list.split('\n').find((l) => l.includes(` name=${s.connectionName} `))?.match(/^id=(\d+)/)?.[1];
    };
    const first = await idOf();
    expect(first).toBeDefined();
    await admin.call('CLIENT', 'KILL', 'ID', first!);
    // A new connection, subscribed, with tracking on (flag t) again.
    await eventually('a new tracked invalidation connection', async () => {
      const list = String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
      const line = list.split('\n').find((l) => l.includes(` name=${s.connectionName} `));
      return line !== undefined && !line.startsWith(`id=${first} `) && / flags=\S*t/.test(line) && s.cache.tracking;
    }, 10_000, 20);
    expect(await s.cache.active()).toEqual([]);
    const added = await s.other.add({ app: 'shop', comment: 'after reconnect', durationMs: 3600_000 });
    if (added === 'full') throw new Error('full');
    await eventually('the silence added after the reconnect', async () => (await s.cache.active()).some((x) => x.id === added.id), 5000, 5);
  });
});
