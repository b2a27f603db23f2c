import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { startRealDrain, type RealDrain } from '../support/realDrain.js';
import { WORK_BOUNDS } from '../../src/rules/defaults.js';

/**
 * Issue #8 item 2: a 1 MiB body of R14 lines, each for a distinct web.N, made one threshold
 * script per line (400 000 Redis keys, 503 after 4-7 s). The work of a body is bounded now, a
 * real storm in the same body still fires, and what is cut is counted and logged.
 * Real HTTP with the 4 s store deadline, the real rules engine on real Redis.
 */
const PASSWORD = 'drain-secret-123';
const FAN_OUT = 10_000;
const STORM_DYNOS = ['web.1', 'web.2', 'web.3'];
let drain: RealDrain;
beforeAll(async () => {
  drain = await startRealDrain({
    password: PASSWORD,
    rules: `version: 1
rules:
  - name: r14
    match: { process: "web.*", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
`,
  });
});
afterAll(async () => { await drain.close(); });

async function keyCount(prefix: string): Promise<number> {
  let n = 0;
  let cursor = '0';
  do {
    const [next, keys] = await drain.redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    n += keys.length;
  } while (cursor !== '0');
  return n;
}

const dropped = async () => Object.fromEntries((await drain.metrics.votesDroppedTotal.get()).values.map((v) => [String(v.labels.reason), v.value]));

describe('one body can do unbounded work', () => {
  it('a 1 MiB body fanned out over 10 000 dynos is answered 204, leaves bounded keys, and its storm over 3 dynos still fires', async () => {
    const r14 = 'Error R14 (Memory quota exceeded)';
    // The fan-out first, the storm last: the worst order for the storm.
    const lines = Array.from({ length: FAN_OUT }, (_x, i) => drainLine('heroku', `web.${1000 + i}`, r14));
    for (const dyno of STORM_DYNOS) for (let i = 0; i < 40; i++) lines.push(drainLine('heroku', dyno, r14));
    const body = frame(...lines);
    expect(body.length).toBeLessThanOrEqual(1024 * 1024);

    const res = await postDrain(drain.url, 'fan-app', body, { password: PASSWORD, headers: { 'Logplex-Frame-Id': 'FANOUT1' } });
    expect(res.status).toBe(204);

    // The storm fired; of the fan-out, only what the bounds let through.
    const fired = drain.submitted.map((f) => f.target);
    for (const dyno of STORM_DYNOS) expect(fired).toContain(dyno);
    expect(fired).toHaveLength(WORK_BOUNDS.maxTargetsPerApp);
    // Bounded keys: a firing keeps two (firedBy, cooldown) per admitted target, plus the app's
    // target budget and the drain's recent frames, and the console's per-app keys (the history
    // stream, one or two stats buckets, the list of apps with a history).
    expect(await keyCount(drain.prefix)).toBeLessThanOrEqual(2 * WORK_BOUNDS.maxTargetsPerApp + 2 + 4);

    // What was cut is counted: the vote cap, then the app's budget of distinct targets.
    const votesCast = WORK_BOUNDS.maxVotesPerBody;
    expect(await dropped()).toEqual({
      'votes-per-body': FAN_OUT + STORM_DYNOS.length - votesCast,
      'targets-per-app': votesCast - WORK_BOUNDS.maxTargetsPerApp,
    });
    // ... and visible in the log, once per reason and app.
    const warnings = drain.logs.filter((l) => String(l.msg).startsWith('matched lines not judged'));
    expect(warnings.map((w) => w.reason).sort()).toEqual(['votes-dropped-targets-per-app', 'votes-dropped-votes-per-body']);
    expect(warnings.every((w) => w.app === 'fan-app')).toBe(true);
  });

  it("another app's drain is not held back by that app's budget", async () => {
    const before = drain.submitted.length;
    const body = frame(drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)'));
    expect((await postDrain(drain.url, 'calm-app', body, { password: PASSWORD, headers: { 'Logplex-Frame-Id': 'CALM1' } })).status).toBe(204);
    expect(drain.submitted.slice(before).map((f) => `${f.app}/${f.target}`)).toEqual(['calm-app/web.1']);
  });

  it('a retry of the fanned-out body is skipped, and a dyno already in play is not refused by the budget', async () => {
    const before = drain.submitted.length;
    const droppedBefore = await dropped();
    // Logplex retries the big body: skipped whole, nothing judged or counted again.
    const r14 = 'Error R14 (Memory quota exceeded)';
    const big = frame(...Array.from({ length: FAN_OUT }, (_x, i) => drainLine('heroku', `web.${1000 + i}`, r14)));
    expect((await postDrain(drain.url, 'fan-app', big, { password: PASSWORD, headers: { 'Logplex-Frame-Id': 'FANOUT1' } })).status).toBe(204);
    expect(await dropped()).toEqual(droppedBefore);
    const body = frame(drainLine('heroku', 'web.1', r14));
    // In cooldown: counted, not fired, and not refused by the budget (web.1 is in play).
    expect((await postDrain(drain.url, 'fan-app', body, { password: PASSWORD, headers: { 'Logplex-Frame-Id': 'FANOUT2' } })).status).toBe(204);
    expect(drain.submitted.length).toBe(before);
    expect((await dropped())['targets-per-app']).toBe(WORK_BOUNDS.maxVotesPerBody - WORK_BOUNDS.maxTargetsPerApp);
  });
});
