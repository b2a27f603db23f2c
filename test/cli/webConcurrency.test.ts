import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { ACTION_QUEUE } from '../../src/keys.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { spawnMallet, type MalletProcess } from '../support/malletProcess.js';
import { tempRulesFile } from '../support/rulesFile.js';
import { eventually } from '../support/eventually.js';

/**
 * WEB_CONCURRENCY: one `mallet serve` runs that many HTTP processes (node:cluster). They are
 * replicas on one Redis, so the replica guarantees must hold inside one serve as well.
 */
const redis = testRedis();
const prefix = uniquePrefix('webconc');
const running: MalletProcess[] = [];
afterAll(async () => {
  for (const m of running) if (m.child.exitCode === null) { m.child.kill('SIGKILL'); await m.exited; }
  await cleanupPrefix(redis, prefix);
  redis.disconnect();
});

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

describe('mallet serve with WEB_CONCURRENCY=2', () => {
  it('runs two HTTP processes sharing one generated password; lines spread over both fire once; SIGTERM stops both', { timeout: 120_000 }, async () => {
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
    const cwd = mkdtempSync(join(tmpdir(), 'mallet-webconc-'));
    const m = spawnMallet(['serve'], {
      cwd,
      env: {
        PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', WEB_CONCURRENCY: '2', MALLET_LOG_FORMAT: 'json',
        REDIS_URL: testRedisUrl(), MALLET_RULES: rules, MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix,
      },
    });
    running.push(m);
    const listening = await eventually('both HTTP processes listening', async () => {
      const lines = m.output().split('\n').filter((l) => l.startsWith('{') && l.includes('"mallet is listening"'));
      return lines.length >= 2 ? lines.map((l) => JSON.parse(l) as Record<string, unknown>) : undefined;
    }, 60_000);
    const [first, second] = listening as [Record<string, unknown>, Record<string, unknown>];
    expect(first.pid).not.toBe(second.pid);
    // node:cluster shares one port among the children, even for PORT=0.
    expect(second.url).toBe(first.url);
    // Generated once by the primary, shared by the children, kept in a file and never printed.
    const password = readFileSync(join(cwd, '.mallet/drain-password'), 'utf8').trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(m.output().match(/MALLET_DRAIN_PASSWORD is not set: generated one/g)).toHaveLength(1);
    expect(m.output()).not.toContain(password);

    // Nine R14 lines for web.1, each its own frame on a new connection (round-robin over the
    // children), two at a time.
    const url = String(first.url);
    for (let i = 0; i < 9; i += 2) {
      await Promise.all([i, i + 1].filter((n) => n < 9).map((n) => postDrain(url, 'my-app',
        frame(drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)')),
        { password: password!, headers: { Connection: 'close', 'Logplex-Frame-Id': `W${prefix.slice(-10)}${n}`.toUpperCase() } },
      ).then((res) => expect(res.status).toBe(204))));
    }
    const queue = new Queue(ACTION_QUEUE, { connection: redis, prefix });
    const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized']);
    expect(jobs.map((j) => `${j.data.rule}/${j.data.target}`)).toEqual(['puma-r14/web.1']);
    // The first child runs the action worker: the stop key gets written.
    await eventually('the stop key', async () => (await redis.exists(`${prefix}:stop:web.1`)) === 1, 20_000);
    await queue.close();

    m.child.kill('SIGTERM');
    const exit = await m.exited;
    expect(exit.code).toBe(0);
    expect([first.pid, second.pid].filter((pid) => alive(Number(pid)))).toEqual([]);
  });
});
