import { describe, expect, it } from 'vitest';
import { findLiteral } from '../../src/ingest/findLiteral.js';

// A fixed-seed generator, so a failure names its case.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

describe('findLiteral', () => {
  it('finds what buf.indexOf finds, from every start, including where the rare byte is everywhere', () => {
    const next = rng(7);
    const needles = ['sample#memory_total=', 'a#b', 'H12', 'code=', 'x#', '#y', 'ab#cd#ef', 'Error R1'].map((t) => Buffer.from(t));
    // Alphabets: the needles' bytes alone (many near misses), and '#' dense (the fallback).
    const alphabets = ['sample#memory_total=quota', '##a#b#', 'ab#cdefH12 =code'];
    for (let round = 0; round < 300; round++) {
      const alpha = alphabets[round % alphabets.length]!;
      const len = Math.floor(next() * 400);
      const buf = Buffer.alloc(len);
      for (let i = 0; i < len; i++) buf[i] = alpha.charCodeAt(Math.floor(next() * alpha.length));
      // Plant a few whole needles.
      for (const needle of needles) if (next() < 0.3 && len > needle.length) needle.copy(buf, Math.floor(next() * (len - needle.length)));
      for (const needle of needles) {
        for (let from = 0; from <= len; from += 1 + Math.floor(next() * 7)) {
          expect(findLiteral(buf, needle, from), `${round} ${needle} from ${from}`).toBe(buf.indexOf(needle, from));
        }
      }
    }
  });

  it('finds a needle past a long run of false hits (the fallback to Buffer search)', () => {
    const needle = Buffer.from('sample#memory_total=');
    const buf = Buffer.from(`${'sample#memory_rss=1 '.repeat(200)}sample#memory_total=5`);
    expect(findLiteral(buf, needle, 0)).toBe(buf.indexOf(needle));
    expect(findLiteral(buf, needle, buf.indexOf(needle) + 1)).toBe(-1);
  });
});
