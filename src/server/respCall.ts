import { Command } from 'ioredis';

/**
 * A script call encoded straight into RESP bytes, sent as an ioredis command whose wire form is
 * those bytes. A drain body's call has ~90 arguments (~3.3 KB); ioredis would copy the argument
 * array twice (`flat`, stringify), measure each string's UTF-8 length (`Buffer.byteLength`),
 * concatenate every argument with its header into one string, concatenate the calls of a
 * pipeline into another and encode that to UTF-8 at the socket write: ~17 KB of garbage per body
 * and the second-largest Node cost of the call after the write itself (bench/support/bodyCut.ts).
 * Here each argument is written once, as UTF-8, straight into a shared slab the call keeps a slice of.
 *
 * The reply path is ioredis's own (the command queue, the reply decoder, timeouts, resending
 * unanswered commands after a reconnect: the command keeps its bytes). What ioredis's Script does
 * for a script is kept too: the first call on a socket is sent as EVAL with the script's text
 * (later ones as EVALSHA), and a NOSCRIPT reply makes the next call on that socket an EVAL again;
 * the caller resends the refused call (BodyFlush).
 */
export interface ScriptText {
  readonly lua: string;
  readonly sha: string;
}

/** Sockets a script is known to be loaded on (ioredis's Script keeps the same per script). */
const loadedOn = new WeakMap<ScriptText, WeakSet<object>>();

/**
 * Calls are written straight into a shared slab and each keeps its slice of it, so a call costs
 * no buffer of its own (a Buffer over 4 KiB is not pooled by Node: a fresh backing store each)
 * and no copy. A slice holds its slab until the call is written and answered; a call that would
 * not fit in what is left starts a new slab. One that is not ASCII and may take more than a
 * quarter slab, or is larger than a slab, is written into a scratch buffer and copied out at its
 * exact size.
 */
const SLAB_BYTES = 256 << 10;
let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;
let scratch = Buffer.allocUnsafe(64 << 10);

/**
 * `\r\n$<n>\r\n` for the lengths met so far, below SEPARATOR_CACHE: an array with holes, kept
 * below V8's gap of 1 024 past its end at which an array becomes a dictionary.
 */
const SEPARATOR_CACHE = 1024;
const SEPARATORS: string[] = [];
function separator(n: number): string {
  if (n >= SEPARATOR_CACHE) return `\r\n$${n}\r\n`;
  let s = SEPARATORS[n];
  if (s === undefined) {
    s = `\r\n$${n}\r\n`;
    SEPARATORS[n] = s;
  }
  return s;
}

/** Writes `n` (≥ 0) in decimal at `at`; returns the offset after it. */
function writeDecimal(buf: Buffer, at: number, n: number): number {
  const len = decimalLength(n);
  for (let i = at + len - 1; i >= at; i--) {
    buf[i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + len;
}

function decimalLength(n: number): number {
  let len = 1;
  while (n >= 10) { n = Math.floor(n / 10); len++; }
  return len;
}

/**
 * `*N $7 evalsha $40 <sha>` then each argument as a RESP bulk string. `restAt`: where the
 * arguments start (the EVAL form replaces what comes before).
 */
export function encodeScriptCall(script: ScriptText, args: readonly (string | number)[]): { bytes: Buffer; restAt: number } {
  const head = `*${args.length + 2}\r\n$7\r\nevalsha\r\n$${script.sha.length}\r\n${script.sha}\r\n`;
  const restAt = head.length;
  // The whole call as one text written at once, with each argument's length its UTF-16 length:
  // one native write instead of one per argument (~70 per drain body, each a C++ call that cost
  // more than the bytes it wrote). Right when every character is ASCII, which the written byte
  // count tells (any other character takes more bytes than its UTF-16 units); else redone below.
  // Two additions an argument: the piece between two arguments, `\r\n$<length>\r\n`, is made
  // once per length (SEPARATORS), then the argument. A template of five pieces an argument was
  // four additions, most of them of short strings (each a fresh flat copy) and the length's text:
  // 1 742 375 against 1 578 744–1 620 263 instructions a syslog call (syslogBatches.ts --encode,
  // callgrind; runs of one tree move by ~2 %).
  // Tried: the pieces in an array and one join: 1 715 252 (pushed) and 1 773 776 (a sized array).
  let text = head.slice(0, -2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const s = typeof a === 'string' ? a : String(a);
    text += separator(s.length);
    text += s;
  }
  text += '\r\n';
  // Into the slab when its ASCII length fits there, whatever the worst case of its UTF-8 (a
  // syslog batch's ~47 KB call would be over the quarter slab at 3 bytes a unit, then copied).
  // The write stops short only when what is left of the slab cannot take the next character (4
  // bytes at most), so with 4 left past the ASCII length, as many bytes as characters means
  // every character was written, each as one byte.
  if (text.length + 4 <= SLAB_BYTES) {
    if (slabUsed + text.length + 4 > SLAB_BYTES) {
      slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      slabUsed = 0;
    }
    const n = slab.write(text, slabUsed, 'utf8');
    if (n === text.length) return sliced(slab, slabUsed, slabUsed + n, restAt);
  }
  // UTF-8 takes at most 3 bytes per UTF-16 unit; a number's text at most 24 characters.
  let cap = 64 + script.sha.length;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    cap += (typeof a === 'string' ? a.length * 3 : 24) + 16;
  }
  let buf: Buffer;
  let start: number;
  if (cap <= SLAB_BYTES >> 2) {
    if (slabUsed + cap > SLAB_BYTES) {
      slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      slabUsed = 0;
    }
    buf = slab;
    start = slabUsed;
  } else {
    if (scratch.length < cap) scratch = Buffer.allocUnsafe(Math.max(cap, scratch.length * 2));
    buf = scratch;
    start = 0;
  }
  let o = start + buf.write(head, start, 'latin1');
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const s = typeof a === 'string' ? a : String(a);
    // The text is written where it goes if its UTF-8 length is its UTF-16 length (ASCII, nearly
    // always), so it is written once; otherwise it is moved to after the longer length's digits.
    const guessed = decimalLength(s.length);
    const at = o + 1 + guessed + 2;
    const n = s.length === 0 ? 0 : buf.write(s, at, 'utf8');
    const digits = n === s.length ? guessed : decimalLength(n);
    if (digits !== guessed) buf.copyWithin(o + 1 + digits + 2, at, at + n);
    buf[o] = 36; // '$'
    o = writeDecimal(buf, o + 1, n);
    buf[o++] = 13;
    buf[o++] = 10;
    o += n;
    buf[o++] = 13;
    buf[o++] = 10;
  }
  return sliced(buf, start, o, restAt);
}

/** The call's bytes `start..o` of `buf` (the slab's slice, or a copy of the scratch). */
function sliced(buf: Buffer, start: number, o: number, restAt: number): { bytes: Buffer; restAt: number } {
  if (buf === slab) {
    // The next call starts at the next 8-byte boundary.
    slabUsed = (o + 7) & ~7;
    return { bytes: buf.subarray(start, o), restAt };
  }
  // Its own copy: the socket may hold the bytes until written, the scratch is the next call's.
  const bytes = Buffer.allocUnsafe(o);
  buf.copy(bytes, 0, 0, o);
  return { bytes, restAt };
}

/** An encoded script call as an ioredis command (`redis.sendCommand`, or a pipeline's). */
export class ScriptCallCommand extends Command {
  /** The socket it was last written to: a NOSCRIPT reply forgets the script there. */
  socket: object | undefined;

  /** `binary`: a bulk reply as a Buffer (the defined command's Buffer form), else as a string. */
  constructor(private readonly script: ScriptText, private readonly bytes: Buffer, private readonly restAt: number, private readonly argCount: number, private readonly binary = false) {
    super('evalsha', [], { replyEncoding: binary ? null : 'utf8' });
  }

  override toWritable(socket: object): Buffer {
    this.socket = socket;
    let loaded = loadedOn.get(this.script);
    if (loaded === undefined) {
      loaded = new WeakSet();
      loadedOn.set(this.script, loaded);
    }
    if (loaded.has(socket)) return this.bytes;
    loaded.add(socket);
    const { lua } = this.script;
    const head = `*${this.argCount + 2}\r\n$4\r\neval\r\n$${Buffer.byteLength(lua)}\r\n${lua}\r\n`;
    return Buffer.concat([Buffer.from(head, 'utf8'), this.bytes.subarray(this.restAt)]);
  }

  /** Told a NOSCRIPT reply: the next call on that socket sends the script's text. */
  scriptGone(): void {
    if (this.socket !== undefined) loadedOn.get(this.script)?.delete(this.socket);
  }

  /** The same call as a fresh command (a resend after NOSCRIPT). */
  again(): ScriptCallCommand {
    return new ScriptCallCommand(this.script, this.bytes, this.restAt, this.argCount, this.binary);
  }
}

export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.includes('NOSCRIPT');
}
