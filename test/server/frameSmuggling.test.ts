import { connect } from 'node:net';
import type { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/server/service.js';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { eventually } from '../support/eventually.js';
import { testRedis, uniquePrefix } from '../support/redis.js';
import { tempRulesFile } from '../support/rulesFile.js';
import { startTestService } from '../support/testService.js';

/**
 * Issue 8, item 1: app output read as a platform line. An app prints a whole platform frame
 * (`user said: 85 <45>1 … heroku web.9 - Error R14 …`) right after a broken frame; a reader that
 * re-synchronises by searching message bytes turns it into an R14 of web.9 and fires. Through the
 * running service (real HTTP, real syslog TCP, real Redis and queue), only the real R14 sent
 * afterwards may fire.
 */
const PASSWORD = 'drain-secret-smuggle';
const TOKEN = 'd.4f0b6c1e-8a2d-4e57-9b3c-6d1a2e7f9c05';
const redis = testRedis();
const prefix = uniquePrefix('smug');
const queuePrefix = uniquePrefix('smugq');
let running: Awaited<ReturnType<typeof startTestService>>;
let service: Service;
let queue: Queue;

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
  running = await startTestService({ redis, prefix, queuePrefix, drainPassword: PASSWORD, rulesFile: file, dir, worker: false, env: { MALLET_SYSLOG_PORT: '0', MALLET_DRY_RUN: '1' } });
  service = running.service;
  queue = running.queue;
});

afterAll(async () => {
  await running?.close();
  redis.disconnect();
});

const targets = async () => (await queue.getJobs(['waiting', 'active', 'delayed', 'completed', 'prioritized', 'failed'])).map((j) => j.data.target as string).sort();
const lenOf = (s: string) => Buffer.byteLength(s);

/**
 * The app's line, holding a whole platform frame with its correct LEN. The smuggled dyno differs
 * per transport (web.9 HTTPS, web.8 syslog), so a firing of one cannot hide behind the other's.
 */
function appLine(sd: boolean, proc = 'web.1'): string {
  const host = sd ? TOKEN : 'host';
  const smuggled = `<45>1 2026-12-01T00:00:00Z ${host} heroku ${sd ? 'web.8' : 'web.9'} -${sd ? ' -' : ''} Error R14 (Memory quota exceeded)\n`;
  return `<190>1 2026-12-01T00:00:00Z ${host} app ${proc} -${sd ? ' -' : ''} user said: ${lenOf(smuggled)} ${smuggled}`;
}
const before = (sd: boolean) => `<190>1 2026-12-01T00:00:00Z ${sd ? TOKEN : 'host'} app web.2 -${sd ? ' -' : ''} before\n`;
const framed = (m: string) => `${lenOf(m)} ${m}`;

/** The broken frames, each right before the app's line. */
function variants(sd: boolean): Array<[string, Buffer]> {
  const app = framed(appLine(sd));
  return [
    ['a LEN one too high', Buffer.from(`${lenOf(before(sd)) + 1} ${before(sd)}${app}`)],
    ['a stray digit before the frame', Buffer.from(`${framed(before(sd))}7${app}`)],
    ['a stray byte before the frame', Buffer.from(`${framed(before(sd))}x${app}`)],
    ['the line itself truncated', Buffer.from(`${framed(before(sd))}${app}`.slice(0, -20))],
    ['a frame that is not syslog', Buffer.from(`${framed('not a syslog header at all')}${app}`)],
  ];
}

describe('app output is never read as a platform line after a broken frame', () => {
  it('HTTPS drain: none of the broken bodies fires web.9; a real R14 after them fires web.3', async () => {
    for (const [name, body] of variants(false)) {
      const res = await postDrain(service.url!, 'my-app', body, { password: PASSWORD, headers: { 'Logplex-Drain-Token': TOKEN } });
      expect(res.status, name).toBe(204);
    }
    expect(await targets()).toEqual([]);
    const real = frame(drainLine('heroku', 'web.3', 'Error R14 (Memory quota exceeded)'));
    expect((await postDrain(service.url!, 'my-app', real, { password: PASSWORD, headers: { 'Logplex-Drain-Token': TOKEN } })).status).toBe(204);
    expect(await targets()).toEqual(['web.3']);
    const dropped = (await service.metrics.framesInvalidTotal.get()).values.find((v) => v.labels.reason === 'rest-dropped')?.value;
    expect(dropped).toBe(variants(false).length);
  });

  it('syslog drain: none of the broken streams fires web.8, a real R14 after them fires web.4', async () => {
    const already = await targets();
    for (const [name, bytes] of variants(true)) {
      const socket = connect({ port: service.syslogPort!, host: '127.0.0.1' });
      socket.on('error', () => {});
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      // A LEN that runs past what was sent waits for more bytes, so the sender ends each stream.
      socket.end(bytes);
      await closed;
      expect(await targets(), name).toEqual(already);
    }
    const real = `<45>1 2026-12-01T00:00:00Z ${TOKEN} heroku web.4 - - Error R14 (Memory quota exceeded)\n`;
    const socket = connect({ port: service.syslogPort!, host: '127.0.0.1' });
    socket.end(framed(real));
    await eventually('the real R14 to fire', async () => (await targets()).length > already.length);
    expect(await targets()).toEqual([...already, 'web.4'].sort());
  });
});
