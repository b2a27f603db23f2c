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
import { ActionQueue } from '../../src/actions/queue.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';

const tmp = mkdtempSync(join(tmpdir(), 'mallet-replay-'));
const redis = testRedis();
const prefix = uniquePrefix('replay-svc');
afterAll(async () => { rmSync(tmp, { recursive: true, force: true }); await cleanupPrefix(redis, prefix); redis.disconnect(); });

const RULES = `version: 1
apps:
  acme-shop: {}
rules:
  - name: r14
    match: { process: "web.*", message: '^Error R14 ' }
    threshold: { count: 2, within: 5m }
    cooldown: 1m
    actions:
      - type: redis-stop-key
      - type: notify
        url: \${SLACK_URL}
  - name: h12-storm
    match: { process: router, fields: { code: H12 } }
    target: "{{fields.dyno}}"
    threshold: { count: 3, within: 1m }
    actions: [ { type: heroku-restart, token: "\${TOKEN}" } ]
limits:
  per_app: { max_firings: 3, within: 10m }
  per_process_type: { concurrency: 1 }
  flapping: { max_firings: 2, within: 1h }
`;
const ENV = { SLACK_URL: 'http://127.0.0.1:9/hook', TOKEN: 't' };

const r14 = (t: string, dyno: string) => `2024-11-14T03:${t}.000000+00:00 heroku[${dyno}]: Error R14 (Memory quota exceeded)`;
const h12 = (t: string) => `2024-11-14T03:${t}.000000+00:00 heroku[router]: at=error code=H12 desc="Request timeout" method=GET path="/" host=acme-shop.herokuapp.com fwd=1.2.3.4 dyno=web.9 connect=1ms service=30000ms status=503 bytes=0`;
/** A storm (five dynos within minutes) and a flapping web.1 (fires three times in an hour). */
const CAPTURE = [
  r14('00:00', 'web.1'), r14('00:10', 'web.1'), // fires web.1 (1st of the app, 1st of web.1)
  r14('00:20', 'web.1'), //                        cooldown
  r14('02:00', 'web.1'), r14('02:10', 'web.1'), // fires web.1 again (2nd, 2nd)
  r14('02:20', 'web.2'), r14('02:30', 'web.2'), // fires web.2 (3rd): waits for web.1's slot
  r14('04:00', 'web.1'), r14('04:10', 'web.1'), // fires web.1 a 3rd time: flapping (also over the storm guard)
  r14('04:20', 'web.3'), r14('04:30', 'web.3'), // fires web.3: the 5th firing of the app in 10m: held
  r14('05:00', 'web.4'), //                        one R14 only: a near miss
  h12('06:00'), h12('06:20'), //                   two H12 of three: a near miss
];

function io(env: Record<string, string | undefined>) {
  let out = '';
  let err = '';
  const w = (f: (s: string) => void) => new Writable({ write(c, _e, cb) { f(String(c)); cb(); } });
  const streams: CliIo = { stdout: w((s) => { out += s; }), stderr: w((s) => { err += s; }), env, cwd: tmp };
  return { io: streams, out: () => out, err: () => err };
}

/** The service's own engine and action queue on real Redis, fed the same lines at their own times. */
async function serviceModes(): Promise<string[]> {
  const loaded = loadRulesText(RULES, 'rules.yml', ENV);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  const logger = pino({ level: 'silent' });
  const metrics = createMetrics(undefined, { defaults: false });
  const keys = redisKeys(prefix);
  let now = 0;
  const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => loaded.ruleSet });
  const queue = new ActionQueue({ connection: redis, queuePrefix: `${prefix}:bull`, keys, metrics, logger, dryRun: false, getLimits: () => loaded.ruleSet.limits, clock: () => now });
  const out: string[] = [];
  try {
    for (const [i, line] of CAPTURE.entries()) {
      const m = /^(\S+) ([a-z]+)\[([^\]]+)\]: (.*)$/.exec(line)!;
      const at = Date.parse(m[1]!);
      const event: DrainEvent = { app: 'acme-shop', id: `svc:${i}`, receivedAt: at, timestamp: m[1]!, source: m[2]!, process: m[3]!, message: m[4]! };
      now = at;
      const firings = await engine.evaluate([event]);
      await queue.submit(firings);
      for (const f of firings) {
        const job = await queue.queue.getJob(f.id);
        out.push(`${new Date(f.firedAt).toISOString()} ${f.rule} ${f.target} ${job!.data.mode}`);
      }
    }
  } finally {
    await queue.close();
  }
  return out;
}

describe('mallet replay applies the allow-list and the limits as the service does', () => {
  it('reports the same execute/held/flapping outcomes as the service on the same lines, plus waits, cooldowns and near misses', async () => {
    writeFileSync(join(tmp, 'rules.yml'), RULES);
    writeFileSync(join(tmp, 'capture.log'), CAPTURE.join('\n') + '\n');
    const c = io(ENV);
    expect(await runReplay(['capture.log', '--app', 'acme-shop', '--rules', 'rules.yml', '--explain'], c.io)).toBe(0);
    const out = c.out().trim().split('\n');

    const MODE: Record<string, string> = { 'would run': 'execute', 'would wait its turn': 'execute', HELD: 'held', FLAPPING: 'flapping' };
    const replayed = out.filter((l) => / r14 | h12-storm /.test(l) && !l.includes('cooldown')).map((l) => {
      const [at, rule, , target] = l.split(' ');
      const what = Object.keys(MODE).find((k) => l.includes(`: ${k}`))!;
      return `${at} ${rule} ${target!.replace(/:$/, '')} ${MODE[what]}`;
    });
    const fromService = await serviceModes();
    expect(fromService).toEqual([
      '2024-11-14T03:00:10.000Z r14 web.1 execute',
      '2024-11-14T03:02:10.000Z r14 web.1 execute',
      '2024-11-14T03:02:30.000Z r14 web.2 execute',
      '2024-11-14T03:04:10.000Z r14 web.1 flapping',
      '2024-11-14T03:04:30.000Z r14 web.3 held',
    ]);
    expect(replayed).toEqual(fromService);

    // What the service's worker would do with web.2: wait for web.1's slot (its stop key lives 1m).
    expect(out.find((l) => l.includes(' web.2: '))).toContain('would wait its turn (limits.per_process_type: 1 remediation(s) of web ahead), then run at about 2024-11-14T03:03:10.000Z');
    expect(out.find((l) => l.includes(' web.1: FLAPPING'))).toContain('web.1 fired more than 2 times within 1h (limits.flapping)');
    expect(out.find((l) => l.includes(' web.3: HELD'))).toContain('acme-shop had more than 3 firings within 10m (limits.per_app)');
    expect(out).toContain('2024-11-14T03:00:10.000Z r14 acme-shop web.1: cooldown: matches after the firing at 2024-11-14T03:00:10.000Z are counted, not fired');
    expect(out).toContain('r14: fired 5 times; at most 1 of 2 within 5m without firing (web.1, at 2024-11-14T03:00:00.000Z)');
    expect(out).toContain('h12-storm: at most 2 of 3 within 1m without firing (web.9, at 2024-11-14T03:06:20.000Z)');
    expect(c.err()).toContain('14 lines (heroku-logs), 5 firings (2 executed, 1 waited, 1 held, 1 flapping, 1 cooldown lines); nothing executed');
  });

  it('refuses an app the rules file does not list, as the drain does (404), judging nothing', async () => {
    const c = io(ENV);
    expect(await runReplay(['capture.log', '--app', 'other-app', '--rules', 'rules.yml'], c.io)).toBe(1);
    expect(c.err()).toContain('app other-app is not listed under apps: — the rules file lists acme-shop');
    expect(c.out()).toBe('');
  });
});
