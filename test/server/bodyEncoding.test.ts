import { describe, expect, it } from 'vitest';
import { encodeBody } from '../../src/server/bodyScript.js';
import type { BodyPart } from '../../src/bodyPart.js';

/**
 * The body script call's value tables (encodeBody) are kept from call to call and values can be
 * sent without a look-up (long ones) or looked up by number: whatever a call shares with an
 * earlier one, or between its parts, each part must still be handed exactly its own keys and
 * arguments, as text, in its order. Read back here as the script reads them (BODY_LUA: KEYS[1]
 * the frames key, ARGV[8 ..] the values, then one descriptor per part).
 */
function decode(call: readonly (string | number)[]): Array<{ code: string; keys: string[]; args: string[] }> {
  const numKeys = Number(call[0]);
  const KEYS = (i: number) => String(call[i]);
  const ARGV = (i: number) => String(call[numKeys + i]);
  const parts = Number(call[numKeys + 6]);
  const values = Number(call[numKeys + 7]);
  const out: Array<{ code: string; keys: string[]; args: string[] }> = [];
  for (let p = 0; p < parts; p++) {
    const desc = ARGV(8 + values + p);
    const w = desc.charCodeAt(1) - 48;
    const nums: number[] = [];
    for (let at = 2; at < desc.length; at += w) {
      let n = 0;
      for (let k = 0; k < w; k++) n = n * 64 + desc.charCodeAt(at + k) - 48;
      nums.push(n);
    }
    const nk = nums[3]!;
    out.push({ code: desc[0]!, keys: nums.slice(4, 4 + nk).map(KEYS), args: nums.slice(4 + nk).map(ARGV) });
  }
  return out;
}

const long = (s: string) => `${s}:${'x'.repeat(60)}`;

function part(i: number, j: number): BodyPart {
  // Numbers and their text alike, a long value repeated within the call and across calls, keys
  // shared with other parts and calls.
  return {
    name: 'threshold',
    keys: [`k:{app}:shared`, `k:{app}:${i % 3}`, `k:{app}:${i}:${j}`],
    args: [i, String(i), long('line'), long(`line-${j}`), `e-${i}-${j}`, 60_000, '60000', '', i % 2 === 0 ? 0 : -0, 1.5],
  };
}

describe('the body call encoding', () => {
  it('each part reads exactly its own keys and arguments, in every call of a long run of calls sharing values', () => {
    // Past the tables' bound (they are emptied and filled again) and with varying part counts.
    for (let c = 0; c < 600; c++) {
      const parts = Array.from({ length: 1 + (c % 5) }, (_, j) => part(c, j));
      const call = encodeBody(`frames:{app}:${c % 2}`, `F${c}`, 1_700_000_000_000 + c, true, parts);
      expect(call[1]).toBe(`frames:{app}:${c % 2}`);
      const decoded = decode(call);
      expect(decoded).toEqual(parts.map((p) => ({ code: 't', keys: [...p.keys], args: p.args.map(String) })));
    }
  });

  it('a value repeated within a call is sent once (as a number, once more as text) unless it is long; a key always once', () => {
    const p = part(7, 1);
    const call = encodeBody('frames:{app}:0', 'F', 1, true, [p, p, p]);
    const numKeys = Number(call[0]);
    const valueCount = Number(call[numKeys + 7]);
    const values = call.slice(numKeys + 8, numKeys + 8 + valueCount).map(String);
    // KEYS: the frames key and the three distinct keys.
    expect(numKeys).toBe(4);
    // Once each as a number and as text (two tables), however many parts send them; the long
    // lines once per part.
    expect(values.filter((v) => v === '7')).toHaveLength(2);
    expect(values.filter((v) => v === '60000')).toHaveLength(2);
    expect(values.filter((v) => v === 'e-7-1')).toHaveLength(1);
    expect(values.filter((v) => v === long('line'))).toHaveLength(3);
    expect(decode(call)).toEqual([p, p, p].map((x) => ({ code: 't', keys: [...x.keys], args: x.args.map(String) })));
  });
});
