import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchStopKey, type StopKeyLogger } from '../../src/agent/index.js';
import { wakeChannel } from '../../src/agent/wakeChannel.js';
import { stopKeyExecutor } from '../../src/actions/executors/stopKey.js';
import type { StepContext } from '../../src/actions/Executor.js';
import type { StopKeyActionSpec } from '../../src/rules/Firing.js';
import { startPrivateRedis, type PrivateRedis } from '../support/rubyProcesses.js';

/**
 * The push that wakes mallet/agent: the stop-key step publishes on the key's channel after
 * writing it; the agent polls at once on a message and on every (re)subscription. Each watcher
 * here polls once a minute, so a reaction within seconds can only come from the push. A private
 * redis-server, because these tests kill pub/sub connections and set ACL users.
 */
let priv: PrivateRedis;
let redis: Redis;
const HOUR_MS = 3_600_000;

beforeAll(async () => {
  priv = await startPrivateRedis();
  redis = priv.client();
  // A user that may write keys but not publish (mallet's side), one that may not subscribe (the app's side).
  await redis.call('ACL', 'SETUSER', 'nopublish', 'on', '>pw1', '~*', '&*', '+@all', '-publish');
  await redis.call('ACL', 'SETUSER', 'nosubscribe', 'on', '>pw2', '~*', 'resetchannels', '+@all');
});
afterAll(async () => {
  await priv?.stop();
});

function recordingLogger(): StopKeyLogger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`) };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never happened: ${what}`);
}

function stepContext(conn: Redis): StepContext & { logs: string[] } {
  const logs: string[] = [];
  return {
    logs, redisFor: () => conn, log: async (l: string) => void logs.push(l), now: () => Date.now(),
    sleep: (ms: number) => new Promise((r) => setTimeout(r, ms)),
  } as unknown as StepContext & { logs: string[] };
}

const url = (user?: string, pw?: string) => (user ? priv.url.replace('redis://', `redis://${user}:${pw}@`) : priv.url);

describe('stop-key wake-ups (pub/sub)', () => {
  it('the channel is the stop key under a fixed prefix', () => {
    expect(wakeChannel('puma::stop::web.1')).toBe('mallet:wake:puma::stop::web.1');
    expect(wakeChannel('puma::stop::web-12a34b56d-e78f9')).toBe('mallet:wake:puma::stop::web-12a34b56d-e78f9');
  });

  it('the step publishes after writing the key, and an agent polling once an hour stops at once', async () => {
    const logger = recordingLogger();
    const reasons: string[] = [];
    const watcher = watchStopKey({ redisUrl: priv.url, dyno: 'web.1', prefix: 'a::stop::', intervalMs: HOUR_MS, logger, onStop: (r) => void reasons.push(r) });
    try {
      await until(() => logger.lines.includes('info mallet: listening on mallet:wake:a::stop::web.1 for wake-ups'), 'subscribed');
      const ctx = stepContext(redis);
      const action: StopKeyActionSpec = { type: 'redis-stop-key', key: 'a::stop::web.1', value: 'r14', ttlMs: 60_000 };
      const result = await stopKeyExecutor.run(action, ctx);
      expect(result.summary).toMatch(/^SET a::stop::web\.1 PX 60000; consumed after \d+\.\d s$/);
      expect(ctx.logs[0]).toContain('PUBLISH mallet:wake:a::stop::web.1 reached 1 subscriber(s)');
      // The key is gone once the agent's script ran; its onStop follows the reply.
      await until(() => reasons.length > 0, 'onStop');
      expect(reasons).toEqual(['r14']);
      expect(await redis.exists('a::stop::web.1')).toBe(0);
    } finally {
      await watcher.stop();
    }
  });

  it('a wake-up for a key of another instance leaves it alone (same rules as the poll)', async () => {
    const own = '4b88c98d-6243-4194-af49-8db9b53be371';
    const other = 'cd817c77-4f8e-4e68-b42a-3dea4e04d99c';
    const logger = recordingLogger();
    const reasons: string[] = [];
    const watcher = watchStopKey({ redisUrl: priv.url, dyno: 'web.2', prefix: 'a::stop::', instanceId: own, intervalMs: HOUR_MS, logger, onStop: (r) => void reasons.push(r) });
    try {
      await until(() => logger.lines.some((l) => l.includes('listening on mallet:wake:a::stop::web.2')), 'subscribed');
      await stopKeyExecutor.run({ type: 'redis-stop-key', key: 'a::stop::web.2', value: 'old', ttlMs: 60_000, instance: other, watch: false }, stepContext(redis));
      await new Promise((r) => setTimeout(r, 300));
      expect(reasons).toEqual([]);
      expect(await redis.get('a::stop::web.2')).toBe(`old instance=${other}`);
      await stopKeyExecutor.run({ type: 'redis-stop-key', key: 'a::stop::web.2', value: 'mine', ttlMs: 60_000, instance: own, watch: false }, stepContext(redis));
      await until(() => reasons.length > 0, 'stopped');
      expect(reasons).toEqual([`mine instance=${own}`]);
    } finally {
      await watcher.stop();
    }
  });

  it('a key written while the subscriber was away is taken when it subscribes again', async () => {
    const logger = recordingLogger();
    const reasons: string[] = [];
    const watcher = watchStopKey({ redisUrl: priv.url, dyno: 'web.3', prefix: 'a::stop::', intervalMs: HOUR_MS, logger, onStop: (r) => void reasons.push(r) });
    try {
      await until(() => logger.lines.some((l) => l.includes('listening on mallet:wake:a::stop::web.3')), 'subscribed');
      await new Promise((r) => setTimeout(r, 300)); // the poll after subscribing is done, the key not yet there
      // Lost message: the subscriber is cut off, the key is written and published to nobody.
      expect(Number(await redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBe(1);
      await redis.multi().set('a::stop::web.3', 'while away', 'EX', 60).publish(wakeChannel('a::stop::web.3'), 'wake').exec();
      await until(() => reasons.length > 0, 'stopped after resubscribing');
      expect(reasons).toEqual(['while away']);
    } finally {
      await watcher.stop();
    }
  });

  it('a PUBLISH refused does not fail the step: the key is written and the poll takes it', async () => {
    const conn = new Redis(url('nopublish', 'pw1'), { maxRetriesPerRequest: 1 });
    const reasons: string[] = [];
    const watcher = watchStopKey({ redisUrl: priv.url, dyno: 'web.4', prefix: 'a::stop::', intervalMs: 100, logger: recordingLogger(), onStop: (r) => void reasons.push(r) });
    try {
      const ctx = stepContext(conn);
      const result = await stopKeyExecutor.run({ type: 'redis-stop-key', key: 'a::stop::web.4', value: 'no push', ttlMs: 60_000 }, ctx);
      expect(result.summary).toMatch(/consumed after/);
      expect(ctx.logs[0]).toMatch(/PUBLISH mallet:wake:a::stop::web\.4 failed \(NOPERM.*\): consumers find the key at their next poll/);
      await until(() => reasons.length > 0, 'onStop');
      expect(reasons).toEqual(['no push']);
    } finally {
      await watcher.stop();
      conn.disconnect();
    }
  });

  it('a subscription refused leaves the poll working, and says so', async () => {
    const logger = recordingLogger();
    const reasons: string[] = [];
    const watcher = watchStopKey({ redisUrl: url('nosubscribe', 'pw2'), dyno: 'web.5', prefix: 'a::stop::', intervalMs: 100, logger, onStop: (r) => void reasons.push(r) });
    try {
      await until(() => logger.lines.some((l) => l.startsWith('warn mallet: cannot subscribe to mallet:wake:a::stop::web.5 (NOPERM')), 'the warning');
      await stopKeyExecutor.run({ type: 'redis-stop-key', key: 'a::stop::web.5', value: 'polled', ttlMs: 60_000, watch: false }, stepContext(redis));
      await until(() => reasons.length > 0, 'stopped by the poll');
      expect(reasons).toEqual(['polled']);
      expect(logger.lines.join('\n')).not.toContain('pw2');
    } finally {
      await watcher.stop();
    }
  });
});
