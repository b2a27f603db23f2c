import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { MalletError } from '../../src/errors.js';

describe('loadConfig (SPEC §2)', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'mallet-config-'));

  it('applies the documented defaults', () => {
    const c = loadConfig({}, cwd);
    expect(c).toMatchObject({ port: 3000, redisUrl: undefined, herokuApiUrl: 'https://api.heroku.com', logLevel: 'info', dryRun: false, keyPrefix: 'mallet', queuePrefix: 'bull' });
    expect(c.rulesPath).toBe(join(cwd, 'config/rules.example.yml'));
    expect(c.rulesFromExample).toBe(true);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('Redis Cluster: seed URLs, a hash-tagged queue prefix by default, brace-free key prefix; rebalancing bounds', () => {
    const c = loadConfig({ MALLET_REDIS_CLUSTER: '1', REDIS_URL: 'redis://10.0.0.1:6379, redis://:pw@10.0.0.2:6380' }, cwd);
    expect(c).toMatchObject({ redisCluster: true, queuePrefix: '{bull}', keyPrefix: 'mallet', connectionMaxRequests: 1000, connectionMaxAgeMs: 300_000 });
    expect(loadConfig({ MALLET_CONNECTION_MAX_REQUESTS: '0', MALLET_CONNECTION_MAX_AGE: '60' }, cwd)).toMatchObject({ connectionMaxRequests: 0, connectionMaxAgeMs: 60_000 });
    let err: unknown;
    try {
      loadConfig({ MALLET_REDIS_CLUSTER: '1', REDIS_URL: 'redis://a:1,http://b:2', MALLET_QUEUE_PREFIX: 'bull', MALLET_KEY_PREFIX: '{m}', MALLET_CONNECTION_MAX_AGE: '5m' }, cwd);
    } catch (e) { err = e; }
    expect((err as MalletError).details).toEqual([
      expect.stringMatching(/^REDIS_URL: with MALLET_REDIS_CLUSTER=1/),
      expect.stringMatching(/^MALLET_KEY_PREFIX: must not contain/),
      expect.stringMatching(/^MALLET_QUEUE_PREFIX="bull": on a Redis Cluster it must contain a hash tag/),
      expect.stringMatching(/^MALLET_CONNECTION_MAX_AGE="5m"/),
    ]);
    expect(() => loadConfig({ MALLET_REDIS_CLUSTER: '1' }, cwd)).toThrow(/MALLET_REDIS_CLUSTER=1 needs REDIS_URL/);
  });

  it('prefers config/rules.yml when it exists', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mallet-config-'));
    mkdirSync(join(dir, 'config'));
    writeFileSync(join(dir, 'config/rules.yml'), 'version: 1\nrules: []\n');
    const c = loadConfig({}, dir);
    expect(c.rulesPath).toBe(join(dir, 'config/rules.yml'));
    expect(c.rulesFromExample).toBe(false);
  });

  it('reports every problem at once, each saying what to fix', () => {
    let err: unknown;
    try {
      loadConfig({ PORT: 'eighty', REDIS_URL: 'localhost:6379', LOG_LEVEL: 'loud', MALLET_DRY_RUN: 'yes', MALLET_DRAIN_PASSWORD: 'a:b-long-enough', MALLET_SYSLOG_TLS_CERT: '/nope.pem' }, cwd);
    } catch (e) { err = e; }
    expect(err).toBeInstanceOf(MalletError);
    const e = err as MalletError;
    expect(e.code).toBe('MALLET_CONFIG_INVALID');
    expect(e.details.join('\n')).toMatch(/PORT="eighty"/);
    expect(e.details.join('\n')).toMatch(/REDIS_URL: expected a redis:\/\/ or rediss:\/\/ URL/);
    expect(e.details.join('\n')).toMatch(/LOG_LEVEL/);
    expect(e.details.join('\n')).toMatch(/MALLET_DRY_RUN/);
    expect(e.details.join('\n')).toMatch(/must not contain ":"/);
    expect(e.details.join('\n')).toMatch(/set both or neither/);
    expect(e.details.length).toBeGreaterThanOrEqual(6);
  });

  it('refuses to start in production without a drain password', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' }, cwd)).toThrow(/MALLET_DRAIN_PASSWORD is required/);
    expect(loadConfig({ NODE_ENV: 'production', MALLET_DRAIN_PASSWORD: 'long-enough-secret' }, cwd).production).toBe(true);
  });
});

describe('MALLET_WORKER and MALLET_LOG_FORMAT', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mallet-cfg-'));
  it('serve runs the worker unless MALLET_WORKER=0; logs are pretty only on a terminal unless told', async () => {
    const { wantsPrettyLogs } = await import('../../src/logger.js');
    expect(loadConfig({}, dir).inProcessWorker).toBe(true);
    expect(loadConfig({ MALLET_WORKER: '1' }, dir).inProcessWorker).toBe(true);
    expect(loadConfig({ MALLET_WORKER: '0' }, dir).inProcessWorker).toBe(false);
    expect(() => loadConfig({ MALLET_WORKER: 'no', MALLET_LOG_FORMAT: 'xml' }, dir)).toThrow(/MALLET_WORKER="no": expected 1[\s\S]*MALLET_LOG_FORMAT="xml": expected pretty or json/);
    expect(wantsPrettyLogs(loadConfig({}, dir).logFormat, { isTTY: true })).toBe(true);
    expect(wantsPrettyLogs(loadConfig({}, dir).logFormat, {})).toBe(false);
    expect(wantsPrettyLogs(loadConfig({ MALLET_LOG_FORMAT: 'json' }, dir).logFormat, { isTTY: true })).toBe(false);
    expect(wantsPrettyLogs(loadConfig({ MALLET_LOG_FORMAT: 'pretty' }, dir).logFormat, {})).toBe(true);
  });
});
