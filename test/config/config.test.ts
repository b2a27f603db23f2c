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
    expect(() => loadConfig({ MALLET_WORKER: 'no', MALLET_LOG_FORMAT: 'xml' }, dir)).toThrow(/MALLET_WORKER="no": expected 1[^]*MALLET_LOG_FORMAT="xml": expected pretty or json/);
    expect(wantsPrettyLogs(loadConfig({}, dir).logFormat, { isTTY: true })).toBe(true);
    expect(wantsPrettyLogs(loadConfig({}, dir).logFormat, {})).toBe(false);
    expect(wantsPrettyLogs(loadConfig({ MALLET_LOG_FORMAT: 'json' }, dir).logFormat, { isTTY: true })).toBe(false);
    expect(wantsPrettyLogs(loadConfig({ MALLET_LOG_FORMAT: 'pretty' }, dir).logFormat, {})).toBe(true);
  });
});
