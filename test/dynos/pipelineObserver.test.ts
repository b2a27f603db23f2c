import { afterAll, describe, expect, it } from 'vitest';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import type { Firing, FiringSink } from '../../src/rules/Firing.js';
import { DynoObserver, type DynoCounts } from '../../src/dynos/DynoObserver.js';
import { RedisDynoStore } from '../../src/dynos/dynoScript.js';
import { compiledRules, realPipeline } from '../support/realPipeline.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';
import { herokuLogsBody, memoryLine, UUID_A, UUID_B } from './events.js';

/** The observer stage in the real pipeline on real Redis: preboot overlap, retries, failures. */
const redis = testRedis();
const prefix = uniquePrefix('dynpipe');
afterAll(async () => { await cleanupPrefix(redis, prefix); redis.disconnect(); });

const ruleSet = compiledRules(`version: 1
rules:
  - name: r14
    match: { source: heroku, process: "web.*", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
`);

function setup(sink: FiringSink) {
  let store!: RedisDynoStore;
  const counted: DynoCounts[] = [];
  const { pipeline } = realPipeline({
    redis, prefix, ruleSet, sink,
    observers: (keys) => { store = new RedisDynoStore(redis, keys); return [new DynoObserver(store, (_app, c) => counted.push(c))]; },
  });
  return { pipeline, store, counted };
}

const T0 = Date.parse('2024-11-14T09:00:00Z');
const min = 60_000;
const iso = (t: number) => new Date(t).toISOString();

/** A deploy with preboot: the old web.1 (A) keeps reporting while the new web.1 (B) boots. */
const prebootLines = [
  memoryLine(T0, 'web.1', UUID_A, 480),
  `${iso(T0 + 1 * min)} app[api]: Release v143 created by user ops@acme-shop.example`,
  `${iso(T0 + 2 * min)} heroku[web.1]: Starting process with command \`bundle exec puma -C config/puma.rb\``,
  memoryLine(T0 + 3 * min, 'web.1', UUID_B, 120),
  memoryLine(T0 + 3 * min + 20_000, 'web.1', UUID_A, 490),
  `${iso(T0 + 3 * min + 30_000)} heroku[web.1]: State changed from starting to up`,
  memoryLine(T0 + 4 * min, 'web.1', UUID_B, 125),
  `${iso(T0 + 4 * min + 10_000)} heroku[web.1]: Error R14 (Memory quota exceeded)`,
  memoryLine(T0 + 5 * min, 'web.1', UUID_A, 500),
];

const batchOf = (app: string, frameId: string, body: Buffer) => ({ app, drainToken: 'd.1', frameId, dedupe: true, receivedAt: T0 + 6 * min, messages: parseLogplexBody(body).messages });
const okSink: FiringSink = { async submit(f: readonly Firing[]) { return f.map(() => 'enqueued' as const); } };

describe('the dyno observer in the pipeline', () => {
  it('keeps two instances of web.1 apart during a preboot overlap, with the lifecycle around them', async () => {
    const { pipeline, store, counted } = setup(okSink);
    await pipeline.ingest(batchOf('preboot-app', 'F1', herokuLogsBody(prebootLines)));
    const snap = await store.read('preboot-app');
    expect(snap.instances.map((i) => [i.dyno, i.instance, i.points.map((p) => p[1])])).toEqual([
      ['web.1', UUID_A, [480, 490, 500]],
      ['web.1', UUID_B, [120, 125]],
    ]);
    expect(snap.instances[0]!.limitMb).toBe(512);
    expect(snap.events.map((e) => `${e.kind} ${e.dyno} ${e.detail}`)).toEqual([
      'release  v143', 'start web.1 ', 'up web.1 ', 'remediation web.1 r14/redis-stop-key',
    ]);
    expect(counted).toEqual([{ samples: 5, events: 4 }]);
  });

  it('a retried frame adds nothing, and a failed delivery adds nothing beyond its retry', async () => {
    let fail = true;
    const sink: FiringSink = { async submit(f) { if (fail) { fail = false; throw new Error('queue away'); } return f.map(() => 'enqueued' as const); } };
    const { pipeline, store, counted } = setup(sink);
    const body = herokuLogsBody(prebootLines);
    // The firing cannot be stored: the observers write nothing, the drain answers 503.
    await expect(pipeline.ingest(batchOf('retry-app', 'F2', body))).rejects.toThrow(/queue away/);
    expect((await store.read('retry-app')).instances).toEqual([]);
    await pipeline.ingest(batchOf('retry-app', 'F2', body));
    const once = await store.read('retry-app');
    // The same frame again (logplex retry) and the same lines in another frame (a replica's
    // late duplicate past the done-marker): the state does not change.
    expect((await pipeline.ingest(batchOf('retry-app', 'F2', body))).duplicate).toBe(true);
    await pipeline.ingest(batchOf('retry-app', 'F3', body));
    expect(await store.read('retry-app')).toEqual(once);
    expect(once.instances.flatMap((i) => i.points).length).toBe(5);
    expect(counted.length).toBe(2);
  });
});
