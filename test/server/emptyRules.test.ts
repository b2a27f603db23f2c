import { writeFileSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startService, type Service } from '../../src/server/service.js';
import { eventually } from '../support/eventually.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { tempRulesFile } from '../support/rulesFile.js';

/**
 * Issue 8, "Also": a valid `rules: []` silently turned off all remediation. Through the running
 * service (real HTTP, real Redis): it is warned about at start and at every reload that brings it
 * back, and /readyz stays 200 (drains are still answered) with the warning in its body.
 */
const redis = testRedis();
const prefix = uniquePrefix('empty');
const queuePrefix = uniquePrefix('emptyq');
const logged: Array<{ level: number; msg: string }> = [];
let service: Service;
let rulesFile: string;
const ONE_RULE = `version: 1
rules:
  - name: puma-r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    actions:
      - { type: redis-stop-key, key: "${prefix}:puma::stop::{{target}}", ttl: 60s }
`;

beforeAll(async () => {
  const { file, dir } = tempRulesFile('version: 1\nrules: []\n');
  rulesFile = file;
  const config = loadConfig({
    REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: queuePrefix, PORT: '0', HOST: '127.0.0.1',
    MALLET_DRAIN_PASSWORD: 'drain-secret-empty', MALLET_RULES: file, LOG_LEVEL: 'info',
  }, dir);
  const logger = pino({ level: 'info' }, { write: (line: string) => { logged.push(JSON.parse(line)); } });
  service = await startService({ config, logger, worker: false });
});

afterAll(async () => {
  await service?.close();
  await cleanupPrefix(redis, prefix, queuePrefix);
  redis.disconnect();
});

const noRuleWarnings = () => logged.filter((l) => l.level >= 40 && /rules: \[\] defines no rule/.test(l.msg));
const readyz = async () => { const res = await fetch(`${service.url}/readyz`); return { status: res.status, body: await res.json() as { ok: boolean; warnings?: string[] } }; };

describe('rules: [] turns remediation off, and says so', () => {
  it('warns at start and /readyz carries the warning while staying 200', async () => {
    expect(noRuleWarnings()).toHaveLength(1);
    const r = await readyz();
    expect(r.status).toBe(200);
    expect(r.body.ok).toBe(true);
    expect(r.body.warnings).toEqual([expect.stringMatching(/fires nothing/)]);
  });

  it('a reload to real rules clears the warning; a reload back to rules: [] warns again', async () => {
    writeFileSync(rulesFile, ONE_RULE);
    expect(await service.reloadRules()).toBe(true);
    expect((await readyz()).body.warnings).toBeUndefined();
    writeFileSync(rulesFile, 'version: 1\nrules: []\n');
    // The file watcher may be reloading the first change still: wait for the second to be read.
    await eventually('the reload back to rules: [] to warn', async () => { await service.reloadRules(); return noRuleWarnings().length >= 2; }, 10_000);
    expect((await readyz()).body.warnings).toHaveLength(1);
  });
});
