import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { freePort, spawnPuma, type Spawned } from '../support/rubyProcesses.js';
import { httpGet } from '../support/httpGet.js';

/** Real Puma with contrib/puma's plugin: the stop key stops it gracefully, nothing else does. */
let redis: Redis;
const prefixes: string[] = [];
const running: Spawned[] = [];

beforeAll(() => {
  redis = testRedis();
});
afterEach(() => {
  for (const p of running.splice(0)) p.kill();
});
afterAll(async () => {
  await cleanupPrefix(redis, ...prefixes);
  redis.disconnect();
});


async function startPuma(extra: Record<string, string> = {}) {
  const prefix = `${uniquePrefix('puma')}:stop::`;
  prefixes.push(prefix.slice(0, -'stop::'.length));
  const port = await freePort();
  const puma = spawnPuma({
    PORT: String(port),
    DYNO: 'web.1',
    MALLET_REDIS_URL: testRedisUrl(),
    MALLET_STOP_KEY_PREFIX: prefix,
    MALLET_POLL_INTERVAL: '0.2',
    ...extra,
  });
  running.push(puma);
  await puma.waitForOutput('Use Ctrl-C to stop');
  return { puma, port, key: `${prefix}web.1` };
}

async function stopsGracefully(extra: Record<string, string> = {}) {
  const { puma, port, key } = await startPuma(extra);
  await puma.waitForOutput(`mallet: watching stop key ${key} every 0.2s`);
  const inFlight = httpGet(port, '/slow');
  await puma.waitForOutput('slow request started');
  await redis.set(key, 'puma-memory: R14 on web.1', 'EX', 60);
  expect(await inFlight).toEqual({ status: 200, body: 'ok /slow\n' });
  expect(await puma.exited).toBe(0);
  expect(puma.output()).toContain(`mallet: stop key ${key} found (puma-memory: R14 on web.1): stopping gracefully`);
  expect(await redis.exists(key)).toBe(0);
  return puma;
}

describe('Puma plugin (real puma)', () => {
  it('single mode: the stop key lets the in-flight request finish with 200, then Puma exits 0', async () => {
    await stopsGracefully();
  });

  it('cluster mode: the master watches and stops the workers gracefully', async () => {
    const puma = await stopsGracefully({ WEB_CONCURRENCY: '2' });
    expect(puma.output()).toContain('Puma starting in cluster mode');
  });

  it('keeps serving while the key is absent or belongs to another dyno', async () => {
    const { puma, port, key } = await startPuma();
    await redis.set(key.replace(/web\.1$/, 'web.2'), 'not for web.1', 'EX', 60);
    await new Promise((r) => setTimeout(r, 1500)); // several polls at 0.2 s
    expect(await httpGet(port, '/after-polls')).toEqual({ status: 200, body: 'ok /after-polls\n' });
    expect(puma.child.exitCode).toBeNull();
    expect(puma.output()).not.toContain('stopping gracefully');
    await redis.set(key, 'cleanup', 'EX', 60);
    expect(await puma.exited).toBe(0);
  });

  it('with HEROKU_DYNO_ID: leaves a key for another instance of web.1 alone, takes its own', async () => {
    const own = '4b88c98d-6243-4194-af49-8db9b53be371';
    const other = 'cd817c77-4f8e-4e68-b42a-3dea4e04d99c';
    const { puma, port, key } = await startPuma({ HEROKU_DYNO_ID: own });
    await puma.waitForOutput(`mallet: watching stop key ${key} every 0.2s (instance ${own})`);
    // Preboot: the key is for the old web.1 (another instance); this one keeps serving.
    await redis.set(key, `puma-memory instance=${other}`, 'EX', 60);
    await new Promise((r) => setTimeout(r, 1500)); // several polls at 0.2 s
    expect(await httpGet(port, '/after-polls')).toEqual({ status: 200, body: 'ok /after-polls\n' });
    expect(puma.child.exitCode).toBeNull();
    expect(await redis.get(key)).toBe(`puma-memory instance=${other}`);
    await redis.set(key, `puma-memory instance=${own}`, 'EX', 60);
    expect(await puma.exited).toBe(0);
    expect(puma.output()).toContain(`found (puma-memory instance=${own}): stopping gracefully`);
    expect(await redis.exists(key)).toBe(0);
  });

  it('survives Redis being down: logs, keeps serving, never prints the password', async () => {
    const deadPort = await freePort();
    const { puma, port } = await startPuma({ MALLET_REDIS_URL: `redis://:hunter2@127.0.0.1:${deadPort}/0` });
    await puma.waitForOutput('mallet: cannot poll stop key');
    expect(await httpGet(port, '/still-up')).toEqual({ status: 200, body: 'ok /still-up\n' });
    expect(puma.child.exitCode).toBeNull();
    expect(puma.output()).not.toContain('hunter2');
  });

  it('is off, and says so, without DYNO', async () => {
    const { puma, port } = await startPuma({ DYNO: '' });
    expect(puma.output()).toContain('mallet: stop-key watcher off (DYNO is unset)');
    expect(await httpGet(port, '/')).toEqual({ status: 200, body: 'ok /\n' });
  });
});
