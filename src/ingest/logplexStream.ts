import { BufferedSyslogMessage, LiteralScan, MAX_MESSAGE_BYTES } from './SyslogMessage.js';
import { MAX_LEN_DIGITS, newScanState, scanFrames, type ParsedBody, type ScanOptions, type ScanState } from './logplexFrames.js';

export interface LogplexStreamOptions {
  /** true (default) for syslog drains (`- -` after PROCID); false for HTTPS-drain framing. */
  readonly structuredData?: boolean;
  /** A frame declaring more bytes is broken (bad-length): refused before it is buffered. */
  readonly maxFrameBytes?: number;
  /**
   * Which lines become messages (default: all). Shown each line that parses as a moving view (its
   * header fields and byte tests; not to be kept): a line no consumer can want costs a header
   * read and this call, no object. Lines it passes over are still framed and checked alike.
   */
  readonly keep?: (line: BufferedSyslogMessage) => boolean;
}

/** SPEC §6 keeps lines up to 64 KiB; 1 KiB more leaves room for the syslog header. */
export const DEFAULT_MAX_FRAME_BYTES = MAX_MESSAGE_BYTES + 1024;

/**
 * Octet-counted frames from a byte stream (a syslog drain's TCP/TLS connection). Reads may cut a
 * frame anywhere, even inside its LEN. Only the unfinished tail of the stream is held, and it
 * never exceeds one frame of maxFrameBytes plus its LEN, whatever arrives.
 *
 * Messages are views over the bytes they came in; a buffer they view is never written again.
 *
 * After a broken frame the stream is `broken`: nothing more is read from it (see logplexFrames.ts
 * for why no reader can tell where the next frame starts), and its owner closes the connection so
 * that logplex reconnects and starts again on a frame boundary.
 */
export class LogplexStream {
  readonly #structuredData: boolean;
  readonly #maxFrameBytes: number;
  readonly #keep: ((line: BufferedSyslogMessage) => boolean) | undefined;
  readonly #view = BufferedSyslogMessage.view();
  readonly #state: ScanState = newScanState();
  /**
   * Unscanned bytes are #pending[#start, #length), starting at stream offset #offset. Bytes below
   * #length are never written again (messages may view them): new bytes go after #length, and
   * when the buffer is full the live part moves to a new one twice its size, so each byte is
   * copied O(1) times whatever the read sizes.
   */
  #pending: Buffer | undefined;
  #start = 0;
  #length = 0;
  #offset = 0;
  #ended = false;

  constructor(opts: LogplexStreamOptions = {}) {
    this.#structuredData = opts.structuredData ?? true;
    this.#maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#keep = opts.keep;
  }

  /** Bytes held for an unfinished frame: at most about maxFrameBytes, whatever was pushed. */
  get bufferedBytes(): number {
    return this.#length - this.#start;
  }

  /** A frame did not parse: every byte from it on is dropped. */
  get broken(): boolean {
    return this.#state.broken;
  }

  push(chunk: Buffer): ParsedBody {
    const out: ParsedBody = { messages: [], errors: [], warnings: [] };
    if (this.#ended || this.#state.broken || chunk.length === 0) return out;
    let pos = 0;
    // A frame cut by the previous read: only the bytes that finish it join the held tail, so the
    // rest of the chunk is scanned where it lies instead of being copied behind the tail.
    while (this.#pending !== undefined && pos < chunk.length) {
      const take = Math.min(this.#tailNeeds(), chunk.length - pos);
      this.#append(chunk, pos, pos + take);
      pos += take;
      this.#scan(false, out);
      if (this.#state.broken) return out;
    }
    if (pos < chunk.length) {
      // Nothing held: scan the chunk itself, no copy.
      this.#pending = chunk;
      this.#start = pos;
      this.#length = chunk.length;
      this.#scan(false, out);
      // Keep only the unfinished tail, not the whole chunk it sits in.
      if (this.#pending === chunk) this.#moveLive(Math.max(2 * (this.#length - this.#start), 4096));
    }
    return out;
  }

  /**
   * How many more bytes the held tail (an unfinished frame) needs before a scan can get further:
   * the rest of its frame once its LEN is known, else enough to end the longest LEN allowed.
   */
  #tailNeeds(): number {
    const buf = this.#pending!;
    let i = this.#start;
    let len = 0;
    while (i < this.#length) {
      const d = buf[i]! - 0x30;
      if (d < 0 || d > 9) break;
      len = len * 10 + d;
      i++;
    }
    const held = this.#length - this.#start;
    // No SP yet (the scan stopped inside LEN): up to MAX_LEN_DIGITS digits and the SP.
    if (i >= this.#length || buf[i] !== 0x20) return Math.max(1, MAX_LEN_DIGITS + 1 - held);
    return Math.max(1, i + 1 - this.#start + len - held);
  }

  /** No more bytes: whatever is held is an incomplete frame and is reported. */
  end(): ParsedBody {
    const out: ParsedBody = { messages: [], errors: [], warnings: [] };
    if (this.#ended) return out;
    this.#ended = true;
    if (this.#pending !== undefined) this.#scan(true, out);
    this.#pending = undefined;
    this.#start = this.#length = 0;
    return out;
  }

  #scan(final: boolean, out: ParsedBody): void {
    const buf = this.#pending!;
    const opts: ScanOptions = {
      structuredData: this.#structuredData, final, maxFrameBytes: this.#maxFrameBytes, base: this.#offset - this.#start,
      lineEnds: this.#structuredData,
      // A literal scan per buffer scanned: its bytes do not change while the view crosses them.
      filter: this.#keep === undefined ? undefined : { view: this.#view, scan: new LiteralScan(), keep: this.#keep },
    };
    const stop = scanFrames(buf, this.#start, this.#length, opts, this.#state, out);
    this.#offset += stop - this.#start;
    this.#start = stop;
    if (stop === this.#length) {
      this.#pending = undefined;
      this.#start = this.#length = 0;
    }
  }

  #append(chunk: Buffer, from: number, to: number): void {
    const n = to - from;
    if (this.#length + n > this.#pending!.length) {
      this.#moveLive(Math.max(2 * (this.#length - this.#start + n), 4096));
    }
    chunk.copy(this.#pending!, this.#length, from, to);
    this.#length += n;
  }

  /** The live bytes to a new buffer of `capacity`; the old one stays as it is for its messages. */
  #moveLive(capacity: number): void {
    if (this.#pending === undefined) return;
    const next = Buffer.allocUnsafe(capacity);
    this.#pending.copy(next, 0, this.#start, this.#length);
    this.#length -= this.#start;
    this.#start = 0;
    this.#pending = next;
  }
}
