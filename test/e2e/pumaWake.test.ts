import { rmSync } from 'node:fs';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/server/service.js';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { testRedis, uniquePrefix } from '../support/redis.js';
import { startPrivateRedis, startPuma, type PrivateRedis, type Spawned, stopAll } from '../support/rubyProcesses.js';
import { eventually } from '../support/eventually.js';
import { tempRulesFile } from '../support/rulesFile.js';
import { startTestService } from '../support/testService.js';

/**
 * The push that wakes the Puma plugin (pub/sub on mallet:wake:<key>), with real Puma: it reacts
 * to the publish, a message lost while disconnected is made up for on resubscribing, a refused
 * subscription or PUBLISH leaves the poll working, SIGTERM is not held up by the subscriber; and
 * the whole path's latency, drain line posted → the plugin stopping Puma, printed (not asserted:
 * the machine running the tests is shared). The app's Redis is a private redis-server (the tests
 * kill pub/sub connections and set ACL users); mallet's own state is on the shared test Redis.
 */
const PASSWORD = 'drain-secret-wake';
const PROBES = Number(process.env.MALLET_WAKE_PROBES ?? 20);
const BATCH = 5;
let priv: PrivateRedis;
let appRedis: Redis;
let redis: Redis;
let service: Service;
let queue: Queue;
let closeService: (() => Promise<void>) | undefined;
let dir: string;
const prefix = uniquePrefix('wake');
const queuePrefix = uniquePrefix('wakeq');
const running: Spawned[] = [];

const userUrl = (user: string, pw: string) => priv.url.replace('redis://', `redis://${user}:${pw}@`);

beforeAll(async () => {
  priv = await startPrivateRedis();
  appRedis = priv.client();
  await appRedis.call('ACL', 'SETUSER', 'nopublish', 'on', '>pw1', '~*', '&*', '+@all', '-publish');
  await appRedis.call('ACL', 'SETUSER', 'nosubscribe', 'on', '>pw2', '~*', 'resetchannels', '+@all');
  redis = testRedis();
  const made = tempRulesFile(`version: 1
apps:
  push-app:
    redis_url: \${APP_REDIS_URL}
  nopush-app:
    redis_url: \${APP_REDIS_NOPUBLISH_URL}
limits:
  per_app: { max_firings: 100000, within: 10m }
  per_process_type: { concurrency: 1000 }
  flapping: { max_firings: 100000, within: 1h }
rules:
  - name: puma-r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    actions:
      - type: redis-stop-key
`);
  dir = made.dir;
  ({ service, queue, close: closeService } = await startTestService({
    redis, prefix, queuePrefix, drainPassword: PASSWORD, rulesFile: made.file, dir,
    env: { APP_REDIS_URL: priv.url, APP_REDIS_NOPUBLISH_URL: userUrl('nopublish', 'pw1') },
    // Placed as `mallet serve` places it: the stop key and its wake are written from the worker's thread.
    worker: 'thread',
  }));
});

afterEach(async () => {
  await stopAll(running.splice(0));
});

afterAll(async () => {
  await closeService?.();
  redis?.disconnect();
  await priv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function startPumaOf(dyno: string, env: Record<string, string> = {}) {
  const { puma, port } = await startPuma(running, dyno, priv.url, env);
  return { puma, port, key: `puma::stop::${dyno}`, channel: `mallet:wake:puma::stop::${dyno}` };
}

/** The exit code, or the output in the error when Puma is still running after `ms`. */
async function exitCode(puma: Spawned, ms = 30_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`puma still running after ${ms} ms; output:\n${puma.output()}`)), ms);
  });
  try {
    return await Promise.race([puma.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

const stopLine = (dyno: string) => new RegExp(`mallet: stop key puma::stop::${dyno.replace(/\./g, '\\.')} found \\(.*\\): stopping gracefully`);
const HOUR = '3600';

describe('Puma plugin wake-ups (real puma)', () => {
  it('polling once an hour, it stops within moments of the publish', async () => {
    const { puma, key, channel } = await startPumaOf('web.11', { MALLET_POLL_INTERVAL: HOUR });
    await puma.waitForOutput(`listening on ${channel} for wake-ups`);
    await appRedis.multi().set(key, 'pushed', 'EX', 60).publish(channel, 'wake').exec();
    await puma.waitForOutput(stopLine('web.11'), 10_000);
    expect(await exitCode(puma)).toBe(0);
    expect(await appRedis.exists(key)).toBe(0);
  });

  it('a key written while the subscriber was cut off is taken when it subscribes again', async () => {
    const { puma, key, channel } = await startPumaOf('web.12', { MALLET_POLL_INTERVAL: HOUR });
    await puma.waitForOutput(`listening on ${channel} for wake-ups`);
    // The poll that follows the first subscription, done before the key exists.
    await new Promise((r) => setTimeout(r, 500));
    expect(Number(await appRedis.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBe(1);
    await appRedis.multi().set(key, 'while away', 'EX', 60).publish(channel, 'wake').exec();
    await puma.waitForOutput(stopLine('web.12'), 20_000);
    const out = puma.output();
    expect(out).toContain('found (while away)');
    // Taken by the poll that follows the new subscription, not by any earlier one.
    expect(out.indexOf(`listening again on ${channel}`)).toBeGreaterThan(-1);
    expect(out.indexOf(`listening again on ${channel}`)).toBeLessThan(out.indexOf('found (while away)'));
    expect(await exitCode(puma)).toBe(0);
  });

  it('a subscription refused: says so, keeps serving, and the poll still takes the key', async () => {
    const { puma, key, channel } = await startPumaOf('web.13', { MALLET_REDIS_URL: userUrl('nosubscribe', 'pw2'), MALLET_POLL_INTERVAL: '0.2' });
    await puma.waitForOutput(`mallet: cannot subscribe to ${channel} (Redis::CommandError: NOPERM`);
    await appRedis.set(key, 'polled', 'EX', 60);
    await puma.waitForOutput(stopLine('web.13'), 10_000);
    expect(await exitCode(puma)).toBe(0);
    expect(puma.output()).not.toContain('pw2');
  });

  it('SIGTERM is not held up by the subscriber', async () => {
    const { puma, channel } = await startPumaOf('web.14', { MALLET_POLL_INTERVAL: HOUR });
    await puma.waitForOutput(`listening on ${channel} for wake-ups`);
    await puma.waitForOutput('Use Ctrl-C to stop');
    // At once: the plugin handles TERM outside the trap, so a TERM while the main thread still
    // writes its boot lines is safe (test/e2e/pumaSigterm.test.ts).
    const started = Date.now();
    puma.child.kill('SIGTERM');
    await exitCode(puma);
    // Puma with no request in flight exits at once; a thread it waited for would show here.
    expect(Date.now() - started).toBeLessThan(5000);
    // Puma 5 re-raises SIGTERM once it has shut down gracefully (raise_exception_on_sigterm).
    expect({ code: puma.child.exitCode, signal: puma.child.signalCode, output: puma.output() }).toMatchObject({ code: null, signal: 'SIGTERM' });
    expect(puma.output()).toContain('- Gracefully stopping, waiting for requests to finish');
    expect(puma.output()).not.toContain('deadlock');
  });

  it('the PUBLISH refused: the whole drain → Puma path still stops it, by the poll', async () => {
    const { puma } = await startPumaOf('web.15', { MALLET_POLL_INTERVAL: '0.2' });
    await puma.waitForOutput('listening on mallet:wake:puma::stop::web.15');
    const body = frame(drainLine('heroku', 'web.15', 'Error R14 (Memory quota exceeded)'));
    expect((await postDrain(service.url!, 'nopush-app', body, { password: PASSWORD, headers: { 'Logplex-Frame-Id': `wake-nopush-${Date.now()}` } })).status).toBe(204);
    await puma.waitForOutput(stopLine('web.15'), 20_000);
    expect(await exitCode(puma)).toBe(0);
    const job = await eventually('the web.15 job to finish', async () => (await queue.getJobs(['completed', 'failed'])).find((j) => j.data.target === 'web.15'), 30_000);
    const { logs } = await queue.getJobLogs(job.id!);
    expect(logs.join('\n')).toMatch(/PUBLISH mallet:wake:puma::stop::web\.15 failed \(NOPERM/);
    expect(await job.getState()).toBe('completed');
  });

  it(`latency, drain line posted → the plugin stopping Puma, over ${PROBES} probes (printed)`, async () => {
    const latencies: number[] = [];
    for (let first = 0; first < PROBES; first += BATCH) {
      // A few Pumas at a time, each probed once (a probe stops its Puma). They poll once an hour,
      // so every reaction within the probe's 20 s is the push's, end to end through mallet.
      const batch = await Promise.all(Array.from({ length: Math.min(BATCH, PROBES - first) }, async (_, j) => {
        const dyno = `web.${100 + first + j}`;
        const p = await startPumaOf(dyno, { MALLET_POLL_INTERVAL: HOUR });
        await p.puma.waitForOutput(`listening on ${p.channel} for wake-ups`);
        await p.puma.waitForOutput('Use Ctrl-C to stop');
        return { ...p, dyno };
      }));
      for (const { puma, dyno } of batch) {
        const body = frame(drainLine('heroku', dyno, 'Error R14 (Memory quota exceeded)'));
        const started = performance.now();
        const reacted = puma.waitForOutput(stopLine(dyno), 20_000).then(() => performance.now());
        expect((await postDrain(service.url!, 'push-app', body, { password: PASSWORD, headers: { 'Logplex-Frame-Id': `wake-probe-${dyno}-${Date.now()}` } })).status).toBe(204);
        latencies.push((await reacted) - started);
        expect(await exitCode(puma)).toBe(0);
      }
      await stopAll(running.splice(0));
    }
    expect(latencies).toHaveLength(PROBES);
    const sorted = [...latencies].sort((a, b) => a - b);
    const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
    console.log(`drain line posted → Puma plugin stopping (real Puma 5, woken by the push; the poll once an hour), ${PROBES} probes: p50 ${pct(50).toFixed(1)} ms, p90 ${pct(90).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms`);
  });
});
