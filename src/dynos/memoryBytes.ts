import type { MemorySample } from './DynoRecord.js';
import { isFirDyno } from '../rules/shapes.js';
import { bufIndexOf } from '../bufferNatives.js';

/**
 * readMemorySample (dynoLines.ts) over the line's bytes (DrainEvent.readMessageBytes), so that a
 * memory sample costs the sample and nothing else: not the decoded text (a runtime-metrics line
 * is ~300 bytes), not the instance id either when the same instance was read lately (interned).
 * Every field it reads is ASCII, and UTF-8 puts an ASCII character exactly where its byte is, so
 * it reads what the text reader reads; test/dynos/memoryBytes.test.ts holds the two equal.
 */
export function readMemorySampleBytes(buf: Buffer, start: number, end: number, process: string, at: number): MemorySample | undefined {
  const dyno = instanceEndAt(buf, start, end, process);
  // memory_total first, as the platform writes it (load averages come on a line of their own).
  if (dyno < 0 || !bytesAre(buf, dyno, end, MEMORY_AFTER_DYNO)) return undefined;
  return sampleAt(buf, start, end, dyno, process, undefined, at);
}

/** An instance whose line prefix (`source=<dyno> dyno=<…> `) a caller has matched already. */
export interface KnownInstance {
  readonly dyno: string;
  readonly instance: string;
  /** The prefix's length less one: where its `dyno=` field ends (instanceEndAt's answer for it). */
  readonly fieldsAt: number;
}

/**
 * readMemorySampleBytes of a line whose text starts with `known`'s prefix and memory_total right
 * after it (the dyno observer compared those bytes already, DynoObserver.wants): the same sample,
 * without checking the prefix again or reading the instance id from it.
 */
export function readKnownSampleBytes(buf: Buffer, start: number, end: number, known: KnownInstance, at: number): MemorySample | undefined {
  return sampleAt(buf, start, end, start + known.fieldsAt, known.dyno, known.instance, at);
}

/** The sample from the fields after the `dyno=` field (ending at `dyno`); instance undefined: read from the line. */
function sampleAt(buf: Buffer, start: number, end: number, dyno: number, process: string, instance: string | undefined, at: number): MemorySample | undefined {
  let valueMb: number | undefined;
  let limitMb: number | undefined;
  let swapMb: number | undefined;
  // Each ` sample#memory_…=` field once (the first wins), in any order; other keys are passed over.
  let i = dyno;
  while (i < end) {
    const from = i + 1;
    // A byte loop costs about 30 instructions a byte under TurboFan (callgrind), a native
    // indexOf far less than a field's 20–30 bytes; past `end` it finds the next line's space.
    let to = bufIndexOf.call(buf, SP, from);
    if (to < 0 || to > end) to = end;
    // The byte after `sample#memory_` names the field: only total, quota and swap are read, so
    // the others (rss, cache, pgpgin, pgpgout) are passed over on it, before the prefix compare.
    const k = from + MEMORY_PREFIX.length;
    const c = k < to ? buf[k] : 0;
    if ((c === T || c === Q || c === S) && bytesAre(buf, from, to, MEMORY_PREFIX)) {
      if (bytesAre(buf, k, to, TOTAL)) valueMb ??= megabytesAt(buf, k + TOTAL.length, to);
      else if (bytesAre(buf, k, to, QUOTA)) limitMb ??= megabytesAt(buf, k + QUOTA.length, to);
      else if (bytesAre(buf, k, to, SWAP)) swapMb ??= megabytesAt(buf, k + SWAP.length, to);
    }
    i = to;
  }
  if (valueMb === undefined) return undefined;
  return { dyno: process, instance: instance ?? instanceAt(buf, start, process, dyno), at, valueMb, limitMb, swapMb };
}

const SP = 0x20;
const SOURCE = Buffer.from('source=');
const DYNO_FIELD = Buffer.from(' dyno=');
const CEDAR_DYNO = Buffer.from('heroku.');
const MEMORY_AFTER_DYNO = Buffer.from(' sample#memory_total=');
const MEMORY_PREFIX = Buffer.from('sample#memory_');
const TOTAL = Buffer.from('total=');
const QUOTA = Buffer.from('quota=');
const SWAP = Buffer.from('swap=');
const UUID_LENGTH = 36;
const [T, Q, S] = [TOTAL[0]!, QUOTA[0]!, SWAP[0]!];

/** Whether buf[at, end) starts with `needle`. */
function bytesAre(buf: Buffer, at: number, end: number, needle: Buffer): boolean {
  const n = needle.length;
  if (end - at < n) return false;
  for (let j = 0; j < n; j++) if (buf[at + j] !== needle[j]) return false;
  return true;
}

/** Whether buf[at, end) starts with the ASCII string `s` (a non-ASCII character never matches, as in the decoded text). */
function asciiAre(buf: Buffer, at: number, end: number, s: string): boolean {
  const n = s.length;
  if (end - at < n) return false;
  for (let j = 0; j < n; j++) {
    const c = s.charCodeAt(j);
    if (c > 0x7f || buf[at + j] !== c) return false;
  }
  return true;
}

const isDigit = (c: number) => c >= 48 && c <= 57;

/** instanceEnd (dynoLines.ts) over bytes: the end of the `dyno=` field after `source=<process>`, or -1. */
function instanceEndAt(buf: Buffer, start: number, end: number, process: string): number {
  const p = start + SOURCE.length;
  if (!bytesAre(buf, start, end, SOURCE) || !asciiAre(buf, p, end, process) || !bytesAre(buf, p + process.length, end, DYNO_FIELD)) return -1;
  const v = p + process.length + DYNO_FIELD.length;
  const cedar = cedarEndAt(buf, v, end);
  if (cedar >= 0) return cedar;
  const e = v + process.length;
  return asciiAre(buf, v, end, process) && (e === end || buf[e] === SP) && isFirDyno(process) ? e : -1;
}

function cedarEndAt(buf: Buffer, v: number, end: number): number {
  if (!bytesAre(buf, v, end, CEDAR_DYNO)) return -1;
  let i = v + CEDAR_DYNO.length;
  const digits = i;
  while (i < end && isDigit(buf[i]!)) i++;
  if (i === digits || i - digits > 20 || i >= end || buf[i] !== 0x2e) return -1;
  const u = i + 1;
  const e = u + UUID_LENGTH;
  if (e > end || (e !== end && buf[e] !== SP)) return -1;
  for (let k = 0; k < UUID_LENGTH; k++) {
    const c = buf[u + k]!;
    if (k === 8 || k === 13 || k === 18 || k === 23) { if (c !== 45) return -1; }
    else if (!(isDigit(c) || (c >= 97 && c <= 102))) return -1;
  }
  return e;
}

/** instanceOf (dynoLines.ts) over bytes: the Fir name is the PROCID, a Cedar uuid the 36 bytes before `end`. */
function instanceAt(buf: Buffer, start: number, process: string, end: number): string {
  const v = start + SOURCE.length + process.length + DYNO_FIELD.length;
  return end === v + process.length && asciiAre(buf, v, end, process) ? process : internUuid(buf, end - UUID_LENGTH);
}

/**
 * An instance's samples come every 20 s for hours: a small direct-mapped table gives back the
 * string made for the same 36 bytes last time (checked byte for byte, so a collision only costs
 * a new string).
 */
const SLOTS = 64;
const slotStrings: (string | undefined)[] = new Array(SLOTS).fill(undefined);
const slotBytes: Buffer[] = Array.from({ length: SLOTS }, () => Buffer.alloc(UUID_LENGTH));

function internUuid(buf: Buffer, at: number): string {
  const slot = (buf[at]! * 31 + buf[at + 1]! * 7 + buf[at + 35]! * 3 + buf[at + 34]!) & (SLOTS - 1);
  const known = slotStrings[slot];
  const bytes = slotBytes[slot]!;
  if (known !== undefined) {
    let same = true;
    for (let i = 0; i < UUID_LENGTH; i++) {
      if (bytes[i] !== buf[at + i]) { same = false; break; }
    }
    if (same) return known;
  }
  const s = buf.latin1Slice(at, at + UUID_LENGTH);
  buf.copy(bytes, 0, at, at + UUID_LENGTH);
  slotStrings[slot] = s;
  return s;
}

/** megabytes (dynoLines.ts) over bytes: `<1–7 digits>[.<1–6 digits>]MB` in [from, to), else undefined. */
function megabytesAt(buf: Buffer, from: number, to: number): number | undefined {
  if (to - from < 3 || buf[to - 2] !== 77 || buf[to - 1] !== 66) return undefined;
  const last = to - 2;
  let n = 0;
  let i = from;
  while (i < last && isDigit(buf[i]!)) n = n * 10 + (buf[i++]! - 48);
  const whole = i - from;
  if (whole < 1 || whole > 7) return undefined;
  if (i === last) return n;
  if (buf[i] !== 46) return undefined;
  const f = ++i;
  while (i < last && isDigit(buf[i]!)) n = n * 10 + (buf[i++]! - 48);
  const frac = i - f;
  if (i !== last || frac < 1 || frac > 6) return undefined;
  return n / POW10[frac]!;
}

const POW10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000];
