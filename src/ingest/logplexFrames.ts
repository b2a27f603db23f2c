import { parseSyslogHeader, type SyslogHeaderOptions } from './syslogHeader.js';
import type { BufferedSyslogMessage, LiteralScan, SyslogMessage } from './SyslogMessage.js';
import type { Metrics } from '../metrics.js';
import type { BodyPrefilter } from './bodyPrefilter.js';
import type { LineCounts } from './IngestBatch.js';
import { bufIndexOf } from '../bufferNatives.js';

/**
 * RFC 6587 octet-counted frames (`LEN SP MSG`, LEN in bytes) as logplex sends them, read from
 * bytes and never split on LF: an L10 line, a 10000-byte chunk or an add-on metric can end
 * without one, and the next LEN follows on the very next byte (heroku-drain-protocol.md §1.2).
 *
 * A frame is read only where one can start given the bytes already consumed: at the start, right
 * after a frame that parsed, or after CR/LF there (skipped with a warning). After a frame that
 * does not parse (no LEN, a bad LEN, a LEN past the end, a header that is not syslog) where the
 * next frame starts is unknown: every later offset may sit inside a message, whose text an app
 * writes. So the rest is dropped (`droppedFrom`), never searched: a search would find whatever
 * frame an app prints (`user said: 85 <45>1 … heroku web.9 - Error R14 …`) and read it as a
 * platform line.
 *
 * A frame that parses can still carry a LEN too high, and then ends inside the next line. logplex
 * sends one line per message, so an LF with more text after it (`spans-lines`) shows that: such a
 * frame is broken too. On syslog streams every message ends in LF (`lineEnds`); one that does not
 * (`no-newline`) is broken as well, which also catches a LEN too high or a truncated frame.
 */
export type FrameIssueKind = 'no-length' | 'bad-length' | 'overrun' | 'bad-header' | 'spans-lines' | 'no-newline' | 'stray-newline';

export interface FrameIssue {
  /** Byte offset where the frame (or the CR/LF run) starts. */
  offset: number;
  kind: FrameIssueKind;
}

export interface ParsedBody {
  messages: SyslogMessage[];
  errors: FrameIssue[];
  warnings: FrameIssue[];
  /** Offset of the broken frame the rest was dropped from (errors holds why); undefined when all was read. */
  droppedFrom?: number | undefined;
  /** With a prefilter: the lines that parsed and were passed over, by kind (undefined: none). */
  passedOver?: LineCounts | undefined;
  /**
   * With a prefilter: for each message, how many lines of the body follow it, passed-over ones
   * included (IngestBatch.linesAfter). Without one, messages.length - 1 - its index.
   */
  linesAfter?: number[] | undefined;
}

/**
 * Adds a parse's broken frames (errors), oddities (warnings) and, when the rest of a body or stream
 * was dropped after a broken frame, one `rest-dropped` to `mallet_frames_invalid_total`.
 */
export function countFrameIssues(parsed: ParsedBody, metrics: Metrics): void {
  for (const issue of parsed.errors) metrics.framesInvalidTotal.inc({ reason: issue.kind });
  for (const issue of parsed.warnings) metrics.framesInvalidTotal.inc({ reason: issue.kind });
  if (parsed.droppedFrom !== undefined) metrics.framesInvalidTotal.inc({ reason: 'rest-dropped' });
}

/**
 * An HTTPS-drain body (no STRUCTURED-DATA). Never throws; linear in the body's length. With a
 * prefilter only the lines it keeps become messages; framing and its issues are the same.
 */
export function parseLogplexBody(body: Buffer, prefilter?: BodyPrefilter): ParsedBody {
  const out: ParsedBody = { messages: [], errors: [], warnings: [] };
  if (prefilter === undefined) {
    scanFrames(body, 0, body.length, HTTPS_SCAN, newScanState(), out);
    return out;
  }
  prefilter.start();
  scanFrames(body, 0, body.length, prefilter.options, newScanState(), out);
  prefilter.finish(out);
  return out;
}

/** Lines a parse read in all: the messages and the lines passed over. */
export function linesRead(parsed: ParsedBody): number {
  const p = parsed.passedOver;
  return parsed.messages.length + (p === undefined ? 0 : p.heroku + p.app + p.other);
}

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
/** README: "more than 9 digits" is a bad length; 9 digits also keep LEN inside a small integer. */
export const MAX_LEN_DIGITS = 9;

export interface ScanOptions extends SyslogHeaderOptions {
  /** No more bytes will follow: an incomplete frame is an overrun rather than a wait. */
  readonly final: boolean;
  /** Frames declaring more are broken (bad-length), refused before they are buffered; Infinity for a whole body. */
  readonly maxFrameBytes: number;
  /** Added to every reported offset (a stream's position of buf[0]). */
  readonly base: number;
  /** Every message ends in LF (syslog drains); HTTPS drains send some without (L10, chunks, add-ons). */
  readonly lineEnds: boolean;
  /**
   * Which lines become messages: each frame that parses is read into `view` (nothing allocated)
   * and shown to `keep`; only a line it keeps is made a message of its own (`detach`). Lines it
   * passes over still consume their frame, so framing and its errors are the same either way.
   */
  readonly filter?: { readonly view: BufferedSyslogMessage; readonly scan: LiteralScan; keep(line: BufferedSyslogMessage): boolean } | undefined;
}

export const HTTPS_SCAN: ScanOptions = { structuredData: false, final: true, maxFrameBytes: Infinity, base: 0, lineEnds: false };

/** What a scan leaves for the next one when bytes arrive in pieces. */
export interface ScanState {
  /** A frame did not parse: nothing after it is read (its error is already reported). */
  broken: boolean;
}

export function newScanState(): ScanState {
  return { broken: false };
}

/**
 * Reads frames from buf[pos, end) into `out`. Returns where it stopped: `end`, or (when not
 * final) the start of a frame that is not complete yet, to be scanned again with more bytes.
 */
export function scanFrames(buf: Buffer, pos: number, end: number, opts: ScanOptions, state: ScanState, out: ParsedBody): number {
  // The first LF at or after the current frame's text, found once for the frames it spans (an
  // L10 or chunk has none), so the LF checks cost one pass over the bytes.
  let nextLf = -1;
  while (pos < end && !state.broken) {
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
    if (digits === 0) return fail(out, opts, pos, 'no-length', state, end);
    if (i >= end && digits <= MAX_LEN_DIGITS) {
      if (!opts.final) return pos;
      return fail(out, opts, pos, 'bad-length', state, end);
    }
    if (digits > MAX_LEN_DIGITS || buf[i] !== SP || len === 0 || len > opts.maxFrameBytes) {
      return fail(out, opts, pos, 'bad-length', state, end);
    }
    const msgStart = i + 1;
    if (len > end - msgStart) {
      if (!opts.final) return pos;
      return fail(out, opts, pos, 'overrun', state, end);
    }
    const msgEnd = msgStart + len;
    if (nextLf < msgStart) {
      nextLf = bufIndexOf.call(buf, LF, msgStart);
      if (nextLf < 0 || nextLf > end) nextLf = end;
    }
    if (nextLf < msgEnd - 1 && !newlinesOnly(buf, nextLf, msgEnd)) return fail(out, opts, pos, 'spans-lines', state, end);
    if (opts.lineEnds && buf[msgEnd - 1] !== LF) return fail(out, opts, pos, 'no-newline', state, end);
    const filter = opts.filter;
    const message = parseSyslogHeader(buf, msgStart, msgEnd, opts, filter?.view, filter?.scan);
    // Even with the LEN intact, a frame that is not syslog is not logplex's: its LEN is no surer
    // than its header, and its end may sit inside a message (a LEN read from a dyno number).
    if (message === undefined) return fail(out, opts, pos, 'bad-header', state, end);
    if (filter === undefined) out.messages.push(message);
    else if (filter.keep(message)) out.messages.push(message.detach());
    pos = msgEnd;
  }
  return state.broken ? end : pos;
}

/** Reports the broken frame at pos and drops everything from it: returns `end`, all consumed. */
function fail(out: ParsedBody, opts: ScanOptions, pos: number, kind: FrameIssueKind, state: ScanState, end: number): number {
  out.errors.push({ offset: opts.base + pos, kind });
  out.droppedFrom = opts.base + pos;
  state.broken = true;
  return end;
}

/** Whether buf[from, end) is CR and LF only (an LF inside a text that ends in CR/LF runs is no second line). */
function newlinesOnly(buf: Buffer, from: number, end: number): boolean {
  for (let i = from; i < end; i++) if (buf[i] !== LF && buf[i] !== CR) return false;
  return true;
}
