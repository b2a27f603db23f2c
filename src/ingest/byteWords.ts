/**
 * Byte runs compared eight bytes at a time. The header parser compares the same runs on every
 * line (the connection's drain token, the timestamp's head and offset); a loop over Buffer
 * elements cost about one nanosecond a byte there (a third of the header's time), where a
 * DataView read compares eight.
 *
 * The words are float64s so that one read and one compare cover eight bytes (a BigInt read
 * allocates; two uint32 reads cost twice the loads). Float equality is bit equality for every
 * value but NaN and ±0, and a run whose word would be one of those is compared byte by byte.
 */

let viewBuf: Buffer | undefined;
let view: DataView = new DataView(new ArrayBuffer(8));

/**
 * A DataView over buf, made once for the buffer a parse is moving through (a socket read, a
 * body): the lines of one buffer share it. The last buffer stays referenced until the next
 * one comes (one read or body at most).
 */
export function dataViewOf(buf: Buffer): DataView {
  if (buf !== viewBuf) {
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    viewBuf = buf;
  }
  return view;
}

/** A fixed run of bytes (copied: the words would not follow a change) and its words. */
export class ByteWords {
  readonly bytes: Buffer;
  readonly length: number;
  /** The words at 0, 8, 16, … and the last one ending at `length` (it may overlap the one before). */
  readonly #words: Float64Array;
  /** Eight bytes or more, and no word NaN or ±0. */
  readonly #byWords: boolean;

  constructor(bytes: Buffer) {
    this.bytes = Buffer.from(bytes);
    const n = (this.length = bytes.length);
    const count = n < 8 ? 0 : Math.ceil(n / 8);
    this.#words = new Float64Array(count);
    const dv = new DataView(this.bytes.buffer, this.bytes.byteOffset, n);
    let exact = count > 0;
    for (let k = 0; k < count; k++) {
      const w = dv.getFloat64(Math.min(k * 8, n - 8), true);
      if (Number.isNaN(w) || w === 0) exact = false;
      this.#words[k] = w;
    }
    this.#byWords = exact;
  }

  /** Whether buf (seen through dv, dataViewOf(buf)) holds these bytes at `at`; the caller checked that they fit. */
  at(dv: DataView, buf: Buffer, at: number): boolean {
    const n = this.length;
    if (this.#byWords) {
      const words = this.#words;
      const last = words.length - 1;
      for (let k = 0; k < last; k++) if (dv.getFloat64(at + k * 8, true) !== words[k]) return false;
      return dv.getFloat64(at + n - 8, true) === words[last];
    }
    const bytes = this.bytes;
    for (let j = 0; j < n; j++) if (buf[at + j] !== bytes[j]) return false;
    return true;
  }
}
