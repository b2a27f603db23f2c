import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { ActionQueue } from '../../src/actions/queue.js';
import { BodyAdmission } from '../../src/actions/bodyAdmission.js';
import { createMetrics } from '../../src/metrics.js';
import type { Limits } from '../../src/rules/RuleSet.js';
import type { Silence } from '../../src/console/Silence.js';
import type { FiringOutcome, FiringSink } from '../../src/rules/Firing.js';
import { truncateUtf8 } from '../../src/truncateUtf8.js';
import { HISTORY_BOUNDS } from '../../src/console/historyLua.js';
import { hashTag, redisKeys } from '../../src/keys.js';
import { compiledRules, realPipeline } from '../support/realPipeline.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { drainLine, frame } from '../support/drainClient.js';

/**
 * A drain body's firings admitted in its body script (src/actions/bodyAdmission.ts) decide and
 * record exactly what the action queue's own admission call does: the same bodies through a
 * pipeline whose sink admits in the script and one whose sink cannot (so the queue admits each
 * firing after the script, as before) leave the same modes, outcomes, history records, stats,
 * storm guard and flapping sets and admission keys. The bodies cover each mode (execute,
 * flapping, held, silenced, dry_run), a first trigger line cut inside a UTF-8 sequence, a predict
 * rule's firing (admitted by the queue in both) and a retried body whose store failed after its
 * admission (another window's firing then, by its new arrival time: admitted by the queue, a
 * `duplicate` record).
 */
const admin = testRedis();
const run = uniquePrefix('badm');
const logger = pino({ level: 'silent' });
const closers: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
  await cleanupPrefix(admin, `${run}-f`, `${run}-s`, `${run}-t`, `${run}-o`, `${run}-q`);
  admin.disconnect();
});

const RULES = compiledRules(`version: 1
rules:
  - name: pair
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    threshold: { count: 2, within: 5m }
    cooldown: 2s
    actions: [ { type: redis-stop-key } ]
  - name: trial
    match: { source: heroku, process: "worker.*", message: '^Error R14 ' }
    cooldown: 2s
    dry_run: true
    actions: [ { type: redis-stop-key } ]
  - name: leak
    match: { process: "web.6" }
    predict: { value: "sample#memory_total", reaches: "100% sample#memory_quota", within: 30m, over: 15m, min_samples: 3 }
    cooldown: 2s
    actions: [ { type: redis-stop-key } ]
`);
const LIMITS: Limits = { perApp: { maxFirings: 3, withinMs: 600_000 }, perProcessType: { concurrency: 10 }, flapping: { maxFirings: 1, withinMs: 3_600_000 } };
const APP = 'adm-app';
const BASE = 1_800_000_000_000;

async function variant(name: 'f' | 's' | 't' | 'o' | 'q', folded: boolean, limits: Limits = LIMITS) {
  const prefix = `${run}-${name}`;
  const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  await new Promise((r) => redis.once('ready', r));
  let now = BASE;
  const silence: Silence = { id: 's1', app: APP, target: 'web.3', startsAt: 0, endsAt: BASE * 2, comment: 'deploying' };
  let queue!: ActionQueue;
  const outcomes: FiringOutcome[] = [];
  let failNext = false;
  let inScript = 0;
  const submit: FiringSink['submit'] = async (f, a) => {
    if (a instanceof BodyAdmission) inScript += f.filter((x) => a.decision(x.id) !== undefined).length;
    const got = await queue.submit(f, a);
    outcomes.push(...got);
    // Stored, then the reply lost: the drain answers 503 and logplex sends the body again.
    if (failNext) { failNext = false; throw new Error('reply lost'); }
    return got;
  };
  const sink: FiringSink = folded
    ? { submit, admission: () => queue.admission() }
    : { submit };
  const built = realPipeline({ redis, prefix, ruleSet: RULES, sink, observers: (keys) => {
    queue = new ActionQueue({
      connection: redis, queuePrefix: `${prefix}-bull`, keys, metrics: createMetrics(undefined, { defaults: false }), logger, dryRun: false,
      getLimits: () => limits, getSilences: async () => [silence], silencesInMemory: () => [silence], clock: () => now,
    });
    return [];
  } });
  closers.push(async () => { await queue.close(); redis.disconnect(); });
  const ingest = (frameId: string, at: number, ...lines: string[]) => {
    now = at;
    return built.pipeline.ingest({ app: APP, drainToken: 'd.1', frameId, dedupe: true, receivedAt: at, messages: parseLogplexBody(frame(...lines)).messages });
  };
  return { prefix, queue, outcomes, ingest, failNext: () => { failNext = true; }, inScript: () => inScript };
}

const TS = new Date(BASE).toISOString().replace('Z', '+00:00');
const r14 = (dyno: string, tail = '') => drainLine('heroku', dyno, `Error R14 (Memory quota exceeded)${tail}`, TS);
const sample = (dyno: string, mb: number, minute: number) =>
  drainLine('heroku', dyno, `source=${dyno} dyno=heroku.54241834.0ad3ad41-1c6b-4d5b-9f43-4bd1d0c3e0a1 sample#memory_total=${mb.toFixed(2)}MB sample#memory_rss=${mb.toFixed(2)}MB sample#memory_quota=512.00MB`, new Date(BASE + minute * 60_000).toISOString().replace('Z', '+00:00'));
// Past the record's bound, cut inside a 3-byte sequence (the line's 80 bytes before it).
const LONG = '  ' + '€'.repeat(400);

async function drive(v: Awaited<ReturnType<typeof variant>>) {
  let t = BASE;
  const step = () => (t += 3_000);
  // web.1 fires (execute), then again (flapping); web.2 fires with a long first line (execute,
  // the app's third counted; the window's first line is the body's last, linesAfter 0); web.3 is silenced; worker.1 a dry run; web.4 is held.
  await v.ingest('F1', step(), r14('web.1'), r14('web.1'));
  await v.ingest('F2', step(), r14('web.1'), r14('web.1'));
  await v.ingest('F3', step(), r14('web.2'), r14('web.2', LONG));
  await v.ingest('F4', step(), r14('web.3'), r14('web.3'));
  await v.ingest('F5', step(), r14('worker.1'));
  await v.ingest('F6', step(), r14('web.4'), r14('web.4'));
  // A predict rule's firing: its forecast is made after the script, so the queue admits it.
  await v.ingest('F7', step(), sample('web.6', 100, 0), sample('web.6', 200, 5), sample('web.6', 300, 10), sample('web.6', 400, 15));
  // Stored, its reply lost, sent again (a later arrival): the same firing, a duplicate.
  v.failNext();
  await expect(v.ingest('F8', step(), r14('web.5'), r14('web.5'))).rejects.toThrow('reply lost');
  expect((await v.ingest('F8', step(), r14('web.5'), r14('web.5'))).duplicate).toBe(false);
  // Done: a retry now is skipped whole.
  expect((await v.ingest('F8', step(), r14('web.5'), r14('web.5'))).duplicate).toBe(true);
}

/** Every key of the prefix with its content; stream ids (times of the run) and submission ids left out. */
async function dump(prefix: string): Promise<Record<string, unknown>> {
  const keys = (await admin.keys(`${prefix}:*`)).sort();
  const ids = /\d{13}-\d+/g;
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const name = key.slice(prefix.length);
    const type = await admin.type(key);
    if (type === 'string') out[name] = name.startsWith(':admit:') ? (await admin.get(key))!.split('|')[0] : (await admin.getBuffer(key))!.toString('hex');
    else if (type === 'hash') out[name] = Object.entries(await admin.hgetall(key)).map(([k, x]) => `${k.replace(ids, 'ID')}=${x.replace(ids, 'ID')}`).sort();
    else if (type === 'zset') out[name] = await admin.zrange(key, '0', '-1', 'WITHSCORES');
    else if (type === 'stream') out[name] = (await admin.xrange(key, '-', '+')).map(([, fields]) => fields);
    else out[name] = type;
  }
  return out;
}

describe('firings admitted in the body script', () => {
  it('decide and record what the queue\'s own admission does', async () => {
    const folded = await variant('f', true);
    const separate = await variant('s', false);
    await drive(folded);
    await drive(separate);
    // F1–F6 and F8's first delivery; not the predict rule's, nor F8's retry (another window).
    expect(folded.inScript()).toBe(7);
    expect(separate.inScript()).toBe(0);
    expect(folded.outcomes).toEqual(separate.outcomes);
    expect(folded.outcomes).toEqual(['enqueued', 'flapping', 'enqueued', 'silenced', 'dry_run', 'held', 'held', 'held', 'duplicate']);
    const jobs = async (q: ActionQueue) => (await q.queue.getJobs(['waiting', 'delayed'])).map((j) => `${j.id} ${j.data.mode} ${j.data.modeReason ?? ''}`).sort();
    expect(await jobs(folded.queue)).toEqual(await jobs(separate.queue));
    const f = await dump(folded.prefix);
    const s = await dump(separate.prefix);
    expect(f).toEqual(s);
    // What is compared: each mode's record, the duplicate, the first line cut as truncateUtf8 cuts it.
    const history = Object.entries(f).find(([k]) => k.startsWith(':history:'))![1] as string[][];
    const field = (fields: string[], name: string) => fields[fields.indexOf(name) + 1];
    expect(history.map((x) => `${field(x, 'kind')} ${field(x, 'target')}`)).toEqual([
      'enqueued web.1', 'flapping web.1', 'enqueued web.2', 'silenced web.3', 'dry_run worker.1', 'held web.4', 'cooldown web.6', 'held web.6', 'held web.5', 'duplicate web.5',
    ]);
    const cut = truncateUtf8(`${TS} heroku[web.2]: Error R14 (Memory quota exceeded)${LONG}`, HISTORY_BOUNDS.lineBytes);
    expect(cut.endsWith('€\uFFFD')).toBe(true);
    expect(field(history[2]!, 'line')).toBe(cut);
  }, 60_000);

  it('cut the first trigger line as truncateUtf8 does, whatever sequence the bound falls in', async () => {
    const v = await variant('t', true);
    const lines: string[] = [];
    let t = BASE;
    // 1-, 2-, 3- and 4-byte characters, the bound falling at each offset within them.
    for (const [i, ch] of ['a', 'é', '€', '😀'].entries()) {
      for (let pad = 0; pad < 4; pad++) {
        const tail = ' '.repeat(pad + 1) + ch.repeat(Math.ceil(1100 / Buffer.byteLength(ch)));
        const dyno = `worker.${i * 4 + pad + 1}`;
        lines.push(`${TS} heroku[${dyno}]: Error R14 (Memory quota exceeded)${tail}`);
        await v.ingest(`C${i}-${pad}`, (t += 3_000), r14(dyno, tail));
      }
    }
    expect(v.inScript()).toBe(16);
    const f = await dump(v.prefix);
    const history = Object.entries(f).find(([k]) => k.startsWith(':history:'))![1] as string[][];
    const recorded = history.map((fields) => fields[fields.indexOf('line') + 1]);
    expect(recorded).toEqual(lines.map((l) => truncateUtf8(l, HISTORY_BOUNDS.lineBytes)));
    expect(recorded.filter((l) => l!.endsWith('\uFFFD')).length).toBeGreaterThan(4);
  });

  it('admit a body\'s firings in the order they fired, not the order their targets first appear', async () => {
    // One firing left for the app: the queue gives it to web.1, whose second line comes first.
    const one: Limits = { ...LIMITS, perApp: { maxFirings: 1, withinMs: 600_000 } };
    const folded = await variant('o', true, one);
    const separate = await variant('q', false, one);
    for (const v of [folded, separate]) await v.ingest('O1', BASE + 3_000, r14('web.2'), r14('web.1'), r14('web.1'), r14('web.2'));
    expect(folded.inScript()).toBe(2);
    expect(folded.outcomes).toEqual(separate.outcomes);
    const targets = async (prefix: string) => {
      const history = Object.entries(await dump(prefix)).find(([k]) => k.startsWith(':history:'))![1] as string[][];
      return history.map((x) => `${x[x.indexOf('kind') + 1]} ${x[x.indexOf('target') + 1]}`);
    };
    expect(await targets(folded.prefix)).toEqual(['enqueued web.1', 'held web.2']);
    expect(await targets(separate.prefix)).toEqual(['enqueued web.1', 'held web.2']);
  });

  it('names only keys of the app\'s hash slot, as the body\'s own (Redis Cluster)', () => {
    const keys = redisKeys('mallet');
    const a = new BodyAdmission({ keys, limits: LIMITS, globalDryRun: false, silences: [], now: BASE });
    for (const target of ['web.1', 'web-12a34b56d-e78f9', 'a key:with/odd*chars']) {
      const { part } = a.part({ rule: 'pair', app: 'some app!', target, window: BASE, dryRun: false });
      expect(part.keys).toHaveLength(7);
      for (const k of part.keys) expect(hashTag(k)).toBe(hashTag(keys.appTargets('some app!')));
    }
  });
});
