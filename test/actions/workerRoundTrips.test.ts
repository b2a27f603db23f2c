import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createHarness, makeFiring, settled, type Harness } from './harness.js';
import type { ResolvedAction } from '../../src/rules/Firing.js';

/**
 * A fresh job taken by the worker, up to its stop key: on the connection that writes the key,
 * the step ledger read, the job's lock check, the rolling slot, the SET and its wake PUBLISH are
 * one script call (claimStopKey), one round trip. Before: the first three went out together,
 * then the SET with its PUBLISH (two round trips); before that, the lock check was a third.
 * From the line: the body script, which admits the firing too, then the job's add
 * (test/server/bodyRoundTripsFiring.test.ts), the worker's pickup, and this one: 4 round trips
 * from line to key (5 while the admission was a round trip of its own).
 */
let h: Harness;
const send = Redis.prototype.sendCommand;
/** Per connection: the waves of commands (a wave starts with a send while none is in flight). */
const waves = new Map<Redis, string[][]>();
const inFlight = new Map<Redis, number>();
let recording = false;
let stopKey = '';
beforeAll(() => {
  Redis.prototype.sendCommand = function (this: Redis, command: Parameters<Redis['sendCommand']>[0], ...rest: unknown[]) {
    const r = (send as (...a: unknown[]) => unknown).call(this, command, ...rest);
    if (recording) {
      const mine = waves.get(this) ?? [];
      waves.set(this, mine);
      if ((inFlight.get(this) ?? 0) === 0) mine.push([]);
      // A script call that names the probe's stop key is the one that writes it.
      const writes = command.name === 'evalsha' && command.args.some((a) => String(a) === stopKey);
      mine.at(-1)!.push(writes ? 'evalsha:key' : command.name);
      inFlight.set(this, (inFlight.get(this) ?? 0) + 1);
      const settle = () => { inFlight.set(this, inFlight.get(this)! - 1); };
      command.promise.then(settle, settle);
    }
    return r;
  } as Redis['sendCommand'];
});
afterAll(async () => {
  Redis.prototype.sendCommand = send;
  await h.close();
});

describe('the worker, from a job taken to its stop key', () => {
  it('one round trip on the connection that writes the key', async () => {
    h = createHarness('worker-trips');
    const queue = h.queue();
    h.worker();
    // Warm: scripts loaded on every connection.
    const warm = makeFiring({ target: 'web.9', actions: [h.stopAction('web.9')] });
    await queue.submit([warm]);
    expect((await settled(queue, warm.id, 20_000)).state).toBe('completed');

    // web.42: a dyno the stand-in consumer does not take from (test/support/stopKeyConsumer.ts),
    // so the key is still there to read; its GETDEL's reply could reach the test before its
    // `taken` entry did.
    stopKey = h.stopKey('web.42');
    const unwatched: ResolvedAction = { type: 'redis-stop-key', key: stopKey, value: '1', ttlMs: 60_000, watch: false };
    const firing = makeFiring({ target: 'web.42', actions: [unwatched] });
    recording = true;
    await queue.submit([firing]);
    expect((await settled(queue, firing.id, 20_000)).state).toBe('completed');
    recording = false;
    expect(await h.redis.get(stopKey)).toBe('1');
    const writer = [...waves.entries()].find(([, w]) => w.some((wave) => wave.includes('evalsha:key')));
    expect(writer).toBeDefined();
    const trips = writer![1];
    const upToKey = trips.slice(0, trips.findIndex((wave) => wave.includes('evalsha:key')) + 1);
    expect(upToKey).toEqual([['evalsha:key']]);
    // Nothing else writes the key: no SET of its own.
    expect(trips.flat()).not.toContain('set');
  }, 40_000);
});
