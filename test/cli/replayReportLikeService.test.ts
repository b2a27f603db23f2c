import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Queue } from 'bullmq';
import { ACTION_QUEUE } from '../../src/keys.js';
import { loadConfig } from '../../src/config.js';
import { startService, type Service } from '../../src/server/service.js';
import { REPORT_PATH } from '../../src/server/reportRoute.js';
import type { LeakReport } from '../../src/dynos/report.js';
import { basic, postDrain } from '../support/drainClient.js';
import { REPO } from '../support/malletProcess.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { herokuLogsBody } from '../dynos/events.js';
import { weekOfLogs } from '../dynos/weekOfLogs.js';

/**
 * Issue item 7, end to end: the same generated week of an app's `heroku logs` (a) through the
 * service's drain — real HTTP, real Redis, in logplex bodies, one of them retried as logplex
 * does — and (b) through the built CLI, `mallet replay week.log --app acme-shop --report --json`.
 * The two leak reports are equal, firings of the R14 and the predictive rule included.
 *
 * The service's rules count in arrival time, replay's in line time. A live drain delivers a line
 * within a second or so of its timestamp, so the service's clock is stepped to each body's last
 * line's time before the body is posted. The last test shows the difference when they do not
 * agree: lines delivered long after their time, all at once.
 */
const redis = testRedis();
const prefix = uniquePrefix('replay-report');
const queuePrefix = uniquePrefix('replay-reportq');
const dir = mkdtempSync(join(tmpdir(), 'mallet-replay-report-'));
const PASSWORD = 'drain-secret-week';
const ADMIN = 'admin-secret-week';
const BUILT = join(REPO, 'dist', 'cli', 'main.js');

const RULES = `version: 1
apps:
  acme-shop: {}
  late-shop: {}
rules:
  - name: r14-stop
    match: { source: heroku, process: "*.*", message: '^Error R14 ' }
    threshold: { count: 3, within: 5m }
    cooldown: 2m
    actions: [ { type: redis-stop-key } ]
  - name: worker-predict
    match: { source: heroku, process: "worker.*" }
    predict: { value: "sample#memory_total", reaches: "100% sample#memory_quota", within: 30m, over: 15m, min_samples: 10 }
    cooldown: 1h
    actions: [ { type: redis-stop-key } ]
`;

let now = 0;
let service: Service;
const lines = weekOfLogs();
let retried = 0;

const lineTime = (l: string) => Date.parse(l.slice(0, l.indexOf(' ')));

/** Posts one body as logplex would (frame id, message count, drain token), arriving at `at`. */
async function post(app: string, body: string[], frameId: string, at = lineTime(body[body.length - 1]!)): Promise<number> {
  now = at;
  const res = await postDrain(service.url!, app, herokuLogsBody(body), {
    password: PASSWORD,
    headers: { 'Logplex-Frame-Id': frameId, 'Logplex-Msg-Count': String(body.length), 'Logplex-Drain-Token': `d.${app}`, 'User-Agent': 'Logplex/v123' },
  });
  await res.arrayBuffer();
  return res.status;
}

async function serviceReport(app: string): Promise<LeakReport> {
  const res = await fetch(`${service.url}${REPORT_PATH}?app=${app}&since=7d`, { headers: { authorization: basic(ADMIN, 'admin') } });
  expect(res.status).toBe(200);
  return (await res.json()) as LeakReport;
}

/** The built CLI, as a user runs it (`npx mallet` runs bin/mallet.js, which runs dist/). */
function mallet(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO, 'bin', 'mallet.js'), ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

beforeAll(async () => {
  // The built output is what users run; build it when a source is newer (or there is none).
  const build = spawnSync(process.execPath, [join(REPO, 'scripts', 'build-if-stale.js')], { cwd: REPO, stdio: 'inherit' });
  if (build.status !== 0 || !existsSync(BUILT)) throw new Error('npm run build failed: the CLI test needs dist/');
  writeFileSync(join(dir, 'rules.yml'), RULES);
  writeFileSync(join(dir, 'week.log'), lines.join('\n') + '\n');
  const config = loadConfig({
    REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: queuePrefix, PORT: '0', HOST: '127.0.0.1',
    MALLET_DRAIN_PASSWORD: PASSWORD, MALLET_ADMIN_PASSWORD: ADMIN, MALLET_RULES: join(dir, 'rules.yml'), LOG_LEVEL: 'silent',
  }, dir);
  // No worker: nothing is executed, as in replay; the queue still decides each firing's mode.
  service = await startService({ config, logger: pino({ level: 'silent' }), worker: false, clock: () => now });

  // As a live drain delivers it: a body per minute of log at most (logplex batches what it has),
  // each at its last line's time. The first body with an R14 line is sent twice, as logplex
  // retries a frame whose answer it did not get; the retry must add nothing.
  let body: string[] = [];
  let minute = '';
  let n = 0;
  const send = async () => {
    if (body.length === 0) return;
    const frameId = `F${(n++).toString(16).padStart(8, '0')}`;
    expect(await post('acme-shop', body, frameId)).toBe(204);
    if (retried === 0 && body.some((l) => l.includes('Error R14'))) {
      expect(await post('acme-shop', body, frameId)).toBe(204);
      retried++;
    }
    body = [];
  };
  for (const l of lines) {
    const m = l.slice(0, 16);
    if (m !== minute || body.length >= 100) { await send(); minute = m; }
    body.push(l);
  }
  await send();
}, 1_200_000);

afterAll(async () => {
  await service?.close();
  await cleanupPrefix(redis, prefix, queuePrefix);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe('mallet replay --report agrees with the service fed the same week through its drain', () => {
  it('prints the same leak report, as JSON, as GET /admin/api/report answers', async () => {
    expect(retried).toBe(1);
    const fromService = await serviceReport('acme-shop');
    const r = await mallet(['replay', 'week.log', '--app', 'acme-shop', '--rules', 'rules.yml', '--report', '--json']);
    expect(r.err).toMatch(/^\d+ lines \(heroku-logs\), \d+ firings .*nothing executed\n$/m);
    expect(r.code).toBe(0);
    const replayed = JSON.parse(r.out) as LeakReport;
    // Nothing in the report depends on when it was made (its window ends at the newest data),
    // so the two are equal whole.
    expect(replayed).toEqual(fromService);

    // And it is a report worth comparing: the known slopes, both rules' firings marked.
    const by = Object.fromEntries(fromService.types.map((t) => [t.processType, t]));
    expect(Object.keys(by)).toEqual(['clock', 'web', 'worker']);
    expect(Math.abs(by.worker!.growthMbPerHour!.median - 60) / 60).toBeLessThan(0.05);
    expect(Math.abs(by.web!.growthMbPerHour!.median - 20) / 20).toBeLessThan(0.05);
    expect(Object.keys(by.worker!.remediationsPerDay).sort()).toEqual(['r14-stop/redis-stop-key', 'worker-predict/redis-stop-key']);
    // A worker life is ~13.7 h: the week has ~12, each predicted once and stopped on R14 once.
    const marks = by.worker!.marks.map((m) => m[2]);
    expect(marks.filter((m) => m.startsWith('worker-predict/')).length).toBeGreaterThanOrEqual(11);
    expect(marks.filter((m) => m.startsWith('r14-stop/')).length).toBeGreaterThanOrEqual(11);
    expect(fromService.releases).toBe(1);
    expect(fromService.days).toBeCloseTo(7, 1);
    expect(by.clock!.cyclingPerDay).toBeGreaterThan(0.8);

    // The text report is the same report, rendered.
    const text = await mallet(['replay', 'week.log', '--app', 'acme-shop', '--rules', 'rules.yml', '--report']);
    expect(text.code).toBe(0);
    for (const t of fromService.types) expect(text.out).toContain(t.sentence);
  });

  it('replay judges in line time, the service in arrival time: a backlog delivered at once tells them apart', async () => {
    // Three R14 lines three minutes apart: never three within 5 minutes by their own timestamps.
    const t0 = Date.parse('2024-11-20T10:00:00Z');
    const r14 = (dyno: string) => [0, 3, 6].map((m) => `${new Date(t0 + m * 60_000).toISOString().replace('Z', '417+00:00')} heroku[${dyno}]: Error R14 (Memory quota exceeded)`);
    writeFileSync(join(dir, 'late.log'), [...r14('web.1'), ...r14('web.2')].sort().join('\n') + '\n');
    // Replay counts by the timestamps: neither dyno fires.
    const replay = await mallet(['replay', 'late.log', '--app', 'late-shop', '--rules', 'rules.yml', '--explain']);
    expect(replay.code).toBe(0);
    expect(replay.out).toMatch(/^r14-stop: at most 2 of 3 within 5m without firing \(web\.[12], at /m);
    expect(replay.err).toContain('6 lines (heroku-logs), 0 firings; nothing executed');

    // The service, live: web.1's lines each arrive at their time, and it agrees (no firing).
    for (const [i, l] of r14('web.1').entries()) expect(await post('late-shop', [l], `LIVE${i}`)).toBe(204);
    // web.2's lines held back and delivered together (logplex's buffer after an outage): counted
    // at their arrival, three within 5 minutes, and the service fires where replay did not.
    const backlog = r14('web.2');
    expect(await post('late-shop', backlog, 'BACKLOG', t0 + 60 * 60_000)).toBe(204);
    const queue = new Queue(ACTION_QUEUE, { connection: redis, prefix: queuePrefix });
    try {
      const jobs = (await queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed', 'prioritized'])).filter((j) => j.data.app === 'late-shop');
      expect(jobs.map((j) => `${j.data.rule} ${j.data.target} ${j.data.triggerLines.length}`)).toEqual(['r14-stop web.2 3']);
    } finally {
      await queue.close();
    }
  });
});
