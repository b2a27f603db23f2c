import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { startService, type Service } from '../../src/server/service.js';
import { postDrain } from '../support/drainClient.js';
import { REPO } from '../support/malletProcess.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { herokuLogsBody } from '../dynos/events.js';

/**
 * The grace verdict, as an operator asks for it: the preboot fixture (the old web.1 4b88c98d…
 * sampling on while the new cd817c77… boots, a release before) goes through the service's drain
 * as logplex would deliver it live, then the built CLI (`bin/mallet.js`, what `npx mallet` runs)
 * is asked about single lines: `mallet explain --line` says whether each was in its rule's grace
 * and why, and agrees with what the service decided for it. `mallet replay --explain` says the
 * same of the same file.
 */
const redis = testRedis();
const prefix = uniquePrefix('explain-grace');
const queuePrefix = uniquePrefix('explain-graceq');
const dir = mkdtempSync(join(tmpdir(), 'mallet-explain-grace-'));
const PASSWORD = 'drain-secret-grace';
const BUILT = join(REPO, 'dist', 'cli', 'main.js');
const FIXTURE = join(REPO, 'test', 'fixtures', 'preboot-lines.txt');
const LINES = readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
const lineAt = (time: string) => LINES.find((l) => l.startsWith(`2024-11-14T${time}.000000+00:00 `))!;

const RULES = `version: 1
apps:
  acme-shop: {}
rules:
  - name: web-memory-quota
    match: { source: heroku, process: "web.*", message: '^Error R1[45] ' }
    threshold: { count: 2, within: 5m }
    grace: { after_start: 2m, after_release: 5m }
    actions: [ { type: redis-stop-key } ]
  - name: web-memory-sampled
    match: { source: heroku, process: "web.*", message: '^source=web\\.\\d+ dyno=' }
    threshold: { count: 100, within: 5m }
    grace: { after_start: 2m, after_release: 5m }
    actions: [ { type: redis-stop-key } ]
  - name: web-memory-plain
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
`;

let now = 0;
let service: Service;

function mallet(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const env = { PATH: process.env.PATH ?? '', REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix, MALLET_RULES: join(dir, 'rules.yml') };
    const child = spawn(process.execPath, [join(REPO, 'bin', 'mallet.js'), ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

const explain = (rule: string, line: string, ...more: string[]) => mallet(['explain', '--app', 'acme-shop', '--rule', rule, '--target', 'web.1', '--line', line, ...more]);
const graceRow = (out: string) => out.split('\n').find((l) => l.startsWith('grace line  '))?.slice('grace line  '.length);

beforeAll(async () => {
  const build = spawnSync(process.execPath, [join(REPO, 'scripts', 'build-if-stale.js')], { cwd: REPO, stdio: 'inherit' });
  if (build.status !== 0 || !existsSync(BUILT)) throw new Error('npm run build failed: the CLI test needs dist/');
  writeFileSync(join(dir, 'rules.yml'), RULES);
  const config = loadConfig({
    REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: queuePrefix, PORT: '0', HOST: '127.0.0.1',
    MALLET_DRAIN_PASSWORD: PASSWORD, MALLET_ADMIN_PASSWORD: 'admin-secret-grace', MALLET_RULES: join(dir, 'rules.yml'), LOG_LEVEL: 'silent',
  }, dir);
  service = await startService({ config, logger: pino({ level: 'silent' }), worker: false, clock: () => now });
  // Live: each line its own body, arriving at its own time.
  let n = 0;
  for (const line of LINES) {
    now = Date.parse(line.slice(0, line.indexOf(' ')));
    const res = await postDrain(service.url!, 'acme-shop', herokuLogsBody([line]), {
      password: PASSWORD, headers: { 'Logplex-Frame-Id': `grace-${n++}`, 'Logplex-Msg-Count': '1', 'Logplex-Drain-Token': 'd.acme-shop' },
    });
    await res.arrayBuffer();
    expect(res.status).toBe(204);
  }
}, 120_000);

afterAll(async () => {
  await service?.close();
  await cleanupPrefix(redis, prefix, queuePrefix);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe('mallet explain --line: the grace verdict of one line, as the service judged it', () => {
  it('an R14 40 s after the fresh web.1 came up is grace (and the service recorded it so); the one 3 min after is counted', async () => {
    const inGrace = await explain('web-memory-quota', lineAt('09:04:10'));
    expect(inGrace.err).toBe('');
    expect(inGrace.code).toBe(0);
    // No instance in an R14: it is taken as the older running web.1, with the dyno name's newest start.
    expect(graceRow(inGrace.out)).toBe('web.1 last started 2024-11-14T09:03:30Z, 40 s before this line (the line names no instance; taken as instance 4b88c98d…); '
      + 'grace after_start 2m; last release 2024-11-14T09:01:00Z, 3 min 10 s before this line (within after_release 5m too): counted as grace, not toward the threshold');

    const counted = await explain('web-memory-quota', lineAt('09:06:30'));
    expect(graceRow(counted.out)).toBe('web.1 last started 2024-11-14T09:03:30Z, 3 min before this line (the line names no instance; taken as instance cd817c77…) (past after_start 2m); '
      + 'last release 2024-11-14T09:01:00Z, 5 min 30 s before this line (past after_release 5m): counted toward the threshold');

    // What the service decided for the two lines: the first a grace record, the second a vote.
    const json = JSON.parse((await explain('web-memory-quota', lineAt('09:04:10'), '--json')).out);
    expect(json.grace.line).toMatchObject({ from: 'given', verdict: { inGrace: true, spell: `start:${Date.parse('2024-11-14T09:03:30Z')}`, instance: '4b88c98d-6243-4194-af49-8db9b53be371', instanceNamed: false } });
    expect(json.recent.map((r: { outcome: string; line?: string }) => [r.outcome, r.line])).toEqual([['grace', lineAt('09:04:10')]]);
  });

  it('a runtime-metrics line names its instance: its own start, and the release grace', async () => {
    const r = await explain('web-memory-sampled', lineAt('09:04:00'));
    expect(graceRow(r.out)).toBe('web.1 instance cd817c77… started 2024-11-14T09:02:00Z, 2 min before this line (past after_start 2m); '
      + 'last release 2024-11-14T09:01:00Z, 3 min before this line; grace after_release 5m: counted as grace, not toward the threshold');
    expect(r.out).toMatch(/^line {8}2024-11-14T09:04:00\.000000\+00:00 heroku\[web\.1\]: source=web\.1 dyno=heroku\.54241834\.cd817c77/m);
  });

  it('without --line it judges the line of the last decision, and says what a match now would be', async () => {
    const r = await mallet(['explain', '--app', 'acme-shop', '--rule', 'web-memory-quota', '--target', 'web.1']);
    expect(r.code).toBe(0);
    expect(r.out).toContain("(the last decision's line)");
    expect(graceRow(r.out)).toMatch(/^web\.1 last started 2024-11-14T09:03:30Z, 40 s before this line .*: counted as grace, not toward the threshold$/);
    // Now (the real clock) is long after the fixture's start and release.
    expect(r.out).toMatch(/^grace now {3}web\.1 last started 2024-11-14T09:03:30Z, \d+ d( \d+ h)? before now \(past after_start 2m\); last release 2024-11-14T09:01:00Z, .* \(past after_release 5m\): counted toward the threshold$/m);
  });

  it('a dyno that has just started: a match now would be grace, and that is the verdict', async () => {
    now = Date.now();
    const ts = new Date(now).toISOString().replace('Z', '000+00:00');
    const res = await postDrain(service.url!, 'acme-shop', herokuLogsBody([`${ts} heroku[web.2]: Starting process with command \`bundle exec puma -C config/puma.rb\``]), {
      password: PASSWORD, headers: { 'Logplex-Frame-Id': 'grace-now', 'Logplex-Msg-Count': '1', 'Logplex-Drain-Token': 'd.acme-shop' },
    });
    expect(res.status).toBe(204);
    const r = await mallet(['explain', '--app', 'acme-shop', '--rule', 'web-memory-quota', '--target', 'web.2', '--json']);
    const e = JSON.parse(r.out);
    expect(e.verdict).toBe('grace');
    expect(e.grace.now).toMatchObject({ inGrace: true, spell: `start:${Date.parse(ts)}`, start: Date.parse(ts) });
    expect(e.summary).toMatch(/^a match now is in its grace: web\.2 last started \S+, \d+ s before now; grace after_start 2m; last release 2024-11-14T09:01:00Z, .* \(past after_release 5m\): counted as grace, not toward the threshold$/);
  });

  it('a line that does not match, or a rule without grace, gets no grace verdict', async () => {
    const r = await explain('web-memory-quota', lineAt('09:02:00'));
    expect(graceRow(r.out)).toBe('not judged: the line does not match rule web-memory-quota');
    const plain = await explain('web-memory-plain', lineAt('09:04:10'));
    expect(plain.code).toBe(0);
    expect(plain.out).not.toContain('grace');
  });
});

describe('mallet replay --explain: the grace verdict of the first line of each grace spell', () => {
  it('says why the preboot R14 was grace, in the words explain uses', async () => {
    const r = await mallet(['replay', FIXTURE, '--app', 'acme-shop', '--rules', 'rules.yml', '--explain']);
    expect(r.code).toBe(0);
    const quota = r.out.split('\n').filter((l) => l.includes(' web-memory-quota acme-shop web.1: grace: '));
    expect(quota).toEqual([
      '2024-11-14T09:03:30.000Z web-memory-quota acme-shop web.1: grace: matches within the rule\'s grace after this start are counted, not towards the threshold: '
      + 'first at 2024-11-14T09:04:10.000Z: web.1 last started 2024-11-14T09:03:30Z, 40 s before this line (the line names no instance; taken as instance 4b88c98d…); '
      + 'grace after_start 2m; last release 2024-11-14T09:01:00Z, 3 min 10 s before this line (within after_release 5m too): counted as grace, not toward the threshold',
    ]);
    expect(r.out).toContain('web-memory-quota: at most 1 of 2 within 5m without firing (web.1, at 2024-11-14T09:06:30.000Z); 1 match counted as grace\n');
    // web-memory-plain (no grace) fires on the first R14; web-memory-sampled's six samples are grace.
    expect(r.err).toBe('13 lines (heroku-logs), 1 firing (1 executed, 1 cooldown lines, 7 grace lines); nothing executed\n');
  });
});
