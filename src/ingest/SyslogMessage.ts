import type { DrainEvent } from './DrainEvent.js';
import type { IngestBatch } from './IngestBatch.js';
import { TIMESTAMP_HEAD, timestampText } from './syslogTimestamp.js';
import { headBytesMs } from './timestampMs.js';
import { findLiteral } from './findLiteral.js';
import { ByteWords } from './byteWords.js';

/**
 * One syslog message as logplex frames it, read straight from the bytes it arrived in.
 *
 * Header fields and the text are sliced out of the buffer only when read, then cached: the rules
 * engine looks at PROCID and APP-NAME of every line but at the text of few, and a drain body can
 * hold a thousand lines.
 */
export interface SyslogMessage {
  readonly pri: number;
  /** RFC 3339 exactly as sent (0–6 fraction digits), or `-`. */
  readonly timestamp: string;
  /** `host` on HTTPS drains, the drain token `d.<uuid>` on syslog drains. */
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
  readonly msgId: string;
  /** As DrainEvent's: lineClassOf(appName, procId), when the producer knows it already. */
  readonly lineClass?: number;
  /** Syslog drains: the STRUCTURED-DATA field (`-` from logplex). HTTPS drains have none: undefined. */
  readonly structuredData: string | undefined;
  /**
   * The text without exactly one trailing LF, UTF-8 decoded with U+FFFD for bad sequences, a
   * leading U+FEFF kept; at most MAX_MESSAGE_BYTES of it (SPEC §6: line ≤ 64 KiB kept).
   */
  readonly message: string;
  /** As DrainEvent's: literal tests over the text's bytes, so a rejected line is never decoded. */
  messageIncludes?(needle: Buffer, scan?: LiteralScan): boolean;
  messageStartsWith?(needle: Buffer, at?: number): boolean;
}

/**
 * Where each literal next occurs in the buffers of one batch, so that searching the lines in order
 * costs one pass over the bytes per literal instead of one native call per line. Only for lines
 * whose bytes no longer change (a batch's: see LogplexStream); it is dropped with its batch.
 */
export class LiteralScan {
  readonly #needles: Buffer[] = [];
  readonly #bufs: Buffer[] = [];
  /** The first occurrence at or after #from[k] is at #at[k] (-1: none up to the buffer's end). */
  readonly #from: number[] = [];
  readonly #at: number[] = [];

  /** Whether buf[start, end) holds needle (non-empty). */
  includes(buf: Buffer, needle: Buffer, start: number, end: number): boolean {
    let k = 0;
    while (k < this.#needles.length && (this.#needles[k] !== needle || this.#bufs[k] !== buf)) k++;
    if (k === this.#needles.length) {
      this.#needles.push(needle);
      this.#bufs.push(buf);
      this.#from.push(start);
      this.#at.push(findLiteral(buf, needle, start));
    } else if (start < this.#from[k]! || (this.#at[k]! >= 0 && this.#at[k]! < start)) {
      this.#from[k] = start;
      this.#at[k] = findLiteral(buf, needle, start);
    }
    const at = this.#at[k]!;
    return at >= 0 && at + needle.length <= end;
  }

  /** Forgets every buffer (a scan reused for the next batch's). */
  reset(): void {
    this.#needles.length = this.#bufs.length = this.#from.length = this.#at.length = 0;
  }
}

/** SPEC §6: a line is kept up to 64 KiB; the rest is dropped before decoding. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

const LF = 0x0a;
const DOT = 0x2e;
/** The head and offset strings timeMs last saw (identity: the parser shares them) and their time. */
let lastHead = '';
let lastZone = '';
let lastHeadMs = Number.NaN;

declare global {
  interface Buffer {
    /** Buffer's own latin1 slicer (what toString('latin1') calls after checking its arguments). */
    latin1Slice(start: number, end: number): string;
  }
}

// Fields are TypeScript-private rather than #private: a DrainEvent may be seen through a
// prototype (Object.create(event, …)), which #private fields do not allow.
export class BufferedSyslogMessage implements SyslogMessage, DrainEvent {
  /** The batch this message is the event of (drainEvents), the lines after it there and its literal scan. */
  private _batch: IngestBatch | undefined = undefined;
  private _linesAfter = 0;
  private _scan: LiteralScan | undefined = undefined;
  private _timestamp: string | undefined = undefined;
  private _hostname: string | undefined = undefined;
  private _appName: string | undefined = undefined;
  private _procId: string | undefined = undefined;
  private _msgId: string | undefined = undefined;
  private _message: string | undefined = undefined;
  /**
   * A view's expected HOSTNAME (expectHostname) and whether this line's is it: the parser compares
   * the field with these bytes while it reads it, so one pass serves both.
   */
  private _expectHost: Buffer | undefined = undefined;
  private _expectWords: ByteWords | undefined = undefined;
  private _hostSame = false;

  /** Offsets into `buf`; each header field ends one byte (its space) before the next starts. */
  constructor(
    // Not readonly: the parser's view moves from line to line (moveTo). Readers see the
    // SyslogMessage interface, where both are.
    public pri: number,
    /** lineClassAt over APP-NAME and PROCID, decided by the parser while it read them. */
    public lineClass: number,
    /** TIMESTAMP up to the seconds (or `-`) and its offset, shared with neighbouring lines. */
    private tsHead: string,
    private tsZone: string,
    private buf: Buffer,
    private tsStart: number,
    private hostStart: number,
    private appStart: number,
    private procStart: number,
    private msgIdStart: number,
    /** -1 when the transport carries no STRUCTURED-DATA. */
    private sdStart: number,
    /** End of MSGID, or of SD when present. */
    private headerEnd: number,
    private textStart: number,
    /** End of the frame (exclusive). */
    private end: number,
  ) {}

  /**
   * A view that the parser moves from line to line (`moveTo`), so that a prefilter can read a
   * line's header and test its bytes before anything is allocated for it; `detach` makes the
   * message of a line that is kept. Never handed on itself.
   */
  static view(): BufferedSyslogMessage {
    const empty = Buffer.alloc(0);
    return new BufferedSyslogMessage(0, 0, '', '', empty, 0, 0, 0, 0, 0, -1, 0, 0, 0);
  }

  /** This view over another line (the constructor's arguments); literal tests then use `scan`. */
  moveTo(
    pri: number, lineClass: number, tsHead: string, tsZone: string, buf: Buffer, tsStart: number, hostStart: number, appStart: number,
    procStart: number, msgIdStart: number, sdStart: number, headerEnd: number, textStart: number, end: number, scan: LiteralScan | undefined,
    hostSame: boolean,
  ): this {
    this._hostSame = hostSame;
    this.pri = pri;
    this.lineClass = lineClass;
    // This view lives long and the buffer, scan and timestamp strings are young: storing one costs
    // a write-barrier call (~50 instructions, callgrind). They change per read or per second of
    // log time, not per line.
    if (this.tsHead !== tsHead) this.tsHead = tsHead;
    if (this.tsZone !== tsZone) this.tsZone = tsZone;
    if (this.buf !== buf) this.buf = buf;
    this.tsStart = tsStart;
    this.hostStart = hostStart;
    this.appStart = appStart;
    this.procStart = procStart;
    this.msgIdStart = msgIdStart;
    this.sdStart = sdStart;
    this.headerEnd = headerEnd;
    this.textStart = textStart;
    this.end = end;
    if (this._scan !== scan) this._scan = scan;
    this._timestamp = this._hostname = this._appName = this._procId = this._msgId = this._message = undefined;
    return this;
  }

  /** The view's line as a message of its own (the strings already made come along). */
  detach(): BufferedSyslogMessage {
    const m = new BufferedSyslogMessage(this.pri, this.lineClass, this.tsHead, this.tsZone, this.buf, this.tsStart, this.hostStart, this.appStart,
      this.procStart, this.msgIdStart, this.sdStart, this.headerEnd, this.textStart, this.end);
    m._hostname = this._hostname;
    m._appName = this._appName;
    m._procId = this._procId;
    return m;
  }

  /**
   * This message as the DrainEvent of `batch`, followed there by `linesAfter` lines of its frame
   * (IngestBatch.linesAfter), without a second object per line; false when it already is the
   * event of another batch (the caller then wraps it).
   */
  bindEvent(batch: IngestBatch, linesAfter: number, scan: LiteralScan): boolean {
    if (this._batch !== undefined && this._batch !== batch) return false;
    this._batch = batch;
    this._linesAfter = linesAfter;
    this._scan = scan;
    return true;
  }

  get app(): string { return this._bound().app; }
  /** As drainEvents' MessageEvent: counted from the end of the frame (see there). */
  get id(): string {
    const b = this._bound();
    return `${b.drainToken}:${b.frameId}:${this._linesAfter}`;
  }
  get receivedAt(): number { return this._bound().receivedAt; }
  get source(): string { return this.appName; }
  get process(): string { return this.procId; }

  private _bound(): IngestBatch {
    if (this._batch === undefined) throw new Error('not the event of a batch: see drainEvents');
    return this._batch;
  }

  get timestamp(): string {
    return (this._timestamp ??= timestampText(this.tsHead, this.tsZone, this.buf, this.tsStart, this.hostStart - 1));
  }

  /**
   * timestampMs(timestamp) without making the text: the head and offset strings are shared by
   * the lines of a body, so their time is computed once (lastHeadMs), and the milliseconds are
   * the fraction's first three digits (timestampMs floors the rest away).
   */
  get timeMs(): number {
    const head = this.tsHead;
    if (head.length !== TIMESTAMP_HEAD) return Number.NaN; // `-`
    const zone = this.tsZone;
    if (head !== lastHead || zone !== lastZone) {
      lastHeadMs = headBytesMs(this.buf, this.tsStart, zone);
      lastHead = head;
      lastZone = zone;
    }
    const buf = this.buf;
    const dot = this.tsStart + TIMESTAMP_HEAD;
    if (buf[dot] !== DOT) return lastHeadMs;
    // Digits run from dot + 1 to the offset (1–6 of them, checked by the parser).
    const digits = this.hostStart - 1 - zone.length - dot - 1;
    let ms = (buf[dot + 1]! - 0x30) * 100;
    if (digits >= 2) ms += (buf[dot + 2]! - 0x30) * 10;
    if (digits >= 3) ms += buf[dot + 3]! - 0x30;
    return lastHeadMs + ms;
  }

  get hostname(): string {
    return (this._hostname ??= internAscii(this.buf, this.hostStart, this.appStart - 1));
  }

  /**
   * The HOSTNAME the next lines this view is moved to are compared with as they are parsed (a
   * connection carries one drain token): `bytes` must be a HOSTNAME read from a line (1–255
   * printable bytes, no space), which the parser then trusts as valid. Kept across moves.
   */
  expectHostname(bytes: Buffer | undefined): void {
    this._expectHost = bytes;
    this._expectWords = bytes === undefined ? undefined : new ByteWords(bytes);
  }

  /** The bytes given to expectHostname, if any: what the parser compares HOSTNAME with. */
  get expectedHostname(): Buffer | undefined {
    return this._expectHost;
  }

  /** The expected HOSTNAME as the parser compares it (eight bytes at a time). */
  get expectedHostnameWords(): ByteWords | undefined {
    return this._expectWords;
  }

  /** Whether this line's HOSTNAME is the expected one (expectHostname), found by the parser. */
  get hostnameIsExpected(): boolean {
    return this._hostSame;
  }

  /** Whether HOSTNAME is these bytes, without making its string. */
  hostnameIs(bytes: Buffer): boolean {
    const start = this.hostStart;
    const n = this.appStart - 1 - start;
    if (n !== bytes.length) return false;
    const buf = this.buf;
    for (let i = n - 1; i >= 0; i--) if (buf[start + i] !== bytes[i]) return false;
    return true;
  }

  get appName(): string {
    return (this._appName ??= internAscii(this.buf, this.appStart, this.procStart - 1));
  }

  get procId(): string {
    return (this._procId ??= internAscii(this.buf, this.procStart, this.msgIdStart - 1));
  }

  get msgId(): string {
    const end = this.sdStart < 0 ? this.headerEnd : this.sdStart - 1;
    return (this._msgId ??= internAscii(this.buf, this.msgIdStart, end));
  }

  get structuredData(): string | undefined {
    if (this.sdStart < 0) return undefined;
    return this.buf.toString('latin1', this.sdStart, this.headerEnd);
  }

  get message(): string {
    // Buffer_toString keeps a leading BOM (TextDecoder would drop it) and replaces bad UTF-8.
    return (this._message ??= this.buf.toString('utf8', this.textStart, this._textEnd()));
  }

  /**
   * `message.includes(literal)` without decoding, needle = the literal's UTF-8 bytes (well-formed,
   * no U+FFFD): a valid sequence never starts on a continuation byte, so a bad byte before it cannot
   * swallow part of it, and its bytes are found exactly where the decoded text holds it.
   *
   * With a `scan` shared by the lines of one batch, one search serves every line up to the next
   * occurrence; without one, the search is bounded to this text (an unbounded `buf.indexOf` would
   * scan the rest of the body for every line).
   */
  messageIncludes(needle: Buffer, scan: LiteralScan | undefined = this._scan): boolean {
    const end = this._textEnd();
    if (scan !== undefined) return scan.includes(this.buf, needle, this.textStart, end);
    return this.buf.subarray(this.textStart, end).indexOf(needle) !== -1;
  }

  /** `message.startsWith(literal, at)` without decoding, `at` in bytes; see messageIncludes for the needle. */
  messageStartsWith(needle: Buffer, at = 0): boolean {
    const start = this.textStart + at;
    const n = needle.length;
    if (this._textEnd() - start < n) return false;
    const buf = this.buf;
    for (let j = 0; j < n; j++) if (buf[start + j] !== needle[j]) return false;
    return true;
  }

  /** DrainEvent's: the text's bytes handed to `read`, the text not made. */
  readMessageBytes<A, B, R>(read: (buf: Buffer, start: number, end: number, a: A, b: B) => R, a: A, b: B): R {
    return read(this.buf, this.textStart, this._textEnd(), a, b);
  }

  /** End of the text: without exactly one trailing LF, at most MAX_MESSAGE_BYTES. */
  private _textEnd(): number {
    let end = this.end;
    if (end > this.textStart && this.buf[end - 1] === LF) end--;
    return end - this.textStart > MAX_MESSAGE_BYTES ? this.textStart + MAX_MESSAGE_BYTES : end;
  }

  /** Plain data, so tests and logs see the fields rather than offsets. */
  toJSON(): Record<string, unknown> {
    return {
      pri: this.pri, timestamp: this.timestamp, hostname: this.hostname, appName: this.appName,
      procId: this.procId, msgId: this.msgId, structuredData: this.structuredData, message: this.message,
    };
  }
}

/*
 * HOSTNAME, APP-NAME, PROCID and MSGID repeat across lines (`host`, `heroku`, `router`, `web.1`):
 * a small direct-mapped table returns the string made for the same bytes last time instead of
 * making a new one. Keyed by length and a few bytes, checked byte for byte, so a collision only
 * costs a miss.
 */
const INTERN_SLOTS = 256;
const internStrings: (string | undefined)[] = new Array(INTERN_SLOTS).fill(undefined);
const internBytes: (Buffer | undefined)[] = new Array(INTERN_SLOTS).fill(undefined);
const MAX_INTERNED = 48;

function internAscii(buf: Buffer, start: number, end: number): string {
  const len = end - start;
  if (len > MAX_INTERNED || len <= 0) return buf.latin1Slice(start, end);
  const slot = (len * 31 + buf[start]! * 7 + buf[end - 1]! * 3 + buf[start + (len >> 1)]!) & (INTERN_SLOTS - 1);
  const known = internBytes[slot];
  if (known !== undefined && known.length === len) {
    let same = true;
    for (let i = 0; i < len; i++) {
      if (known[i] !== buf[start + i]) { same = false; break; }
    }
    if (same) return internStrings[slot]!;
  }
  const s = buf.latin1Slice(start, end);
  internBytes[slot] = Buffer.from(buf.subarray(start, end));
  internStrings[slot] = s;
  return s;
}
