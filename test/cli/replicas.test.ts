import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { ACTION_QUEUE } from '../../src/keys.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { spawnMallet, type MalletProcess } from '../support/malletProcess.js';
import { tempRulesFile } from '../support/rulesFile.js';

/**
 * SPEC §6 scale-out: two `mallet serve` replicas behind a load balancer share one Redis; lines of
 * one dyno arriving alternately at both count towards one threshold and fire exactly once.
 */
/** Generated per run: no fixed credential in the tree. */
const PASSWORD = `replica-${randomBytes(8).toString('hex')}`;
const redis = testRedis();
const prefix = uniquePrefix('replicas');
const running: MalletProcess[] = [];
afterAll(async () => {
  for (const m of running) if (m.child.exitCode === null) { m.child.kill('SIGTERM'); await m.exited; }
  await cleanupPrefix(redis, prefix);
  redis.disconnect();
});

describe('two mallet serve replicas on one Redis', () => {
  it('alternating lines for one dyno fire exactly once, and the cooldown holds across both', async () => {
    const { file: rules } = tempRulesFile(`version: 1
rules:
  - name: puma-r14
    match: { process: "web.*", message: '^Error R14 ' }
    threshold: { count: 3, within: 5m }
    cooldown: 10m
    actions:
      - type: redis-stop-key
        key: "${prefix}:stop:{{target}}"
`);
    const env = {
      PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: PASSWORD,
      REDIS_URL: testRedisUrl(), MALLET_RULES: rules, MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix,
    };
    const a = spawnMallet(['serve'], { env });
    const b = spawnMallet(['serve'], { env });
    running.push(a, b);
    const urls = [String((await a.waitForLog(/mallet is listening/)).url), String((await b.waitForLog(/mallet is listening/)).url)];

    // Nine R14 lines for web.1, each in its own frame, alternating between the replicas, sent in
    // pairs at once so the two count concurrently.
    for (let i = 0; i < 9; i += 2) {
      await Promise.all([i, i + 1].filter((n) => n < 9).map((n) => postDrain(urls[n % 2]!, 'my-app',
        frame(drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)')),
        { password: PASSWORD, headers: { 'Logplex-Frame-Id': `F${prefix.slice(-10)}${n}`.toUpperCase(), 'Logplex-Drain-Token': 'd.11111111-2222-4333-8444-555555555555' } },
      ).then((res) => expect(res.status).toBe(204))));
    }
    const queue = new Queue(ACTION_QUEUE, { connection: redis, prefix });
    const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized']);
    expect(jobs.map((j) => `${j.data.rule}/${j.data.target}`)).toEqual(['puma-r14/web.1']);
    expect(jobs[0]!.data.triggerLines).toHaveLength(3);
    await queue.close();
  });
});
