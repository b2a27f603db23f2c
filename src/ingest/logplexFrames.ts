import { parseSyslogHeader, type SyslogHeaderOptions } from './syslogHeader.js';
import type { SyslogMessage } from './SyslogMessage.js';
import type { Metrics } from '../metrics.js';

/**
 * RFC 6587 octet-counted frames (`LEN SP MSG`, LEN in bytes) as logplex sends them, read from
 * bytes and never split on LF: an L10 line, a 10000-byte chunk or an add-on metric can end
 * without one, and the next LEN follows on the very next byte (heroku-drain-protocol.md §1.2).
 *
 * Lenient, as test/fixtures/samples/README.md describes: CR/LF where a LEN should start is
 * skipped with a warning; a frame whose header is not syslog is skipped; after a broken LEN the
 * reader resynchronises on the next `DIGITS SP <` whose LEN fits and whose header is valid.
 */
export type FrameIssueKind = 'no-length' | 'bad-length' | 'overrun' | 'bad-header' | 'stray-newline';

export interface FrameIssue {
  /** Byte offset where the frame (or the CR/LF run) starts. */
  offset: number;
  kind: FrameIssueKind;
}

export interface ParsedBody {
  messages: SyslogMessage[];
  errors: FrameIssue[];
  warnings: FrameIssue[];
}

/** Adds a parse's skipped frames (errors) and oddities (warnings) to `mallet_frames_invalid_total`. */
export function countFrameIssues(parsed: ParsedBody, metrics: Metrics): void {
  for (const issue of parsed.errors) metrics.framesInvalidTotal.inc({ reason: issue.kind });
  for (const issue of parsed.warnings) metrics.framesInvalidTotal.inc({ reason: issue.kind });
}

/** An HTTPS-drain body (no STRUCTURED-DATA). Never throws; linear in the body's length. */
export function parseLogplexBody(body: Buffer): ParsedBody {
  const out: ParsedBody = { messages: [], errors: [], warnings: [] };
  scanFrames(body, 0, body.length, HTTPS_SCAN, newScanState(), out);
  return out;
}

const SP = 0x20;
const LT = 0x3c;
const CR = 0x0d;
const LF = 0x0a;
/** README: "more than 9 digits" is a bad length; 9 digits also keep LEN inside a small integer. */
const MAX_LEN_DIGITS = 9;

export interface ScanOptions extends SyslogHeaderOptions {
  /** No more bytes will follow: an incomplete frame is an overrun rather than a wait. */
  readonly final: boolean;
  /** Frames declaring more are skipped unread (bad-length); Infinity for a whole body. */
  readonly maxFrameBytes: number;
  /** Added to every reported offset (a stream's position of buf[0]). */
  readonly base: number;
}

const HTTPS_SCAN: ScanOptions = { structuredData: false, final: true, maxFrameBytes: Infinity, base: 0 };

/** What a scan leaves for the next one when bytes arrive in pieces. */
export interface ScanState {
  /** Looking for a plausible frame start after a broken one (its error is already reported). */
  resyncing: boolean;
  /** Bytes of an oversized frame still to drop unread. */
  skip: number;
}

export function newScanState(): ScanState {
  return { resyncing: false, skip: 0 };
}

/**
 * Reads frames from buf[pos, end) into `out`. Returns where it stopped: `end`, or (when not
 * final) the start of a frame that is not complete yet, to be scanned again with more bytes.
 */
export function scanFrames(buf: Buffer, pos: number, end: number, opts: ScanOptions, state: ScanState, out: ParsedBody): number {
  while (pos < end) {
    if (state.skip > 0) {
      const n = Math.min(state.skip, end - pos);
      state.skip -= n;
      pos += n;
      continue;
    }
    if (state.resyncing) {
      const found = findFrameStart(buf, pos, end, opts);
      if (found.wait) return found.at;
      pos = found.at;
      if (pos >= end) return end;
      state.resyncing = false;
    }
    const c = buf[pos]!;
    if (c === LF || c === CR) {
      out.warnings.push({ offset: opts.base + pos, kind: 'stray-newline' });
      do pos++; while (pos < end && (buf[pos] === LF || buf[pos] === CR));
      continue;
    }
    let i = pos;
    let len = 0;
    while (i < end && i - pos <= MAX_LEN_DIGITS) {
      const d = buf[i]! - 0x30;
      if (d < 0 || d > 9) break;
      len = len * 10 + d;
      i++;
    }
    const digits = i - pos;
    if (digits === 0) {
      fail(out, opts, pos, 'no-length', state);
      pos++;
      continue;
    }
    if (i >= end && digits <= MAX_LEN_DIGITS) {
      if (!opts.final) return pos;
      fail(out, opts, pos, 'bad-length', state);
      pos++;
      continue;
    }
    if (digits > MAX_LEN_DIGITS || buf[i] !== SP || len === 0) {
      fail(out, opts, pos, 'bad-length', state);
      pos++;
      continue;
    }
    const msgStart = i + 1;
    if (len > opts.maxFrameBytes) {
      // Dropped unread, so a stream never buffers a frame it will not keep.
      out.errors.push({ offset: opts.base + pos, kind: 'bad-length' });
      state.skip = len;
      pos = msgStart;
      continue;
    }
    if (len > end - msgStart) {
      if (!opts.final) return pos;
      fail(out, opts, pos, 'overrun', state);
      pos++;
      continue;
    }
    const msgEnd = msgStart + len;
    const message = parseSyslogHeader(buf, msgStart, msgEnd, opts);
    if (message === undefined) out.errors.push({ offset: opts.base + pos, kind: 'bad-header' });
    else out.messages.push(message);
    pos = msgEnd;
  }
  return pos;
}

function fail(out: ParsedBody, opts: ScanOptions, pos: number, kind: FrameIssueKind, state: ScanState): void {
  out.errors.push({ offset: opts.base + pos, kind });
  state.resyncing = true;
}

/**
 * The next offset ≥ from that starts a plausible frame: a digit run not glued to an earlier digit
 * (so a wrong LEN is not re-read from its own tail), then SP `<`, a LEN that fits, and a header
 * that parses. `wait` when the bytes end before that can be decided and more may come. Each
 * candidate costs at most a LEN and a bounded header read, so the scan stays linear.
 */
function findFrameStart(buf: Buffer, from: number, end: number, opts: ScanOptions): { at: number; wait: boolean } {
  for (let q = from; q < end; q++) {
    const c = buf[q]!;
    if (c < 0x30 || c > 0x39) continue;
    if (q > 0 && isDigit(buf[q - 1]!)) continue;
    let i = q;
    let len = 0;
    while (i < end && i - q <= MAX_LEN_DIGITS && isDigit(buf[i]!)) {
      len = len * 10 + (buf[i]! - 0x30);
      i++;
    }
    if (i - q > MAX_LEN_DIGITS) continue;
    if (i + 1 >= end) {
      if (!opts.final) return { at: q, wait: true };
      continue;
    }
    if (buf[i] !== SP || buf[i + 1] !== LT || len === 0 || len > opts.maxFrameBytes) continue;
    const msgStart = i + 1;
    if (len > end - msgStart) {
      if (!opts.final) return { at: q, wait: true };
      continue;
    }
    if (parseSyslogHeader(buf, msgStart, msgStart + len, opts) !== undefined) return { at: q, wait: false };
  }
  return { at: end, wait: false };
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
