import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { BODY_LUA } from '../../src/server/bodyScript.js';
import { HISTORY_LUA } from '../../src/console/historyLua.js';
import { ADMIT_FIRING_BODY_LUA } from '../../src/actions/scripts/admitFiring.js';
import { cleanupPrefix, testRedis, uniquePrefix } from '../support/redis.js';

/**
 * The body script keeps a per-call copy of the history's spell hashes (its votes read one open
 * record again and again). Every path that changes a spell field must keep that copy in step: an
 * admission that ends another kind's run deletes its field, and a later admission in the same call
 * must not fold into the run that was ended. Three admissions of one rule+target in one call, run
 * through the body script's own admit part and through the standalone history functions, must
 * leave the same history.
 */
let redis: Redis;
const prefixes: string[] = [];
beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await cleanupPrefix(redis, ...prefixes);
  await redis.quit();
});

// The body script up to its part loop: the history overrides (the copy) and admitFiringPart.
const bodyHead = BODY_LUA.slice(0, BODY_LUA.indexOf('local UNFIRED'));
const standaloneHead = `${HISTORY_LUA}\nlocal function admitFiringPart(KEYS, ARGV)\n${ADMIT_FIRING_BODY_LUA}\nend\n`;
// admitFiring's ARGV: id, now, storm max, storm window, flap max, flap window, mode TTL, rule, app,
// target, line, forced mode ('' = decide), reason, held reason, flapping reason, firing sub-id,
// history max length, retention, the record's time, prediction.
const sequence = `
local function argv(id, stormMax, flapMax)
  return {id, '1000', stormMax, '60000', flapMax, '60000', '60000', 'r14', 'app', 'web.1', 'line', '', 'why', 'held!', 'flap!', id, '1000', '86400000', '1000', ''}
end
local function keys(admit) return {KEYS[1], KEYS[2], KEYS[admit], KEYS[4], KEYS[5], KEYS[6]} end
local a = admitFiringPart(keys(3), argv('f1', '100', '0'))
local b = admitFiringPart(keys(7), argv('f2', '0', '100'))
local c = admitFiringPart(keys(8), argv('f3', '100', '0'))
return {a[1], b[1], c[1], redis.call('XLEN', KEYS[5]), redis.call('HGET', KEYS[4], 's:flapping') or 'gone', redis.call('HGET', KEYS[4], 'n:2-0') or 'gone'}
`;

async function run(head: string): Promise<unknown[]> {
  const p = uniquePrefix('spells');
  prefixes.push(p);
  const k = (s: string) => `${p}:${s}`;
  // An open held run and an open flapping run of web.1, each one firing so far.
  await redis.hset(k('spell'), 's:held', 'held|1-0|900', 'n:1-0', '1|900', 's:flapping', 'flapping|2-0|900', 'n:2-0', '1|900');
  return (await redis.eval(
    head + sequence,
    8,
    k('storm'),
    k('flap'),
    k('admit1'),
    k('spell'),
    k('stream'),
    k('stats'),
    k('admit2'),
    k('admit3'),
  )) as unknown[];
}

describe('the body script’s copy of the spell hashes', () => {
  it('a run ended by one admission is not folded into by a later one in the same call', async () => {
    const standalone = await run(standaloneHead);
    // flapping folds into its run and ends the held one, so held starts anew and ends the flapping
    // run, so the last flapping starts anew too: two new records, the first flapping run counted twice.
    expect(standalone.slice(0, 4)).toEqual(['flapping', 'held', 'flapping', 2]);
    expect(standalone[4]).not.toContain('|2-0|');
    expect(standalone[5]).toBe('2|1000');
    const body = await run(bodyHead);
    expect(body.slice(0, 4)).toEqual(standalone.slice(0, 4));
    expect(body[4]).not.toContain('|2-0|');
    expect(body[5]).toBe(standalone[5]);
  });
});
