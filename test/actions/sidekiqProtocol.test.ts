import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  findSidekiqProcesses,
  parseSidekiqInfo,
  readSidekiqProcesses,
  sendSidekiqSignal,
  sidekiqKeys,
  type SidekiqSignal,
} from '../../src/actions/sidekiq/index.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { SimulatedSidekiq } from '../support/rubySidekiqSimulator.js';

// Namespaced (Sidekiq 6 + redis-namespace) keys isolate these tests on the shared Redis.
let redis: Redis;
const namespaces: string[] = [];
function ns(): string {
  const n = uniquePrefix('sidekiq');
  namespaces.push(n);
  return n;
}

beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await cleanupPrefix(redis, ...namespaces);
  redis.disconnect();
});

describe('sidekiqKeys', () => {
  it('uses Sidekiq 6/7 plain key names without a namespace', () => {
    const k = sidekiqKeys();
    expect(k.processes).toBe('processes');
    expect(k.process('worker.1:12:abcdef012345')).toBe('worker.1:12:abcdef012345');
    expect(k.signals('worker.1:12:abcdef012345')).toBe('worker.1:12:abcdef012345-signals');
  });

  it('prefixes every key with the redis-namespace', () => {
    const k = sidekiqKeys('myapp');
    expect(k.processes).toBe('myapp:processes');
    expect(k.process('w:1:a')).toBe('myapp:w:1:a');
    expect(k.signals('w:1:a')).toBe('myapp:w:1:a-signals');
    expect(k.stopRecord('job-1', 2)).toBe('myapp:mallet:sidekiq-stop:job-1:2');
  });

  it('hashes a job id that is not a safe key part', () => {
    expect(sidekiqKeys().stopRecord('a b*\r\n', 0)).toMatch(/^mallet:sidekiq-stop:h~[0-9a-f]{40}:0$/);
  });

  it.each(['', 'a b', 'x*', 'new\nline', 'x'.repeat(101)])('refuses namespace %j', (bad) => {
    expect(() => sidekiqKeys(bad)).toThrow(/invalid Sidekiq namespace/);
  });
});

describe('parseSidekiqInfo', () => {
  it('reads hostname, tag, pid and embedded', () => {
    expect(parseSidekiqInfo('{"hostname":"worker.1","tag":"app","pid":42,"embedded":true,"queues":["a"]}')).toEqual({
      hostname: 'worker.1', tag: 'app', pid: 42, embedded: true,
    });
  });

  it.each([
    ['null', null],
    ['empty', ''],
    ['not JSON', '{"hostname":'],
    ['an array', '["worker.1"]'],
    ['a string', '"worker.1"'],
    ['JSON null', 'null'],
    ['too large', JSON.stringify({ hostname: 'worker.1', pad: 'x'.repeat(70_000) })],
  ])('gives undefined for %s', (_name, raw) => {
    expect(parseSidekiqInfo(raw)).toBeUndefined();
  });

  it('drops fields of the wrong type instead of failing', () => {
    expect(parseSidekiqInfo('{"hostname":7,"tag":["x"],"pid":"12","embedded":"true"}')).toEqual({
      hostname: undefined, tag: undefined, pid: undefined, embedded: false,
    });
  });
});

describe('findSidekiqProcesses', () => {
  it('finds every live process of a hostname, skipping dead members, junk and other hosts', async () => {
    const keys = sidekiqKeys(ns());
    const a = new SimulatedSidekiq(redis, keys, { hostname: 'worker.1' });
    const b = new SimulatedSidekiq(redis, keys, { hostname: 'worker.1', busyBeats: 3 }); // deploy overlap
    const other = new SimulatedSidekiq(redis, keys, { hostname: 'worker.2' });
    const lookalike = new SimulatedSidekiq(redis, keys, { hostname: 'worker.10' });
    for (const s of [a, b, other, lookalike]) await s.beat();
    const dead = 'worker.1:999:000000000000';
    await redis.sadd(keys.processes, dead); // killed without shutdown: member left, hash expired
    const junk = 'worker.1:998:111111111111';
    await redis.sadd(keys.processes, junk);
    await redis.hset(keys.process(junk), 'info', 'not json', 'busy', '1');

    const found = await findSidekiqProcesses(redis, keys, { hostname: 'worker.1' });
    expect(found.map((p) => p.identity)).toEqual([a.identity, b.identity].sort());
    expect(found.find((p) => p.identity === b.identity)).toMatchObject({ busy: 1, quiet: false, hostname: 'worker.1' });
    // Reading never prunes nor signals.
    expect(await redis.sismember(keys.processes, dead)).toBe(1);
    expect(await redis.exists(keys.signals(dead))).toBe(0);
  });

  it('filters by tag when asked', async () => {
    const keys = sidekiqKeys(ns());
    const tagged = new SimulatedSidekiq(redis, keys, { hostname: 'worker.1', tag: 'critical' });
    const untagged = new SimulatedSidekiq(redis, keys, { hostname: 'worker.1' });
    await tagged.beat();
    await untagged.beat();
    const found = await findSidekiqProcesses(redis, keys, { hostname: 'worker.1', tag: 'critical' });
    expect(found.map((p) => p.identity)).toEqual([tagged.identity]);
  });

  it('finds nothing in another namespace', async () => {
    const keys = sidekiqKeys(ns());
    await new SimulatedSidekiq(redis, keys, { hostname: 'worker.1' }).beat();
    expect(await findSidekiqProcesses(redis, sidekiqKeys(ns()), { hostname: 'worker.1' })).toEqual([]);
  });

  it('reports a process gone once it leaves the set or its hash expires', async () => {
    const keys = sidekiqKeys(ns());
    const left = new SimulatedSidekiq(redis, keys, { hostname: 'worker.1' });
    const expired = new SimulatedSidekiq(redis, keys, { hostname: 'worker.1' });
    const alive = new SimulatedSidekiq(redis, keys, { hostname: 'worker.1' });
    for (const s of [left, expired, alive]) await s.beat();
    await redis.srem(keys.processes, left.identity);
    await redis.del(keys.process(expired.identity));
    const states = await readSidekiqProcesses(redis, keys, [left.identity, expired.identity, alive.identity]);
    expect(states.get(left.identity)).toBeUndefined();
    expect(states.get(expired.identity)).toBeUndefined();
    expect(states.get(alive.identity)?.identity).toBe(alive.identity);
  });
});

describe('sendSidekiqSignal', () => {
  it('pushes the signal with a 60 s TTL, as Sidekiq’s API does, and the process pops it', async () => {
    const keys = sidekiqKeys(ns());
    const sim = new SimulatedSidekiq(redis, keys, { hostname: 'worker.1' });
    await sim.beat();
    await sendSidekiqSignal(redis, keys, sim.identity, 'TSTP');
    expect(await redis.lrange(keys.signals(sim.identity), 0, -1)).toEqual(['TSTP']);
    const ttl = await redis.ttl(keys.signals(sim.identity));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    await sim.beat();
    expect(sim.received).toEqual(['TSTP']);
  });

  it('never sends USR1', async () => {
    const keys = sidekiqKeys(ns());
    await expect(sendSidekiqSignal(redis, keys, 'worker.1:1:a', 'USR1' as SidekiqSignal)).rejects.toThrow(/refusing/);
    expect(await redis.exists(keys.signals('worker.1:1:a'))).toBe(0);
  });
});
