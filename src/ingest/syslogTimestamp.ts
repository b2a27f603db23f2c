/**
 * TIMESTAMP as logplex writes it: `-`, or RFC 3339 `YYYY-MM-DDTHH:MM:SS`, 0–6 fraction digits
 * (Heroku drops trailing zeros, so the count varies), then `Z` or `±HH:MM`. Kept as sent.
 *
 * Lines of one body fall within a few seconds and share their offset, so the last head and
 * offset seen are kept, as bytes and as strings: bytes equal to a head already checked need no
 * second check, and the string made for them is reused. Per line only the fraction is left to
 * make, and only if the timestamp is read.
 */

import { dataViewOf } from './byteWords.js';

/** What the last readTimestamp found besides its end; reused so the hot path allocates nothing. */
export const timestampParts = { head: '', zone: '' };

/** `YYYY-MM-DDTHH:MM:SS` */
export const TIMESTAMP_HEAD = 19;
const ZONE = 6;

const SP = 0x20;
const DASH = 0x2d;
const COLON = 0x3a;
const DOT = 0x2e;
const PLUS = 0x2b;
const UPPER_T = 0x54;
const UPPER_Z = 0x5a;

// Seeded with valid values so an all-zero input can never match an empty cache.
let lastHead = '1970-01-01T00:00:00';
const lastHeadBytes = Buffer.from(lastHead, 'latin1');
let lastZone = '+00:00';
const lastZoneBytes = Buffer.from(lastZone, 'latin1');
/**
 * The same bytes as words, compared with one DataView read each (byteWords.ts): the head at 0,
 * 8 and 11, the offset at 0 (four bytes) and 4 (two). A checked head or offset is ASCII digits and
 * punctuation, so no head word is NaN or ±0 and float equality is byte equality.
 */
const lastHeadView = new DataView(lastHeadBytes.buffer, lastHeadBytes.byteOffset, TIMESTAMP_HEAD);
const lastZoneView = new DataView(lastZoneBytes.buffer, lastZoneBytes.byteOffset, ZONE);
/** In typed arrays: a double stored in a module variable is a new heap number each time. */
const headWords = new Float64Array(3);
const zoneWords = new Uint32Array(2);
function takeHead(): void {
  headWords[0] = lastHeadView.getFloat64(0, true);
  headWords[1] = lastHeadView.getFloat64(8, true);
  headWords[2] = lastHeadView.getFloat64(11, true);
}
function takeZone(): void {
  zoneWords[0] = lastZoneView.getUint32(0, true);
  zoneWords[1] = lastZoneView.getUint16(4, true);
}
takeHead();
takeZone();

/** The end (the space after it) of a TIMESTAMP starting at b, or -1; fills timestampParts. `dv`: dataViewOf(buf). */
export function readTimestamp(buf: Buffer, b: number, end: number, dv: DataView = dataViewOf(buf)): number {
  if (buf[b] === DASH) {
    if (b + 1 >= end || buf[b + 1] !== SP) return -1;
    timestampParts.head = '-';
    timestampParts.zone = '';
    return b + 1;
  }
  if (end - b < TIMESTAMP_HEAD + 2) return -1;
  // The seconds first: where lines of one body differ.
  if (dv.getFloat64(b + 11, true) !== headWords[2] || dv.getFloat64(b, true) !== headWords[0] || dv.getFloat64(b + 8, true) !== headWords[1]) {
    if (!isHead(buf, b)) return -1;
    lastHead = buf.latin1Slice(b, b + TIMESTAMP_HEAD);
    buf.copy(lastHeadBytes, 0, b, b + TIMESTAMP_HEAD);
    takeHead();
  }
  let i = b + TIMESTAMP_HEAD;
  if (buf[i] === DOT) {
    const f = ++i;
    // Six digits, the usual count, by two word tests; any other count byte by byte.
    if (end - f > 6 && digits4(dv.getUint32(f, true)) && digits2(dv.getUint16(f + 4, true)) && !isDigit(buf[f + 6]!)) i = f + 6;
    else {
      while (i < end && isDigit(buf[i]!)) i++;
      if (i === f || i - f > 6) return -1;
    }
  }
  let zone: string;
  if (buf[i] === UPPER_Z) {
    zone = 'Z';
    i++;
  } else {
    if (i + ZONE > end) return -1;
    if (dv.getUint32(i, true) !== zoneWords[0] || dv.getUint16(i + 4, true) !== zoneWords[1]) {
      if (!isZone(buf, i)) return -1;
      lastZone = buf.latin1Slice(i, i + ZONE);
      buf.copy(lastZoneBytes, 0, i, i + ZONE);
      takeZone();
    }
    zone = lastZone;
    i += ZONE;
  }
  if (i >= end || buf[i] !== SP) return -1;
  // Stored only when changed: a young string stored into this long-lived object costs a
  // write-barrier call, and the strings change once per second of log time.
  if (timestampParts.head !== lastHead) timestampParts.head = lastHead;
  if (timestampParts.zone !== zone) timestampParts.zone = zone;
  return i;
}

/** The timestamp text from its head and offset strings and the fraction bytes between them. */
export function timestampText(head: string, zone: string, buf: Buffer, start: number, end: number): string {
  if (head.length !== TIMESTAMP_HEAD) return head;
  const fractionStart = start + TIMESTAMP_HEAD;
  return head + fractionText(buf, fractionStart, end - zone.length - fractionStart) + zone;
}

const fromCharCode = String.fromCharCode;

/** `.` and 1–6 digits (n bytes in all), made without a call into the runtime. */
function fractionText(b: Buffer, i: number, n: number): string {
  switch (n) {
    case 0: return '';
    case 2: return fromCharCode(b[i]!, b[i + 1]!);
    case 3: return fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!);
    case 4: return fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!);
    case 5: return fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!);
    case 6: return fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!);
    case 7: return fromCharCode(b[i]!, b[i + 1]!, b[i + 2]!, b[i + 3]!, b[i + 4]!, b[i + 5]!, b[i + 6]!);
    default: return b.latin1Slice(i, i + n);
  }
}

/**
 * Whether each byte of the word is an ASCII digit: high nibble 3, and a low nibble that 6 does
 * not carry out of (a byte that carries fails its own high nibble, whatever it carries into).
 */
function digits4(w: number): boolean {
  return (w & 0xf0f0f0f0) === 0x30303030 && ((w + 0x06060606) & 0xf0f0f0f0) === 0x30303030;
}

function digits2(w: number): boolean {
  return (w & 0xf0f0) === 0x3030 && ((w + 0x0606) & 0xf0f0) === 0x3030;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHead(buf: Buffer, b: number): boolean {
  return isDigit(buf[b]!) && isDigit(buf[b + 1]!) && isDigit(buf[b + 2]!) && isDigit(buf[b + 3]!) && buf[b + 4] === DASH
    && isDigit(buf[b + 5]!) && isDigit(buf[b + 6]!) && buf[b + 7] === DASH && isDigit(buf[b + 8]!) && isDigit(buf[b + 9]!)
    && buf[b + 10] === UPPER_T && isDigit(buf[b + 11]!) && isDigit(buf[b + 12]!) && buf[b + 13] === COLON
    && isDigit(buf[b + 14]!) && isDigit(buf[b + 15]!) && buf[b + 16] === COLON && isDigit(buf[b + 17]!) && isDigit(buf[b + 18]!);
}

function isZone(buf: Buffer, i: number): boolean {
  const s = buf[i];
  return (s === PLUS || s === DASH) && isDigit(buf[i + 1]!) && isDigit(buf[i + 2]!) && buf[i + 3] === COLON
    && isDigit(buf[i + 4]!) && isDigit(buf[i + 5]!);
}
