import { newScanState, scanFrames, type ParsedBody, type ScanOptions, type ScanState } from './logplexFrames.js';

export interface LogplexStreamOptions {
  /** true (default) for syslog drains (`- -` after PROCID); false for HTTPS-drain framing. */
  readonly structuredData?: boolean;
  /** Frames declaring more bytes are dropped unread and reported as bad-length. */
  readonly maxFrameBytes?: number;
}

/** SPEC §6 keeps lines up to 64 KiB; 1 KiB more leaves room for the syslog header. */
export const DEFAULT_MAX_FRAME_BYTES = 65536 + 1024;

/**
 * Octet-counted frames from a byte stream (a syslog drain's TCP/TLS connection). Reads may cut a
 * frame anywhere, even inside its LEN. Only the unfinished tail of the stream is held, and it
 * never exceeds one frame of maxFrameBytes plus its LEN, whatever arrives.
 *
 * Messages are views over the bytes they came in; a buffer they view is never written again.
 */
export class LogplexStream {
  readonly #structuredData: boolean;
  readonly #maxFrameBytes: number;
  readonly #state: ScanState = newScanState();
  /** Unscanned tail: #pending[0, #pendingLength) starts at stream offset #offset. */
  #pending: Buffer | undefined;
  #pendingLength = 0;
  #offset = 0;
  #ended = false;

  constructor(opts: LogplexStreamOptions = {}) {
    this.#structuredData = opts.structuredData ?? true;
    this.#maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  push(chunk: Buffer): ParsedBody {
    const out: ParsedBody = { messages: [], errors: [], warnings: [] };
    if (this.#ended || chunk.length === 0) return out;
    let buf: Buffer;
    let length: number;
    if (this.#pending === undefined) {
      // Nothing held: scan the chunk itself, no copy.
      buf = chunk;
      length = chunk.length;
    } else {
      this.#append(chunk);
      buf = this.#pending;
      length = this.#pendingLength;
    }
    this.#scan(buf, length, false, out);
    return out;
  }

  /** No more bytes: whatever is held is an incomplete frame and is reported. */
  end(): ParsedBody {
    const out: ParsedBody = { messages: [], errors: [], warnings: [] };
    if (this.#ended) return out;
    this.#ended = true;
    if (this.#pending !== undefined) this.#scan(this.#pending, this.#pendingLength, true, out);
    this.#pending = undefined;
    this.#pendingLength = 0;
    return out;
  }

  #scan(buf: Buffer, length: number, final: boolean, out: ParsedBody): void {
    const opts: ScanOptions = { structuredData: this.#structuredData, final, maxFrameBytes: this.#maxFrameBytes, base: this.#offset };
    const stop = scanFrames(buf, 0, length, opts, this.#state, out);
    this.#offset += stop;
    const rest = length - stop;
    if (rest === 0) {
      this.#pending = undefined;
      this.#pendingLength = 0;
    } else if (stop > 0 || buf !== this.#pending) {
      // Messages may view `buf`: the tail moves to a fresh buffer rather than over them.
      const next = Buffer.allocUnsafe(Math.max(rest * 2, 4096));
      buf.copy(next, 0, stop, length);
      this.#pending = next;
      this.#pendingLength = rest;
    }
  }

  #append(chunk: Buffer): void {
    const pending = this.#pending!;
    const needed = this.#pendingLength + chunk.length;
    if (needed > pending.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, pending.length * 2));
      pending.copy(grown, 0, 0, this.#pendingLength);
      this.#pending = grown;
    }
    chunk.copy(this.#pending!, this.#pendingLength);
    this.#pendingLength = needed;
  }
}
