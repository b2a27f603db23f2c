import type { DrainEvent } from '../ingest/DrainEvent.js';
import { eventTimeMs } from '../ingest/timestampMs.js';
import { LINE_API, LINE_PLATFORM, lineClassOf } from '../ingest/lineClass.js';
import { SHAPES, isFirDyno } from '../rules/shapes.js';
import { literalBytes } from '../rules/literal.js';
import type { LifecycleEvent, LifecycleKind, MemorySample } from './DynoRecord.js';
import { readMemorySampleBytes } from './memoryBytes.js';

/**
 * The Heroku lines the dyno observer reads (texts checked against the drain-protocol notes and
 * the captured samples; fixtures in test/fixtures/dyno-lines.txt). Only APP-NAME `heroku` with a
 * dyno PROCID is trusted for runtime lines, and `app[api]` for releases: an app can print any of
 * these texts on its own output, but cannot send them under `heroku`.
 *
 * Runtime-metrics lines are most of what is read (one per dyno every 20 s), so they are read by
 * hand, by character codes, without regexes, splits or slices: one string for the instance id is
 * all a sample allocates besides itself.
 */
const SOURCE = 'source=';
const SOURCE_BYTES = Buffer.from(SOURCE);
const MEMORY = 'sample#memory_total=';
/** The rules' own copy of the literal (literalBytes), so a batch's literal scan searches it once for both. */
const MEMORY_BYTES = literalBytes(MEMORY)!;
const R15 = 'Error R15';
const PREFIXES: ReadonlyArray<readonly [string, Buffer]> = [
  'Starting process with command', 'State changed from ', 'Process exited', 'Cycling', 'Restarting', R15,
].map((p) => [p, Buffer.from(p)] as const);
const RELEASE = 'Release v';
const RELEASE_BYTES = Buffer.from(RELEASE);

function startsWith(e: DrainEvent, text: string, bytes: Buffer): boolean {
  return e.messageStartsWith ? e.messageStartsWith(bytes) : e.message.startsWith(text);
}

/** The line classes (src/ingest/lineClass.ts) a dyno line can be of: `heroku` dyno PROCIDs and `app[api]`. */
export const DYNO_LINE_CLASSES = LINE_PLATFORM | LINE_API;

/** A PROCID the runtime lines may come under: a dyno name, not the router or logplex. */
export function isDynoProcess(p: string): boolean {
  return p !== 'router' && p !== 'logplex' && SHAPES.dyno.test(p);
}

/** Whether a `heroku` line is a memory sample: `source=` first, memory_total in it (not load). */
export function isMemoryLine(e: DrainEvent): boolean {
  return startsWith(e, SOURCE, SOURCE_BYTES) && (e.messageIncludes ? e.messageIncludes(MEMORY_BYTES) : e.message.includes(MEMORY));
}

/**
 * The prefilter: header fields and bytes at fixed offsets, the message not decoded. Cheapest test
 * first: the line class (router and app output, most lines, by one bit test), then the text's
 * first byte, which only six of ours can start with (`source=`, `Starting`/`State`, `Process`,
 * `Cycling`, `Restarting`, `Error R15`), then that text's prefix, and the PROCID's string and glob
 * (isDynoProcess) last, for the few lines that still could be ours.
 */
export function wantsDynoLine(e: DrainEvent): boolean {
  const c = e.lineClass ?? lineClassOf(e.source, e.process);
  // The refusal of router and app lines kept this small, so that it is inlined into the
  // prefilter's caller: as one function, the call cost more than the bit test (callgrind).
  return (c & DYNO_LINE_CLASSES) !== 0 && wantsOfClass(e, c);
}

/** wantsDynoLine past the class test: `c` is LINE_API or LINE_PLATFORM. */
function wantsOfClass(e: DrainEvent, c: number): boolean {
  if (c === LINE_API) return startsWith(e, RELEASE, RELEASE_BYTES);
  // LINE_PLATFORM: `heroku`, not the router.
  const lead = LEADS[firstByte(e)];
  if (lead === undefined) return false;
  if (lead === MEMORY_LEAD) {
    // Runtime metrics are most of what is wanted; load averages share the prefix but not memory_total.
    // memory_total first: the body's literal scan answers from the next place it found (one
    // search per body, shared with the rules' literal), so a load average fails on a compare of
    // offsets rather than after a 7-byte prefix loop (~345 instructions, callgrind).
    if (!(e.messageIncludes ? e.messageIncludes(MEMORY_BYTES) : e.message.includes(MEMORY)) || !startsWith(e, SOURCE, SOURCE_BYTES)) return false;
  } else {
    let i = 0;
    while (i < lead.length && !startsWith(e, lead[i]![0], lead[i]![1])) i++;
    if (i === lead.length) return false;
  }
  return isDynoProcess(e.process);
}

/** The lifecycle prefixes by their first byte; MEMORY_LEAD for `s`, the runtime-metrics lines' `source=`. */
const MEMORY_LEAD: ReadonlyArray<readonly [string, Buffer]> = [];
const LEADS: (ReadonlyArray<readonly [string, Buffer]> | undefined)[] = new Array(257).fill(undefined);
LEADS[SOURCE.charCodeAt(0)] = MEMORY_LEAD;
for (const p of PREFIXES) {
  const b = p[0].charCodeAt(0);
  LEADS[b] = [...(LEADS[b] ?? []), p];
}

/** The text's first byte (256 when empty): an ASCII prefix's first byte is its first char code either way. */
function firstByte(e: DrainEvent): number {
  if (e.readMessageBytes !== undefined) return e.readMessageBytes(byteAtStart, 0, 0);
  const text = e.message;
  return text.length === 0 ? 256 : Math.min(text.charCodeAt(0), 256);
}

const byteAtStart = (buf: Buffer, start: number, end: number): number => (start < end ? buf[start]! : 256);

/** `app[api]: Release v…`, the only line read from outside `heroku`. */
export function wantsRelease(e: DrainEvent): boolean {
  return e.source === 'app' && e.process === 'api' && startsWith(e, RELEASE, RELEASE_BYTES);
}

/** A `heroku` dyno line that is not a runtime-metrics line: one of the lifecycle texts? */
export function wantsLifecycle(e: DrainEvent): boolean {
  for (const [text, bytes] of PREFIXES) if (startsWith(e, text, bytes)) return true;
  return false;
}

export type DynoLine = { readonly sample: MemorySample } | { readonly event: LifecycleEvent } | undefined;

/** A wanted line read: a memory sample, a lifecycle event, or nothing (not one of ours after all). */
export function readDynoLine(e: DrainEvent): DynoLine {
  if (isRuntimeLine(e)) {
    const sample = readDynoSample(e);
    return sample && { sample };
  }
  const event = readDynoEvent(e);
  return event && { event };
}

/** A `heroku` line in the runtime-metrics layout (`source=` first): read by readDynoSample, the rest by readDynoEvent. */
export function isRuntimeLine(e: DrainEvent): boolean {
  return e.source === 'heroku' && startsWith(e, SOURCE, SOURCE_BYTES);
}

/** An isRuntimeLine line's memory sample, if it is one (readDynoLine's, without the wrapper). */
export function readDynoSample(e: DrainEvent): MemorySample | undefined {
  const at = eventTimeMs(e);
  if (!Number.isFinite(at)) return undefined;
  // Most of what is read: from the bytes, the text never made.
  if (e.readMessageBytes !== undefined) return e.readMessageBytes(readMemorySampleBytes, e.process, at);
  return readMemorySample(e.message, e.process, at);
}

/** Any other wanted line's lifecycle event, if it is one (readDynoLine's, without the wrapper). */
export function readDynoEvent(e: DrainEvent): LifecycleEvent | undefined {
  const at = eventTimeMs(e);
  if (!Number.isFinite(at)) return undefined;
  const text = e.message;
  if (e.source !== 'heroku') {
    const v = releaseVersion(text);
    return v === undefined ? undefined : lifecycle('release', '', at, v);
  }
  const dyno = e.process;
  // Cedar logs R15 when it kills a dyno far over quota; Fir restarts at 100 % (Dev Center, "Dyno
  // memory behavior"), and if its logs say so with the same code, it is kept the same way.
  if (text.startsWith(R15)) return lifecycle('quota-restart', dyno, at, 'R15');
  if (text.startsWith('Starting process with command')) return lifecycle('start', dyno, at);
  if (text === 'Cycling') return lifecycle('cycling', dyno, at);
  if (text === 'Restarting') return lifecycle('restart', dyno, at);
  if (text === 'Process exited') return lifecycle('exit', dyno, at);
  const EXITED = 'Process exited with status ';
  if (text.startsWith(EXITED)) {
    const n = text.length - EXITED.length;
    return n >= 1 && n <= 3 && digitsAt(text, EXITED.length, text.length) ? lifecycle('exit', dyno, at, text.slice(EXITED.length)) : undefined;
  }
  const STATE = 'State changed from ';
  if (text.startsWith(STATE)) {
    const to = text.indexOf(' to ', STATE.length);
    if (to < 0 || !lowerAt(text, STATE.length, to) || !lowerAt(text, to + 4, text.length)) return undefined;
    const fromLen = to - STATE.length;
    const toLen = text.length - to - 4;
    if (fromLen > 20 || toLen > 20) return undefined;
    if (text.endsWith(' to crashed')) return lifecycle('crash', dyno, at, text.slice(STATE.length, to));
    if (text === 'State changed from starting to up') return lifecycle('up', dyno, at);
  }
  return undefined;
}

function lifecycle(kind: LifecycleKind, dyno: string, at: number, detail = ''): LifecycleEvent {
  return { kind, dyno, at, detail };
}

/** `Release vN created by …` → `vN` (1–9 digits). */
function releaseVersion(text: string): string | undefined {
  if (!text.startsWith(RELEASE)) return undefined;
  const end = text.indexOf(' ', RELEASE.length);
  if (end < 0 || end - RELEASE.length > 9 || !digitsAt(text, RELEASE.length, end) || !text.startsWith(' created by ', end)) return undefined;
  return text.slice(RELEASE.length - 1, end);
}

const isDigit = (c: number) => c >= 48 && c <= 57;

/** Non-empty, all digits in [from, to). */
function digitsAt(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}

/** Non-empty, all a–z in [from, to). */
function lowerAt(s: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 97 || c > 122) return false;
  }
  return true;
}

const DYNO_FIELD = ' dyno=';
const CEDAR_DYNO = 'heroku.';
const UUID_LENGTH = 36;

/**
 * The end of the `dyno=` field that follows `source=<process>` at the start of a runtime-metrics
 * line, or -1. The platform writes `source=` first and `dyno=` second, so a line that does not
 * is not read. Cedar: `dyno=heroku.<app id>.<uuid>`, the instance is the uuid (the 36 characters
 * before the end). Fir: the OTLP receiver writes the dyno name as both (src/ingest/otlp/
 * firEvents.ts); a Fir name is unique and a restarted dyno gets a new one, so the name is the
 * instance (see instanceOf).
 */
export function instanceEnd(text: string, process: string): number {
  const p = SOURCE.length;
  if (!text.startsWith(process, p) || !text.startsWith(DYNO_FIELD, p + process.length)) return -1;
  const v = p + process.length + DYNO_FIELD.length;
  const cedar = cedarEnd(text, v);
  if (cedar >= 0) return cedar;
  const end = v + process.length;
  return text.startsWith(process, v) && (end === text.length || text.charCodeAt(end) === 32) && isFirDyno(process) ? end : -1;
}

function cedarEnd(text: string, v: number): number {
  if (!text.startsWith(CEDAR_DYNO, v)) return -1;
  let i = v + CEDAR_DYNO.length;
  const digits = i;
  while (i < text.length && isDigit(text.charCodeAt(i))) i++;
  if (i === digits || i - digits > 20 || text.charCodeAt(i) !== 46) return -1;
  const u = i + 1;
  const end = u + UUID_LENGTH;
  if (end !== text.length && text.charCodeAt(end) !== 32) return -1;
  for (let k = 0; k < UUID_LENGTH; k++) {
    const c = text.charCodeAt(u + k);
    if (k === 8 || k === 13 || k === 18 || k === 23) { if (c !== 45) return -1; }
    else if (!(isDigit(c) || (c >= 97 && c <= 102))) return -1;
  }
  return end;
}

/** The instance of a line whose `dyno=` field ends at `end` (instanceEnd): the uuid, or the Fir name. */
function instanceOf(text: string, process: string, end: number): string {
  const v = SOURCE.length + process.length + DYNO_FIELD.length;
  return end === v + process.length && text.startsWith(process, v) ? process : text.slice(end - UUID_LENGTH, end);
}

const MEMORY_AFTER_DYNO = ` ${MEMORY}`;

/**
 * `source=<process> dyno=<instance> sample#memory_total=<n>MB …`: memory_total, quota and swap
 * by hand. `source=` must be the PROCID the line came under (the stable dyno name).
 */
export function readMemorySample(text: string, process: string, at: number): MemorySample | undefined {
  const end = instanceEnd(text, process);
  // memory_total first, as the platform writes it (load averages come on a line of their own).
  if (end < 0 || !text.startsWith(MEMORY_AFTER_DYNO, end)) return undefined;
  let valueMb: number | undefined;
  let limitMb: number | undefined;
  let swapMb: number | undefined;
  // Each ` sample#memory_…=` field once (the first wins), in any order; other keys are passed over.
  let i = end;
  while (i < text.length) {
    const from = i + 1;
    let to = text.indexOf(' ', from);
    if (to < 0) to = text.length;
    if (text.startsWith('sample#memory_', from)) {
      const k = from + 14;
      if (text.startsWith('total=', k)) valueMb ??= megabytes(text, k + 6, to);
      else if (text.startsWith('quota=', k)) limitMb ??= megabytes(text, k + 6, to);
      else if (text.startsWith('swap=', k)) swapMb ??= megabytes(text, k + 5, to);
    }
    i = to;
  }
  if (valueMb === undefined) return undefined;
  return { dyno: process, instance: instanceOf(text, process, end), at, valueMb, limitMb, swapMb };
}

/**
 * `<1–7 digits>[.<1–6 digits>]MB` in [from, to) as a number, else undefined. The digits are read
 * as one integer and divided once by a power of ten: both exact, so the result is the double
 * nearest the decimal, as Number() would give.
 */
function megabytes(s: string, from: number, to: number): number | undefined {
  if (to - from < 3 || s.charCodeAt(to - 2) !== 77 || s.charCodeAt(to - 1) !== 66) return undefined;
  const last = to - 2;
  let n = 0;
  let i = from;
  while (i < last && isDigit(s.charCodeAt(i))) n = n * 10 + (s.charCodeAt(i++) - 48);
  const whole = i - from;
  if (whole < 1 || whole > 7) return undefined;
  if (i === last) return n;
  if (s.charCodeAt(i) !== 46) return undefined;
  const f = ++i;
  while (i < last && isDigit(s.charCodeAt(i))) n = n * 10 + (s.charCodeAt(i++) - 48);
  const frac = i - f;
  if (i !== last || frac < 1 || frac > 6) return undefined;
  return n / POW10[frac]!;
}

const POW10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000];
