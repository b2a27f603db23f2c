import { BufferedSyslogMessage, type LiteralScan } from './SyslogMessage.js';
import { readTimestamp, timestampParts } from './syslogTimestamp.js';
import { LINE_ROUTER, lineClassAt } from './lineClass.js';
import { ByteWords, dataViewOf } from './byteWords.js';

/**
 * The header logplex writes in front of every line, read from bytes:
 *
 *   HTTPS drain:  <PRI>1 TIMESTAMP host APP-NAME PROCID MSGID TEXT
 *   syslog drain: <PRI>1 TIMESTAMP d.<token> APP-NAME PROCID MSGID SD TEXT
 *
 * HTTPS drains carry no STRUCTURED-DATA and no NILVALUE in its place (logplex
 * doc/README.http_drains.md); a reader that expects SD there eats the first word of the text. The
 * transport decides, never the bytes: an app can print `- -` or `[x]` at the start of its line.
 */
export interface SyslogHeaderOptions {
  /** true for syslog (TCP/TLS) drains, false for HTTPS drains. */
  readonly structuredData: boolean;
}

const SP = 0x20;
const LT = 0x3c;
const GT = 0x3e;
const DASH = 0x2d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const EQUALS = 0x3d;
const LF = 0x0a;

// RFC 5424 §6 field lengths: they also bound how far a bad candidate is read while resynchronising.
const MAX_HOSTNAME = 255;
const MAX_APP_NAME = 48;
const MAX_PROCID = 128;
const MAX_MSGID = 32;
// logplex sends `-`; a long SD is not a Heroku frame and would make resync scans quadratic.
const MAX_STRUCTURED_DATA = 2048;

/** APP-NAME, PROCID and MSGID of a router line and the space after each (MSGID's then starts SD or the text). */
const ROUTER_FIELDS = new ByteWords(Buffer.from('heroku router - ', 'latin1'));
const ROUTER_PROCID = 'heroku '.length;
const ROUTER_MSGID = 'heroku router '.length;

/**
 * The first eight bytes of the last two frames whose `<PRI>VERSION ` was read (NaN: none yet, and
 * NaN never equals a word), that PRI, and where the timestamp starts after them. In typed arrays:
 * a double stored in a module variable is a new heap number each time.
 */
const priHeads = new Float64Array([Number.NaN, Number.NaN]);
/** Per slot: the PRI, and the prefix's length. */
const priValues = new Int32Array(4);

/**
 * The message in buf[start, end) (one frame's MSG), or undefined when it is not a logplex syslog
 * header. With `into` (a view: BufferedSyslogMessage.view()) nothing is allocated: the view is
 * moved to this line, its literal tests over `scan`, and returned.
 */
export function parseSyslogHeader(buf: Buffer, start: number, end: number, opts: SyslogHeaderOptions, into?: BufferedSyslogMessage, scan?: LiteralScan): BufferedSyslogMessage | undefined {
  let i = start;
  let pri: number;
  const dv = dataViewOf(buf);
  // `<PRI>VERSION ` as the last lines of one of the two PRIs seen last (router and app lines
  // alternate): eight bytes from the frame's start equal to bytes already read need no second read.
  const frameHead = end - start >= 8 ? dv.getFloat64(start, true) : Number.NaN;
  if (frameHead === priHeads[0]) {
    pri = priValues[0]!;
    i += priValues[1]!;
  } else if (frameHead === priHeads[1]) {
    pri = priValues[2]!;
    i += priValues[3]!;
  } else {
    // <PRI>
    if (end - i < 4 || buf[i] !== LT) return undefined;
    i++;
    pri = 0;
    const priStart = i;
    while (i < end && i - priStart < 4) {
      const c = buf[i]!;
      if (c < 0x30 || c > 0x39) break;
      pri = pri * 10 + (c - 0x30);
      i++;
    }
    const priDigits = i - priStart;
    if (priDigits === 0 || priDigits > 3 || pri > 191 || (priDigits > 1 && buf[priStart] === 0x30)) return undefined;
    if (i >= end || buf[i] !== GT) return undefined;
    i++;
    // VERSION: 1–2 digits, no leading zero (logplex: always 1)
    const vStart = i;
    while (i < end && i - vStart < 3 && isDigit(buf[i]!)) i++;
    if (i === vStart || i - vStart > 2 || buf[vStart] === 0x30 || i >= end || buf[i] !== SP) return undefined;
    i++;
    // NaN (fewer than eight bytes, or bytes that read as one) never equals: no slot for it. The
    // leading `<` keeps a word from being ±0.
    if (!Number.isNaN(frameHead)) {
      priHeads[1] = priHeads[0]!;
      priValues[2] = priValues[0]!;
      priValues[3] = priValues[1]!;
      priHeads[0] = frameHead;
      priValues[0] = pri;
      priValues[1] = i - start;
    }
  }

  const tsStart = i;
  i = readTimestamp(buf, i, end, dv);
  if (i < 0) return undefined;
  const { head, zone } = timestampParts;
  const hostStart = ++i;
  // A view expecting a HOSTNAME (the connection's drain token) compares while it reads: bytes
  // equal to a HOSTNAME already read are valid, so a match needs no second walk; a mismatch reads
  // the field afresh.
  const expected = into?.expectedHostnameWords;
  let hostSame = false;
  if (expected !== undefined && end - i > expected.length && hostnameAt(dv, buf, i, expected)) {
    hostSame = true;
    i += expected.length;
  } else {
    i = fieldEnd(buf, i, end, MAX_HOSTNAME);
    if (i < 0) return undefined;
  }
  const appStart = ++i;
  let procStart: number;
  let msgIdStart: number;
  let lineClass: number;
  if (end - i > ROUTER_FIELDS.length && ROUTER_FIELDS.at(dv, buf, i)) {
    // What the field reads below find for these bytes, in two compares: most of a drain is router lines.
    procStart = appStart + ROUTER_PROCID;
    msgIdStart = appStart + ROUTER_MSGID;
    i = appStart + ROUTER_FIELDS.length - 1;
    lineClass = LINE_ROUTER;
  } else {
    i = fieldEnd(buf, i, end, MAX_APP_NAME);
    if (i < 0) return undefined;
    procStart = ++i;
    i = fieldEnd(buf, i, end, MAX_PROCID);
    if (i < 0) return undefined;
    msgIdStart = ++i;
    // MSGID may be the last thing in the frame (an empty line whose space was lost).
    i = lastFieldEnd(buf, i, end, MAX_MSGID);
    if (i < 0) return undefined;
    lineClass = lineClassAt(buf, appStart, procStart - 1, procStart, msgIdStart - 1);
  }

  let sdStart = -1;
  if (opts.structuredData) {
    if (i >= end || buf[i] !== SP) return undefined;
    sdStart = ++i;
    i = structuredDataEnd(buf, i, end);
    if (i < 0) return undefined;
  }
  const headerEnd = i;
  let textStart: number;
  if (i >= end) textStart = end;
  else if (buf[i] === SP) textStart = i + 1;
  else if (buf[i] === LF) textStart = i;
  else return undefined;

  if (into !== undefined) return into.moveTo(pri, lineClass, head, zone, buf, tsStart, hostStart, appStart, procStart, msgIdStart, sdStart, headerEnd, textStart, end, scan, hostSame);
  return new BufferedSyslogMessage(pri, lineClass, head, zone, buf, tsStart, hostStart, appStart, procStart, msgIdStart, sdStart, headerEnd, textStart, end);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Whether buf holds `expected` then a space at i (the caller checked that the bytes are there). */
function hostnameAt(dv: DataView, buf: Buffer, i: number, expected: ByteWords): boolean {
  return buf[i + expected.length] === SP && expected.at(dv, buf, i);
}

/** End (the space) of a 1..max byte field of printable ASCII, or -1. */
function fieldEnd(buf: Buffer, i: number, end: number, max: number): number {
  const start = i;
  const limit = Math.min(end, start + max + 1);
  while (i < limit) {
    const c = buf[i]!;
    // One compare for the common case: printable ASCII other than space.
    if (c - 0x21 >>> 0 > 0x5d) return c === SP && i !== start ? i : -1;
    i++;
  }
  return -1;
}

/** Like fieldEnd, but the field may also end at the end of the frame or at its LF. */
function lastFieldEnd(buf: Buffer, i: number, end: number, max: number): number {
  const start = i;
  const limit = Math.min(end, start + max + 1);
  while (i < limit) {
    const c = buf[i]!;
    if (c === SP || c === LF) return i === start ? -1 : i;
    if (c < 0x21 || c > 0x7e) return -1;
    i++;
  }
  return i === end && i > start && i - start <= max ? i : -1;
}

/** `-` or one or more `[id param="value" ...]` elements (RFC 5424 §6.3); returns its end or -1. */
function structuredDataEnd(buf: Buffer, i: number, end: number): number {
  if (i >= end) return -1;
  if (buf[i] === DASH) {
    const next = i + 1;
    return next >= end || buf[next] === SP || buf[next] === LF ? next : -1;
  }
  const limit = Math.min(end, i + MAX_STRUCTURED_DATA);
  while (i < limit && buf[i] === LBRACKET) {
    i++;
    let inValue = false;
    for (;;) {
      if (i >= limit) return -1;
      const c = buf[i]!;
      if (inValue) {
        if (c === BACKSLASH) i++;
        else if (c === QUOTE) inValue = false;
      } else if (c === QUOTE) {
        if (buf[i - 1] !== EQUALS) return -1;
        inValue = true;
      } else if (c === RBRACKET) {
        i++;
        break;
      } else if (c < 0x20 || c > 0x7e) {
        return -1;
      }
      i++;
    }
  }
  if (i === limit && limit < end) return -1;
  return i >= end || buf[i] === SP || buf[i] === LF ? i : -1;
}
