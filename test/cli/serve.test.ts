import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { spawnMallet } from '../support/malletProcess.js';
import { eventually } from '../support/eventually.js';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { ActionQueue } from '../../src/actions/queue.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { DEFAULT_LIMITS } from '../../src/rules/RuleSet.js';
import { tempRulesFile } from '../support/rulesFile.js';

/** `mallet serve` as a real process: start, answer, and stop gracefully on SIGTERM (SPEC §1, §6). */
const redis = testRedis();
const prefixes: string[] = [];
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); redis.disconnect(); });

function rulesFile(): string {
  return tempRulesFile(`version: 1
rules:
  - name: puma-r14
    match: { process: "web.*", message: '^Error R14 ' }
    actions:
      - type: redis-stop-key
`).file;
}

function baseEnv(extra: Record<string, string>): Record<string, string | undefined> {
  return { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', MALLET_DRAIN_PASSWORD: 'serve-test-password', ...extra };
}

describe('mallet serve', () => {
  it('answers a logplex POST with 204 and exits 0 on SIGTERM', async () => {
    const prefix = uniquePrefix('serve');
    prefixes.push(prefix);
    const m = spawnMallet(['serve'], { env: baseEnv({ REDIS_URL: testRedisUrl(), MALLET_RULES: rulesFile(), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix }) });
    const listening = await m.waitForLog(/mallet is listening/);
    const url = String(listening.url);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const res = await postDrain(url, 'my-app', frame(drainLine('heroku', 'web.9', 'State changed from starting to up')), { password: 'serve-test-password' });
    expect(res.status).toBe(204);
    m.child.kill('SIGTERM');
    const { code } = await m.exited;
    expect(code).toBe(0);
    expect(m.output()).toMatch(/shutting down/);
  });

  it('without MALLET_DRAIN_PASSWORD: the generated one is in .mallet/drain-password (owner only) and opens the drain; no password and no URL with credentials in the start-up output', async () => {
    const prefix = uniquePrefix('servepw');
    prefixes.push(prefix);
    const cwd = mkdtempSync(join(tmpdir(), 'mallet-drainpw-'));
    const env = baseEnv({ REDIS_URL: testRedisUrl(), MALLET_RULES: rulesFile(), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix, MALLET_ADMIN_PASSWORD: 'admin-secret-startup', MALLET_LOG_FORMAT: 'json' });
    delete env.MALLET_DRAIN_PASSWORD;
    const m = spawnMallet(['serve'], { cwd, env });
    const url = String((await m.waitForLog(/mallet is listening/)).url);
    await m.waitForLog(/^status page: /);
    const file = join(cwd, '.mallet/drain-password');
    const password = readFileSync(file, 'utf8').trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect((await postDrain(url, 'my-app', frame(drainLine('heroku', 'web.9', 'State changed from starting to up')), { password })).status).toBe(204);
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
    const out = m.output();
    expect(out).toContain('MALLET_DRAIN_PASSWORD is not set: generated one for this run only, in .mallet/drain-password (not printed)');
    expect(out).not.toContain(password);
    expect(out).not.toContain('admin-secret-startup');
    // No user:password@host anywhere (the drain URL used to be printed so).
    expect(out).not.toMatch(/\/\/[^/\s"@]*:[^/\s"@]*@/);
  });

  it('without REDIS_URL starts an embedded redis-server on a unix socket and stops it on exit', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'mallet-embedded-'));
    const m = spawnMallet(['serve'], { cwd, env: baseEnv({ MALLET_RULES: rulesFile() }) });
    const started = await m.waitForLog(/embedded redis-server/);
    const socket = String(started.socket);
    expect(socket).toBe(join(cwd, '.mallet/redis/redis.sock'));
    const url = String((await m.waitForLog(/mallet is listening/)).url);
    // Ready as soon as it listens: start waits for the Redis connection (the body says why if not).
    const ready = await fetch(`${url}/readyz`);
    expect({ status: ready.status, body: await ready.json() }).toEqual({ status: 200, body: { ok: true } });
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
    // Append-only file on (SPEC §1), and the server is gone with mallet.
    expect(existsSync(join(dirname(socket), 'appendonlydir'))).toBe(true);
    expect(existsSync(socket)).toBe(false);
  });

  it('without REDIS_URL, Ctrl-C (SIGINT to the whole process group) stops mallet before its embedded redis-server: no connection errors, exit 0', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'mallet-embedded-int-'));
    const m = spawnMallet(['serve'], { cwd, env: baseEnv({ MALLET_RULES: rulesFile(), MALLET_LOG_FORMAT: 'json' }), detached: true });
    const socket = String((await m.waitForLog(/embedded redis-server/)).socket);
    const url = String((await m.waitForLog(/mallet is listening/)).url);
    expect((await postDrain(url, 'my-app', frame(drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)')), { password: 'serve-test-password' })).status).toBe(204);
    expect(Number(readFileSync(join(dirname(socket), 'owner'), 'utf8'))).toBe(m.child.pid);
    process.kill(-m.child.pid!, 'SIGINT');
    expect((await m.exited).code).toBe(0);
    const out = m.output();
    expect(out).toMatch(/shutting down/);
    expect(out).not.toMatch(/redis connection error|did not close within/);
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(join(dirname(socket), 'owner'))).toBe(false);
  });

  it('without REDIS_URL, a redis-server left behind by a killed mallet is shut down at the next start (its data kept); one of a running mallet is refused', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'mallet-embedded-kill-'));
    const env = baseEnv({ MALLET_RULES: rulesFile(), MALLET_LOG_FORMAT: 'json' });
    const first = spawnMallet(['serve'], { cwd, env });
    const socket = String((await first.waitForLog(/embedded redis-server/)).socket);
    await first.waitForLog(/mallet is listening/);
    const left = new Redis(socket);
    await left.set('left-behind', 'kept');
    // A second mallet in the same folder while the first runs: refused, the first's server untouched.
    const second = spawnMallet(['serve'], { cwd, env });
    expect((await second.exited).code).toBe(1);
    expect(second.output()).toMatch(/MALLET_REDIS_IN_USE|another mallet \(pid \d+\) is running in this folder/);
    expect(await left.ping()).toBe('PONG');
    left.disconnect();
    first.child.kill('SIGKILL');
    await first.exited;
    const third = spawnMallet(['serve'], { cwd, env });
    await third.waitForLog(/left by a mallet that did not exit cleanly/);
    await third.waitForLog(/mallet is listening/);
    const fresh = new Redis(socket);
    expect(await fresh.get('left-behind')).toBe('kept');
    fresh.disconnect();
    third.child.kill('SIGTERM');
    expect((await third.exited).code).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });

  it('without REDIS_URL and without redis-server on PATH, exits 1 saying how to fix it', async () => {
    // An empty PATH: mallet itself is started by absolute path.
    const m = spawnMallet(['serve'], { env: { ...baseEnv({ MALLET_RULES: rulesFile() }), PATH: mkdtempSync(join(tmpdir(), 'mallet-nopath-')) } });
    const { code } = await m.exited;
    expect(code).toBe(1);
    expect(m.output()).toMatch(/no redis-server is on PATH/);
    expect(m.output()).toMatch(/apt-get install redis-server|REDIS_URL=/);
  });

  it('reloads the rules when the file changes and on SIGHUP; an invalid file is refused and the last good rules stay', async () => {
    const prefix = uniquePrefix('reload');
    prefixes.push(prefix);
    const file = rulesFile();
    const m = spawnMallet(['serve'], { env: baseEnv({ REDIS_URL: testRedisUrl(), MALLET_RULES: file, MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix }) });
    const url = String((await m.waitForLog(/mallet is listening/)).url);
    writeFileSync(file, 'version: 1\nrules:\n  - name: typo\n    match: { process: "web.*" }\n    treshold: { count: 2 }\n    actions: [ { type: redis-stop-key } ]\n');
    const refused = await m.waitForLog(/rules reload refused/);
    expect(String(refused.msg)).toMatch(/:5:5: rule typo: unknown key "treshold"/);
    await m.waitForLog(/keeping the last good rules/);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    writeFileSync(file, 'version: 1\nrules:\n  - name: one\n    match: { process: "web.*" }\n    actions: [ { type: redis-stop-key } ]\n  - name: two\n    match: { process: "worker.*" }\n    actions: [ { type: redis-stop-key } ]\n');
    expect((await m.waitForLog(/rules reloaded/)).rules).toBe(2);
    const reloads = () => m.output().match(/rules reloaded/g)?.length ?? 0;
    await new Promise((r) => setTimeout(r, 500)); // let the watcher's debounce settle
    const before = reloads();
    m.child.kill('SIGHUP');
    await eventually('a reload on SIGHUP', async () => reloads() > before, 10_000);
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
  });

  it('mallet worker runs queued actions without serving HTTP, and exits 0 on SIGTERM', async () => {
    const prefix = uniquePrefix('worker');
    prefixes.push(prefix);
    const m = spawnMallet(['worker'], { env: baseEnv({ REDIS_URL: testRedisUrl(), MALLET_RULES: rulesFile(), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix }) });
    await m.waitForLog(/mallet worker started/);
    expect(m.output()).not.toMatch(/mallet is listening/);
    // A firing enqueued by some `mallet serve` replica: the worker process picks it up.
    const queue = new ActionQueue({
      connection: redis, queuePrefix: prefix, keys: redisKeys(prefix), metrics: createMetrics(undefined, { defaults: false }),
      logger: pino({ level: 'silent' }), dryRun: false, getLimits: () => DEFAULT_LIMITS,
    });
    const key = `${prefix}:stop:web.3`;
    await queue.submit([{
      id: `f${prefix.replace(/[^a-z0-9]/g, '')}`, rule: 'puma-r14', app: 'my-app', target: 'web.3', processType: 'web', window: '1',
      firedAt: Date.now(), receivedAt: Date.now(), triggerLines: ['heroku[web.3]: Error R14 (Memory quota exceeded)'],
      actions: [{ type: 'redis-stop-key', key, value: 'puma-r14', ttlMs: 60_000 }], dryRun: false,
    }]);
    // The plugin on web.3 takes the key; the step is done once it did.
    const taken = await eventually('the stop key of web.3', async () => (await redis.getdel(key)) ?? undefined, 20_000);
    await m.waitForLog(/action job done/);
    expect(taken).toBe('puma-r14');
    await queue.close();
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
  });

  it('with Redis unreachable it starts, reports not ready, answers drains 503, and still exits 0 on SIGTERM', async () => {
    const closedPort = 1 + Math.floor(Math.random() * 1000) + 49000;
    const m = spawnMallet(['serve'], { env: baseEnv({ REDIS_URL: `redis://127.0.0.1:${closedPort}`, MALLET_RULES: rulesFile() }) });
    const url = String((await m.waitForLog(/mallet is listening/)).url);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(JSON.stringify(await ready.json())).toMatch(/redis/);
    const res = await postDrain(url, 'my-app', frame(drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)')), { password: 'serve-test-password' });
    expect(res.status).toBe(503);
    m.child.kill('SIGTERM');
    expect((await m.exited).code).toBe(0);
    expect(m.output()).not.toMatch(/Unhandled error event/);
  });

  it('refuses to start in production without a drain password', async () => {
    const m = spawnMallet(['serve'], { env: { PATH: process.env.PATH, NODE_ENV: 'production', REDIS_URL: testRedisUrl(), MALLET_RULES: rulesFile() } });
    expect((await m.exited).code).toBe(1);
    expect(m.output()).toMatch(/MALLET_DRAIN_PASSWORD is required/);
  });
});
