import { bufIndexOf } from '../bufferNatives.js';

/**
 * `buf.indexOf(needle, from)`, faster for needles that hold a byte log text seldom has (`#` in
 * `sample#memory_total=`, a capital letter): Buffer's search for such a needle is slow on log
 * text (on the benchmark stream `sample#memory_total=` costs ~230 ns per 300-byte line, `H12` ~24:
 * a lowercase first byte keeps matching), while memchr for one rare byte runs at the speed of
 * `H12`. So the rarest byte of the needle (by a fixed ranking of how common bytes are in log
 * lines) is searched alone and each hit is checked; a needle without a rare byte, or one whose
 * rare byte is its first (Buffer's search looks for that byte itself), or a search that meets
 * false hits densely, uses Buffer's own search. Same result either way: the first
 * occurrence at or after `from`, or -1.
 */

/** Per needle: the offset of its rarest byte, or -1 when it holds none rare enough to pay. */
const rareAt = new WeakMap<Buffer, number>();
/** False hits of the rare byte a search takes (beyond one per 32 bytes) before Buffer's search takes over. */
const MAX_FALSE_HITS = 16;

export function findLiteral(buf: Buffer, needle: Buffer, from: number): number {
  let r = rareAt.get(needle);
  if (r === undefined) rareAt.set(needle, (r = rarestByte(needle)));
  if (r < 0) return bufIndexOf.call(buf, needle, from);
  const n = needle.length;
  const rb = needle[r]!;
  const last = buf.length - n;
  let p = from + r;
  for (let misses = 0; ; misses++) {
    p = bufIndexOf.call(buf, rb, p);
    const s = p - r;
    if (p < 0 || s > last) return -1;
    let j = 0;
    while (j < n && buf[s + j] === needle[j]) j++;
    if (j === n) return s;
    p++;
    // Rare bytes that are not rare here (a false hit every few bytes): each costs a call, so
    // Buffer's search takes the rest. Every start whose rare byte lies before p was checked.
    if (misses > MAX_FALSE_HITS + ((p - from) >> 5)) return bufIndexOf.call(buf, needle, p - r);
  }
}

/** How common a byte is in log lines, 0 rarest; only bytes ranked ≤ RARE are searched alone. */
function rank(c: number): number {
  if (c >= 0x61 && c <= 0x7a) return 6; // lowercase
  if (c === 0x20 || c === 0x3d || c === 0x2e || c === 0x2d || c === 0x2f || c === 0x3a || c === 0x22 || c === 0x5f) return 7;
  if (c >= 0x30 && c <= 0x39) return 4; // digits
  if (c >= 0x41 && c <= 0x5a) return 1; // uppercase
  if (c > 0x20 && c < 0x7f) return 0; // other punctuation: # ! $ % & * + ; < > ? @ [ ] ^ ` { | } ~ \ ( ) , '
  return 3; // control and non-ASCII bytes
}
const RARE = 1;

/**
 * The offset of the needle's rarest byte, or -1 to leave the needle to Buffer's search: also when
 * its first byte is rare already, as Buffer's search then looks for that byte itself.
 */
function rarestByte(needle: Buffer): number {
  if (needle.length < 2 || rank(needle[0]!) <= RARE) return -1;
  let best = -1;
  let bestRank = RARE + 1;
  for (let i = 0; i < needle.length; i++) {
    const k = rank(needle[i]!);
    if (k < bestRank) { best = i; bestRank = k; }
  }
  return best;
}
