import { connect, type Socket } from 'node:net';
import type { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/server/service.js';
import { eventually } from '../support/eventually.js';
import { testRedis, uniquePrefix } from '../support/redis.js';
import { tempRulesFile } from '../support/rulesFile.js';
import { startTestService } from '../support/testService.js';

/**
 * Issue 8, item 6: syslog lock-out with a token. 300 connections that each send one frame with a
 * known drain token used to hold every one of the 256 slots (proven connections never gave way)
 * until the 300 s idle limit, and the real logplex connection was reset. Through the running
 * service (real syslog TCP, real Redis and queue), the live drain's R14 must still fire.
 */
const TOKEN = 'd.4f0b6c1e-8a2d-4e57-9b3c-6d1a2e7f9c05';
const redis = testRedis();
const prefix = uniquePrefix('lock');
const queuePrefix = uniquePrefix('lockq');
let running: Awaited<ReturnType<typeof startTestService>>;
let service: Service;
let queue: Queue;
const flood: Socket[] = [];

beforeAll(async () => {
  const { file, dir } = tempRulesFile(`version: 1
apps:
  my-app:
    drain_tokens: [${TOKEN}]
rules:
  - name: puma-r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    actions:
      - { type: redis-stop-key, key: "${prefix}:puma::stop::{{target}}", ttl: 60s }
`);
  running = await startTestService({ redis, prefix, queuePrefix, drainPassword: 'drain-secret-lockout', rulesFile: file, dir, worker: false, env: { MALLET_SYSLOG_PORT: '0', MALLET_DRY_RUN: '1' } });
  service = running.service;
  queue = running.queue;
});

afterAll(async () => {
  for (const s of flood) s.destroy();
  await running?.close();
  redis.disconnect();
});

const framed = (m: string) => `${Buffer.byteLength(m)} ${m}`;
const line = (app: string, proc: string, text: string) => framed(`<190>1 2026-12-01T00:00:00Z ${TOKEN} ${app} ${proc} - - ${text}\n`);

function dial(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port: service.syslogPort!, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

describe('syslog lock-out with a known drain token', () => {
  it('300 connections that each sent one frame of the token do not lock out the live drain', async () => {
    for (let i = 0; i < 300; i++) {
      const s = await dial();
      s.on('error', () => {});
      flood.push(s);
      s.write(line('app', 'web.1', `hello ${i}`));
    }
    // Let the flood frames be read (at least as many as there are slots), so those connections proved the token.
    await eventually('the flood to be read', async () => (await service.metrics.linesTotal.get()).values.reduce((n, v) => n + v.value, 0) >= 256, 15_000);
    const live = await dial();
    const reset = new Promise<string>((resolve) => live.once('close', () => resolve('closed')));
    live.on('error', () => {});
    live.write(framed(`<134>1 2026-12-01T00:00:00Z ${TOKEN} heroku web.5 - - Error R14 (Memory quota exceeded)\n`));
    const fired = eventually('the live drain R14 to fire', async () => (await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'prioritized'])).length > 0, 10_000);
    expect(await Promise.race([fired.then(() => 'fired'), reset])).toBe('fired');
    const jobs = await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'prioritized']);
    expect(jobs.map((j) => j.data.target)).toEqual(['web.5']);
    expect(live.destroyed).toBe(false);
    // The flood kept at most the per-token bound of connections.
    await eventually('the flood to be cut to the per-token bound', async () => flood.filter((s) => !s.destroyed).length <= 4, 5_000);
    live.destroy();
  });
});
