import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { testRedis } from '../support/redis.js';
import { unpackBodyReply } from '../../src/server/bodyScript.js';

let redis: Redis;
beforeAll(() => { redis = testRedis(); });
afterAll(async () => { await redis.quit(); });

// Lua source for a string of these bytes (every byte escaped: any byte, NUL and invalid UTF-8 too).
const luaBytes = (b: Uint8Array) => `'${[...b].map((x) => `\\${x}`).join('')}'`;

/**
 * The body script packs its reply with Redis's cmsgpack (bodyScript.ts): what the service reads
 * from it must be what ioredis would have read from the same Lua table as a RESP reply, for what
 * a reply holds (strings of any bytes, integers up to 2^53, lists, empty lists).
 */
describe('the body script reply as MessagePack', () => {
  it('strings of any bytes read as ioredis reads them from RESP (invalid UTF-8 as U+FFFD)', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 120 }).map((t) => new TextEncoder().encode(t))), { minLength: 1, maxLength: 8 }), async (strings) => {
      const table = `{${strings.map(luaBytes).join(', ')}}`;
      const viaResp = await redis.eval(`return ${table}`, 0);
      const viaPack = unpackBodyReply(await redis.callBuffer('EVAL', `return cmsgpack.pack(${table})`, 0));
      expect(viaPack).toEqual(viaResp);
    }), { numRuns: 60 });
  });

  it('integers (times in ms, predict mantissas below 2^53, negatives) exactly, empty and nested lists as lists', async () => {
    const ints = [0, 1, -5, 255, 65_536, 2 ** 32 + 7, 1_700_000_000_123, -1_700_000_000_123, 9_007_199_254_740_927, -9_007_199_254_740_927];
    const reply = unpackBodyReply(await redis.callBuffer('EVAL', `return cmsgpack.pack({${ints.join(', ')}, {}, {'x', {1, ''}}})`, 0));
    expect(reply).toEqual([...ints, [], ['x', [1, '']]]);
    for (const n of reply.slice(0, ints.length)) expect(typeof n).toBe('number');
  });

  it('a reply that is not MessagePack bytes is refused with what was expected', () => {
    expect(() => unpackBodyReply(['open'])).toThrow(/expected a MessagePack reply/);
    expect(() => unpackBodyReply(Buffer.from([0xa4, 0x6f, 0x70, 0x65, 0x6e]))).toThrow(/not a list/);
  });
});
