import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadRulesText } from '../../src/rules/load.js';
import { RulesEngine } from '../../src/rules/engine.js';
import { DryEvaluator } from '../../src/rules/dryRun.js';
import { Pipeline } from '../../src/server/pipeline.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { RedisLifeStore } from '../../src/dynos/lifeScript.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import type { Firing, FiringSink, StopKeyActionSpec } from '../../src/rules/Firing.js';
import { readHistory } from '../../src/console/history.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { eventsOf, herokuLogsBody, memoryLine, UUID_A, UUID_B } from '../dynos/events.js';

/** grace and a restart's fresh window: the service (Redis, one body a delivery) and mallet test/replay (memory) alike. */
const redis = testRedis();
const prefixes: string[] = [];
afterAll(async () => { await cleanupPrefix(redis, ...prefixes); redis.disconnect(); });

const RULES = `version: 1
rules:
  - name: boot
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    threshold: { count: 2, within: 10m }
    grace: { after_start: 2m, after_release: 5m }
    actions: [ { type: redis-stop-key } ]
  - name: restart
    match: { source: heroku, process: "worker.*", message: '^Error R14 ' }
    threshold: { count: 3, within: 10m }
    actions: [ { type: redis-stop-key } ]
`;
const loaded = loadRulesText(RULES, 'rules.yml', {});
if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
const ruleSet = loaded.ruleSet;

const T0 = Date.parse('2024-11-14T09:00:00Z');
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const r14 = (s: number, dyno = 'web.1') => `${iso(s)} heroku[${dyno}]: Error R14 (Memory quota exceeded)`;
const start = (s: number, dyno = 'web.1') => `${iso(s)} heroku[${dyno}]: Starting process with command \`bundle exec puma\``;

type Seen = { fired: string[]; graces: number };
const show = (f: Firing) => `${(f.firedAt - T0) / 1000}s ${f.rule} ${f.target}${(f.actions[0] as StopKeyActionSpec).instance ? ` instance=${(f.actions[0] as StopKeyActionSpec).instance}` : ''}`;

/** Bodies through the service's pipeline on real Redis, the engine's clock the lines' own. */
async function service(bodies: string[][]): Promise<Seen & { prefix: string }> {
  const prefix = uniquePrefix('grace');
  prefixes.push(prefix);
  const keys = redisKeys(prefix);
  const logger = pino({ level: 'silent' });
  const metrics = createMetrics(undefined, { defaults: false });
  const life = new RedisLifeStore(redis, keys);
  const engine = new RulesEngine({ redis, keys, metrics, logger, getRuleSet: () => ruleSet, life, clock: (e) => Date.parse(e.timestamp) });
  const fired: Firing[] = [];
  const sink: FiringSink = { async submit(f) { fired.push(...f); return f.map(() => 'enqueued' as const); } };
  const pipeline = new Pipeline({ redis, keys, engine, sink, observers: [new DynoObserver(new RedisDynoStore(redis, keys), undefined, life)], metrics, logger });
  let n = 0;
  for (const b of bodies) {
    await pipeline.ingest({ app: 'acme-shop', drainToken: 'd.1', frameId: `F${n++}`, dedupe: true, receivedAt: T0, messages: parseLogplexBody(herokuLogsBody(b)).messages });
  }
  const graces = (await metrics.firingsTotal.get()).values.filter((v) => v.labels.outcome === 'grace').reduce((a, v) => a + v.value, 0);
  return { fired: fired.map(show), graces, prefix };
}

/** The same lines through the dry evaluator, cut into batches as given. */
async function dry(batches: string[][]): Promise<Seen> {
  const d = new DryEvaluator(ruleSet);
  const fired: string[] = [];
  let graces = 0;
  for (const [i, b] of batches.entries()) {
    // eventsOf gives every batch the same frame: ids made distinct, as a drain's frames are.
    const events = eventsOf(b).map((e) => Object.create(e, { receivedAt: { value: Date.parse(e.timestamp) }, id: { value: `${i}:${e.id}` } }));
    const ev = await d.evaluate(events);
    fired.push(...ev.firings.map(show));
    graces += ev.graces.length;
  }
  return { fired, graces };
}

async function allAgree(bodies: string[][]): Promise<Seen & { prefix: string }> {
  const svc = await service(bodies);
  expect(await dry(bodies)).toEqual({ fired: svc.fired, graces: svc.graces });
  // One line a batch, as `mallet test` feeds them: the body boundaries do not matter.
  expect(await dry(bodies.flat().map((l) => [l]))).toEqual({ fired: svc.fired, graces: svc.graces });
  return svc;
}

describe('grace', () => {
  it('a start line and R14s in the same body are inside the grace; after it they count', async () => {
    const svc = await allAgree([[start(0), r14(10), r14(20)], [r14(180)], [r14(190)]]);
    expect(svc.graces).toBe(2);
    expect(svc.fired).toEqual(['190s boot web.1']);
    // The history keeps one grace record for the spell, counting both lines.
    const page = await readHistory(redis, redisKeys(svc.prefix), { app: 'acme-shop', outcomes: ['grace'], limit: 10 });
    expect(page.records.map((r) => [r.outcome, r.rule, r.target, r.count])).toEqual([['grace', 'boot', 'web.1', 2]]);
  });

  it('after a release every dyno of the app is in grace for after_release', async () => {
    const svc = await allAgree([[`${iso(0)} app[api]: Release v143 created by user ops@acme-shop.example`, r14(60, 'web.2')], [r14(120, 'web.2'), r14(290, 'web.2')], [r14(310, 'web.2'), r14(320, 'web.2')]]);
    expect(svc.graces).toBe(3);
    expect(svc.fired).toEqual(['320s boot web.2']);
  });

  it('a memory sample of a new instance is a start too; an old instance\'s sample is not in the new one\'s grace', async () => {
    // Preboot: A runs, B boots. R14 (no uuid) is in the grace of web.1's newest start.
    const svc = await allAgree([[memoryLine(T0, 'web.1', UUID_A, 480), memoryLine(T0 + 200_000, 'web.1', UUID_A, 490)], [memoryLine(T0 + 230_000, 'web.1', UUID_B, 120), r14(240)], [memoryLine(T0 + 250_000, 'web.1', UUID_A, 500), r14(400)], [r14(410)]]);
    expect(svc.graces).toBe(1);
    // A stopped sampling at 250 s, B at 230 s: at 400 s neither is running, so the stop is by name.
    expect(svc.fired).toEqual(['410s boot web.1']);
  });
});

describe('a restart starts the threshold window afresh', () => {
  it('R14s of the previous instance no longer count once the dyno restarted', async () => {
    const svc = await allAgree([[r14(0, 'worker.1'), r14(60, 'worker.1')], [start(120, 'worker.1'), r14(180, 'worker.1')], [r14(240, 'worker.1')], [r14(300, 'worker.1')]]);
    // Without the restart the third R14 (180 s) would have fired.
    expect(svc.fired).toEqual(['300s restart worker.1']);
  });

  it('without a restart the window counts on', async () => {
    const svc = await allAgree([[r14(0, 'worker.1'), r14(60, 'worker.1')], [r14(180, 'worker.1')]]);
    expect(svc.fired).toEqual(['180s restart worker.1']);
  });

  it('an R14 names the one running instance, in Redis as in memory', async () => {
    const samples = [0, 20, 40, 60].map((s) => memoryLine(T0 + s * 1000, 'worker.1', UUID_B, 500));
    const svc = await allAgree([samples, [r14(30, 'worker.1'), r14(50, 'worker.1'), r14(70, 'worker.1')]]);
    expect(svc.fired).toEqual([`70s restart worker.1 instance=${UUID_B}`]);
  });
});
