import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { BodyFlush } from '../../src/server/bodyFlush.js';
import { encodeScriptCall } from '../../src/server/respCall.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';

/**
 * The body script's calls are encoded to RESP bytes by mallet (src/server/respCall.ts), not by
 * ioredis: the bytes must be what ioredis would send, for any text, and Redis must get back
 * exactly the arguments given (a length that grows a digit when the text is UTF-8, empty
 * arguments, numbers).
 */
const admin = testRedis();
const prefix = uniquePrefix('resp');
afterAll(async () => { await cleanupPrefix(admin, prefix); admin.disconnect(); });

const SCRIPT = { lua: 'return ARGV', sha: 'a'.repeat(40) };

describe('script calls encoded to RESP by mallet', () => {
  it('the bytes are the RESP of EVALSHA with each argument as a bulk string, UTF-8 lengths included', () => {
    // 'é' is 2 bytes: 9 characters are 18 bytes (the length gains a digit), 5 are 10.
    const args: (string | number)[] = [1, `${prefix}:{a}:k`, '', 'plain', 'é'.repeat(9), 'é'.repeat(5), '😀x', 1234567890123];
    const { bytes, restAt } = encodeScriptCall(SCRIPT, args);
    const expected = `*${args.length + 2}\r\n$7\r\nevalsha\r\n$40\r\n${SCRIPT.sha}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`;
    expect(bytes.toString('utf8')).toBe(expected);
    expect(bytes.subarray(restAt).toString('utf8').startsWith('$1\r\n1\r\n')).toBe(true);
  });

  it('calls of every size, ASCII or not, in turn: each one\'s bytes exact and left untouched by the calls after it', () => {
    // Sizes around a quarter slab and a slab (256 KiB), a character of 2–4 bytes last or first: a
    // call whose ASCII length fits in what is left of the slab but whose UTF-8 does not.
    const expectedOf = (args: string[]) => `*${args.length + 2}\r\n$7\r\nevalsha\r\n$40\r\n${SCRIPT.sha}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    let seed = 7;
    const next = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    const made: { bytes: Buffer; expected: string }[] = [];
    for (let i = 0; i < 120; i++) {
      const size = [10, 1000, 60_000, 66_000, 130_000, 262_000, 300_000][next(7)]! + next(3000);
      const odd = ['', 'é', '€', '😀', '\ud800'][next(5)]!;
      const args = [next(2) === 0 ? `${'x'.repeat(size)}${odd}` : `${odd}${'y'.repeat(size)}`, String(i)];
      made.push({ bytes: encodeScriptCall(SCRIPT, args).bytes, expected: expectedOf(args) });
    }
    for (const m of made) expect(m.bytes.equals(Buffer.from(m.expected, 'utf8'))).toBe(true);
  });

  it('Redis gets back exactly the arguments sent, through BodyFlush (EVAL first on the socket, then EVALSHA)', async () => {
    const redis = new Redis(testRedisUrl(), { enableOfflineQueue: false });
    await new Promise((r) => redis.once('ready', r));
    redis.defineCommand('respEcho', { lua: 'return ARGV' });
    const flush = new BodyFlush(redis, 'respEcho');
    const argv = ['', 'plain', 'é'.repeat(9), 'ü'.repeat(50), '😀', 'x'.repeat(70_000), '42'];
    const call = [1, `${prefix}:{a}:k`, ...argv];
    // Twice: the first call on the socket is sent as EVAL with the script, the second as EVALSHA.
    expect(await flush.call(`${prefix}:{a}:k`, call)).toEqual(argv);
    expect(await Promise.all([flush.call(`${prefix}:{a}:k`, call), flush.call(`${prefix}:{a}:k`, [0, 'b'])])).toEqual([argv, ['b']]);
    // Many calls at once: they fill several of the shared slabs, each call keeping its own bytes.
    const many = Array.from({ length: 300 }, (_, i) => [`${i}:${'é'.repeat(i % 7)}`, 'y'.repeat(1000 + i)]);
    expect(await Promise.all(many.map((a) => flush.call(`${prefix}:{a}:k`, [0, ...a])))).toEqual(many);
    redis.disconnect();
  });
});
