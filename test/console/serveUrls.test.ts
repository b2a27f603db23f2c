import { afterAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { spawnMallet } from '../support/malletProcess.js';
import { basic } from '../support/drainClient.js';
import { tempRulesFile } from '../support/rulesFile.js';

/** The console's front door: `mallet serve` says where the status page is when it is on. */
const redis = testRedis();
const prefixes: string[] = [];
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); redis.disconnect(); });

const rules = () => tempRulesFile(`version: 1
rules:
  - name: puma-r14
    match: { process: "web.*", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
`).file;

function env(extra: Record<string, string>) {
  const prefix = uniquePrefix('urls');
  prefixes.push(prefix);
  return {
    PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: 'serve-test-password',
    REDIS_URL: testRedisUrl(), MALLET_RULES: rules(), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix, ...extra,
  };
}

describe('mallet serve and the console', () => {
  it('logs the /admin and /admin/queues URLs when the admin password is set, and they answer', async () => {
    const m = spawnMallet(['serve'], { env: env({ MALLET_ADMIN_PASSWORD: 'admin-password-1' }) });
    const line = await m.waitForLog(/^status page: /);
    const status = String(line.status);
    const queues = String(line.queues);
    expect(status).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/admin$/);
    expect(queues).toBe(status + '/queues');
    expect(String(line.msg)).toContain(status);
    expect((await fetch(status, { headers: { Authorization: basic('admin-password-1') } })).status).toBe(200);
    expect((await fetch(queues, { headers: { Authorization: basic('admin-password-1') } })).status).toBe(200);
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
  });

  it('without the admin password says the console is off, and /admin is not there', async () => {
    const m = spawnMallet(['serve'], { env: env({}) });
    const url = String((await m.waitForLog(/mallet is listening/)).url);
    expect(m.output()).toContain('the /admin status page and the /admin/queues dashboard are off');
    expect(m.output()).not.toContain('status page: ');
    expect((await fetch(`${url}/admin`)).status).toBe(404);
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
  });
});
