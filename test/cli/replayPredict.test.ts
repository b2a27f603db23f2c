import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { runReplay } from '../../src/cli/replay.js';
import type { CliIo } from '../../src/cli/CliIo.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { loadRulesText } from '../../src/rules/load.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';

const tmp = mkdtempSync(join(tmpdir(), 'mallet-replay-predict-'));
const redis = testRedis();
const prefix = uniquePrefix('replay-pred');
afterAll(async () => { rmSync(tmp, { recursive: true, force: true }); await cleanupPrefix(redis, prefix); redis.disconnect(); });

const RULES = `version: 1
rules:
  - name: web-leak
    match: { process: "web.*" }
    predict: { value: "sample#memory_total", reaches: "100% sample#memory_quota", within: 30m, over: 15m, min_samples: 10 }
    cooldown: 20m
    actions: [ { type: redis-stop-key } ]
`;
const UUID = '1f6a6b9e-8e4c-4c6b-9d0e-0a3b5c7d9e11';
const T0 = Date.UTC(2024, 10, 14, 3, 0, 0);
const ts = (ms: number) => new Date(ms).toISOString().replace('Z', '000+00:00');
/** 45 minutes of web.1 samples every 20 s, 300 MB rising 1 MB a sample (180 MB/h), and a flat web.2. */
const CAPTURE: string[] = [];
for (let i = 0; i < 135; i++) {
  CAPTURE.push(`${ts(T0 + i * 20_000)} heroku[web.1]: source=web.1 dyno=heroku.2345678.${UUID} sample#memory_total=${(300 + i).toFixed(2)}MB sample#memory_quota=512.00MB`);
  CAPTURE.push(`${ts(T0 + i * 20_000 + 3000)} heroku[web.2]: source=web.2 dyno=heroku.2345678.2a7b7cae-9f5d-4d7c-8e1f-1b4c6d8e0f22 sample#memory_total=480.00MB sample#memory_quota=512.00MB`);
}

function io() {
  let out = '';
  let err = '';
  const w = (f: (s: string) => void) => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
  const streams: CliIo = { stdout: w((s) => { out += s; }), stderr: w((s) => { err += s; }), env: {}, cwd: tmp };
  return { io: streams, out: () => out, err: () => err };
}

describe('mallet replay fires predictive rules where the service does', () => {
  it('the same sample fires in the service (bodies arriving late, in threes) and in replay (at the line times)', async () => {
    writeFileSync(join(tmp, 'rules.yml'), RULES);
    writeFileSync(join(tmp, 'capture.log'), CAPTURE.join('\n') + '\n');
    const c = io();
    expect(await runReplay(['capture.log', '--rules', 'rules.yml', '--explain'], c.io)).toBe(0);
    const out = c.out().trim().split('\n');
    // Sample 122 (422 MB): the line reaches 512 MB in 30 minutes; then 20 minutes of cooldown.
    const fired = out.filter((l) => / web-leak replay web\.\d: /.test(l) && !l.includes(': cooldown: '));
    expect(fired).toEqual([
      `${new Date(T0 + 122 * 20_000).toISOString()} web-leak replay web.1: web.1 reaches 512 MB in ~30 min at 180 MB/h: would run: type=redis-stop-key key=puma::stop::web.1 value=web-leak ttl=1m instance=${UUID}`,
    ]);
    expect(out).toContain(`web-leak: fired 1 time; closest forecast without firing: 512 MB in ~30 min (needed within 30m; web.1, at ${new Date(T0 + 121 * 20_000).toISOString()})`);

    // The service: the same lines in bodies of six (three samples of each dyno), each arriving 5 s
    // after its last line; the firing's clock is the arrival, the forecast the lines' own times.
    const loaded = loadRulesText(RULES, 'rules.yml', {});
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const engine = new RulesEngine({ redis, keys: redisKeys(prefix), metrics: createMetrics(undefined, { defaults: false }), logger: pino({ level: 'silent' }), getRuleSet: () => loaded.ruleSet });
    const service: string[] = [];
    for (let b = 0; b < CAPTURE.length; b += 6) {
      const lines = CAPTURE.slice(b, b + 6).map((line) => /^(\S+) ([a-z]+)\[([^\]]+)\]: (.*)$/.exec(line)!);
      const arrival = Date.parse(lines[lines.length - 1]![1]!) + 5000;
      const events: DrainEvent[] = lines.map((m, i) => ({ app: 'replay', id: `svc:${b + i}`, receivedAt: arrival, timestamp: m[1]!, source: m[2]!, process: m[3]!, message: m[4]! }));
      for (const f of await engine.evaluate(events)) service.push(`${f.target} ${f.prediction} ${f.triggerLines[0]!.split(' ')[0]} ${new Date(f.firedAt).toISOString()}`);
    }
    const sampleTime = ts(T0 + 122 * 20_000);
    // Sample 122 is the 245th line, in the body of lines 240..245, which arrives 5 s after line 245.
    expect(service).toEqual([`web.1 web.1 reaches 512 MB in ~30 min at 180 MB/h ${sampleTime} ${new Date(T0 + 122 * 20_000 + 3000 + 5000).toISOString()}`]);
  });

  it('--explain says how close a predict rule came without firing', async () => {
    writeFileSync(join(tmp, 'short.log'), CAPTURE.slice(0, 200).join('\n') + '\n');
    const c = io();
    expect(await runReplay(['short.log', '--rules', 'rules.yml', '--explain'], c.io)).toBe(0);
    // Sample 99 (399 MB), the last: 113 MB to go at 180 MB/h.
    expect(c.out()).toContain(`web-leak: closest forecast without firing: 512 MB in ~38 min (needed within 30m; web.1, at ${new Date(T0 + 99 * 20_000).toISOString()})`);
  });
});
