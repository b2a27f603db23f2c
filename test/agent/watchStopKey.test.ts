import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchStopKey, type StopKeyLogger } from '../../src/agent/index.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { freePort, spawnLogged } from '../support/rubyProcesses.js';
import { httpGet } from '../support/httpGet.js';

let redis: Redis;
const prefixes: string[] = [];
function prefix(): string {
  const p = uniquePrefix('agent');
  prefixes.push(p);
  return `${p}:stop::`;
}

beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await cleanupPrefix(redis, ...prefixes);
  redis.disconnect();
});


function slowServer(): Promise<{ server: Server; port: number; started: Promise<void> }> {
  let markStarted!: () => void;
  const started = new Promise<void>((r) => (markStarted = r));
  const server = createServer((req, res) => {
    if (req.url === '/slow') {
      markStarted();
      setTimeout(() => res.end('slow done'), 500);
    } else res.end('ok');
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, port: (server.address() as AddressInfo).port, started })));
}

function recordingLogger(): StopKeyLogger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`) };
}

const until = async (cond: () => boolean | Promise<boolean>, what: string) => {
  for (let i = 0; i < 400; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`never happened: ${what}`);
};

describe('watchStopKey (mallet/agent)', () => {
  it('takes the key, calls onStop once with its value, and an in-flight request still completes', async () => {
    const { server, port, started } = await slowServer();
    const p = prefix();
    const reasons: string[] = [];
    const closed = new Promise<void>((r) => server.on('close', () => r()));
    const watcher = watchStopKey({
      redisUrl: testRedisUrl(),
      dyno: 'web.1',
      prefix: p,
      intervalMs: 20,
      logger: recordingLogger(),
      onStop: (reason) => {
        reasons.push(reason);
        server.close();
      },
    });
    const inFlight = httpGet(port, '/slow');
    await started;
    await redis.set(`${p}web.1`, 'rule puma-memory fired', 'EX', 60);
    await closed;
    expect(await inFlight).toEqual({ status: 200, body: 'slow done' });
    expect(reasons).toEqual(['rule puma-memory fired']);
    expect(await redis.exists(`${p}web.1`)).toBe(0);
    await watcher.stop();
  });

  it('keeps serving while the key is absent, and ignores other dynos’ keys', async () => {
    const { server, port } = await slowServer();
    const p = prefix();
    let stops = 0;
    const logger = recordingLogger();
    const watcher = watchStopKey({ redisUrl: testRedisUrl(), dyno: 'web.1', prefix: p, intervalMs: 10, logger, onStop: () => void stops++ });
    await redis.set(`${p}web.2`, 'not for us', 'EX', 60);
    await new Promise((r) => setTimeout(r, 200)); // many polls
    expect(await httpGet(port, '/')).toEqual({ status: 200, body: 'ok' });
    expect(stops).toBe(0);
    expect(await redis.get(`${p}web.2`)).toBe('not for us');
    expect(logger.lines.filter((l) => l.startsWith('warn'))).toEqual([]);
    await watcher.stop();
    server.close();
  });

  it('on Fir, takes the key of its own pod name ($DYNO) and leaves the sibling pod\'s key', async () => {
    const p = prefix();
    const values: string[] = [];
    const watcher = watchStopKey({ redisUrl: testRedisUrl(), dyno: 'web-12a34b56d-e78f9', prefix: p, intervalMs: 10, logger: recordingLogger(), onStop: (v) => void values.push(v) });
    await redis.set(`${p}web-12a34b56d-q1r2s`, 'sibling', 'EX', 60);
    await redis.set(`${p}web-12a34b56d-e78f9`, 'fir-web-memory-high', 'EX', 60);
    for (let i = 0; i < 100 && values.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(values).toEqual(['fir-web-memory-high']);
    expect(await redis.get(`${p}web-12a34b56d-q1r2s`)).toBe('sibling');
    await watcher.stop();
  });

  it('lets exactly one of several consumers act on a key', async () => {
    const p = prefix();
    const calls: number[] = [];
    const watchers = [0, 1, 2, 3].map((i) =>
      watchStopKey({ redisUrl: testRedisUrl(), dyno: 'web.1', prefix: p, intervalMs: 5, logger: recordingLogger(), onStop: () => void calls.push(i) }),
    );
    await new Promise((r) => setTimeout(r, 50));
    await redis.set(`${p}web.1`, 'once', 'EX', 60);
    await until(() => calls.length > 0, 'a watcher acted');
    await new Promise((r) => setTimeout(r, 100)); // the others poll many more times
    expect(calls).toHaveLength(1);
    await Promise.all(watchers.map((w) => w.stop()));
  });

  it('survives Redis being down, without leaking the URL password', async () => {
    const port = await freePort(); // nothing listens there
    const logger = recordingLogger();
    const watcher = watchStopKey({ redisUrl: `redis://:hunter2@127.0.0.1:${port}`, dyno: 'web.1', intervalMs: 10, logger, onStop: () => {} });
    await until(() => logger.lines.some((l) => l.startsWith('warn mallet: cannot poll stop key')), 'a warning');
    expect(logger.lines.join('\n')).not.toContain('hunter2');
    await watcher.stop();
  });

  it('is off, and says so, without DYNO', async () => {
    const logger = recordingLogger();
    const saved = process.env.DYNO;
    delete process.env.DYNO;
    try {
      const watcher = watchStopKey({ redisUrl: testRedisUrl(), logger, onStop: () => {} });
      await watcher.stop();
    } finally {
      if (saved !== undefined) process.env.DYNO = saved;
    }
    expect(logger.lines).toEqual(['warn mallet: stop-key watcher off (DYNO is unset)']);
  });

  it('a real Node server child finishes its in-flight request and exits 0 on its own', async () => {
    const p = prefix();
    const port = await freePort();
    const child = spawnLogged(process.execPath, ['--import', 'tsx', resolve('test/agent/fixtures/server.ts')], {
      env: { ...process.env, PORT: String(port), DYNO: 'web.7', MALLET_REDIS_URL: testRedisUrl(), MALLET_STOP_KEY_PREFIX: p, MALLET_POLL_INTERVAL: '0.1' },
    });
    try {
      await child.waitForOutput('mallet: watching stop key');
      const inFlight = httpGet(port, '/slow');
      await new Promise((r) => setTimeout(r, 300)); // the request is being handled
      await redis.set(`${p}web.7`, 'R14 on web.7', 'EX', 60);
      expect(await inFlight).toEqual({ status: 200, body: 'ok /slow\n' });
      expect(await child.exited).toBe(0);
      expect(child.output()).toContain('stopping: R14 on web.7');
      expect(child.output()).toContain('closed');
    } finally {
      child.kill();
    }
  });
});
