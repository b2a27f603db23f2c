import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { freePort, spawnPuma, type Spawned } from '../support/rubyProcesses.js';

/**
 * SIGTERM during a log write, with real Puma 5: its own TERM trap logs in trap context, and a
 * TERM landing while the main thread is writing to the same IO raised "deadlock; recursive
 * locking" out of that write (Puma died instead of stopping). The plugin takes TERM over (the
 * trap only queues it; a thread stops Puma). Each run boots Puma with a main thread that logs
 * 200 000 lines and sends it five TERMs 20 ms apart while it does; unfixed, about one run in two
 * failed so.
 */
const RUNS = 5;
const HOUR = '3600';
let redis: Redis;
const prefix = uniquePrefix('pumaterm');
const running: Spawned[] = [];

beforeAll(() => {
  redis = testRedis();
});
afterEach(() => {
  for (const p of running.splice(0)) p.kill();
});
afterAll(async () => {
  await cleanupPrefix(redis, prefix);
  redis.disconnect();
});

async function termDuringBootLogging(extra: Record<string, string>, noisyFrom: string) {
  const puma = spawnPuma({
    PORT: String(await freePort()),
    DYNO: 'web.1',
    MALLET_REDIS_URL: testRedisUrl(),
    MALLET_STOP_KEY_PREFIX: `${prefix}:stop::`,
    MALLET_POLL_INTERVAL: HOUR,
    MALLET_TEST_BOOT_LINES: '200000',
    ...extra,
  });
  running.push(puma);
  await puma.waitForOutput(noisyFrom, 60_000);
  for (let i = 0; i < 5; i++) {
    puma.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 20));
  }
  await puma.exited;
  const out = puma.output();
  return { out, code: puma.child.exitCode, signal: puma.child.signalCode, tail: out.split('\n').filter((l) => !l.includes('boot log line')).join('\n') };
}

describe('SIGTERM while Puma writes its log (real puma)', () => {
  it(`single mode, ${RUNS} runs: no "deadlock", a graceful stop each time, ending by SIGTERM as Puma's would`, async () => {
    for (let run = 0; run < RUNS; run++) {
      const r = await termDuringBootLogging({}, 'boot log line 1 ');
      expect(r.out, r.tail).not.toMatch(/deadlock|recursive locking|ThreadError/);
      expect(r.tail).toContain('mallet: SIGTERM: stopping gracefully');
      expect(r.tail).toContain('- Gracefully stopping, waiting for requests to finish');
      expect(r.tail).not.toContain('Unable to load application');
      expect({ code: r.code, signal: r.signal }, r.tail).toEqual({ code: null, signal: 'SIGTERM' });
    }
  });

  // The master's TERM is the plugin's too; its workers, forked with it, trap TERM themselves.
  it('cluster mode: TERMs right after the master logs its workers booting: the workers are shut down gracefully', async () => {
    const r = await termDuringBootLogging({ WEB_CONCURRENCY: '2', MALLET_TEST_BOOT_LINES: '2000' }, 'Use Ctrl-C to stop');
    expect(r.out, r.tail).not.toMatch(/deadlock|recursive locking|ThreadError/);
    expect(r.tail).toContain('- Gracefully shutting down workers...');
    expect(r.tail).toContain('- Goodbye!');
    expect({ code: r.code, signal: r.signal }, r.tail).toEqual({ code: null, signal: 'SIGTERM' });
  });
});
