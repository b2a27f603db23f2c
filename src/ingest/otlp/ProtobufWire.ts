/**
 * The protobuf wire format, read and written by hand for exactly what OTLP needs (see the README,
 * "Fir apps": @opentelemetry/otlp-transformer only encodes requests and decodes responses, and no
 * maintained npm package ships the OTLP schema for decoding). Reading covers varint, 64-bit,
 * length-delimited and 32-bit fields and skips unknown ones; groups (wire types 3/4) are not used
 * by any OTLP message and are refused. Every read is bounds-checked: a truncated or lying body
 * throws WireError, which the route answers 400.
 */
export class WireError extends Error {}

export const WIRE = Object.freeze({ varint: 0, fixed64: 1, len: 2, fixed32: 5 });

const decoder = new TextDecoder('utf-8');

export class WireReader {
  pos: number;
  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length) {
    this.pos = start;
  }

  more(): boolean {
    return this.pos < this.end;
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wire: number } {
    const t = this.varint();
    const field = Math.floor(t / 8);
    if (field === 0) throw new WireError('field number 0');
    return { field, wire: t % 8 };
  }

  /** An unsigned varint as a number (exact up to 2^53; OTLP's lengths, enums and counts fit). */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  /** An int64 varint (two's complement for negatives), exactly. */
  int64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asIntN(64, result);
      shift += 7n;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  private take(n: number): number {
    const at = this.pos;
    if (n > this.end - at) throw new WireError('field runs past the end of its message');
    this.pos += n;
    return at;
  }

  fixed64(): bigint {
    const at = this.take(8);
    return new DataView(this.buf.buffer, this.buf.byteOffset + at, 8).getBigUint64(0, true);
  }

  sfixed64(): bigint {
    return BigInt.asIntN(64, this.fixed64());
  }

  double(): number {
    const at = this.take(8);
    return new DataView(this.buf.buffer, this.buf.byteOffset + at, 8).getFloat64(0, true);
  }

  /** A length-delimited field as a reader over its bytes (an embedded message). */
  message(): WireReader {
    const n = this.varint();
    const at = this.take(n);
    return new WireReader(this.buf, at, at + n);
  }

  bytes(): Uint8Array {
    const n = this.varint();
    const at = this.take(n);
    return this.buf.subarray(at, at + n);
  }

  /** UTF-8 with U+FFFD for bad sequences (proto3 requires valid UTF-8; senders slip). */
  string(): string {
    return decoder.decode(this.bytes());
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE.varint: this.varint(); return;
      case WIRE.fixed64: this.take(8); return;
      case WIRE.len: this.take(this.varint()); return;
      case WIRE.fixed32: this.take(4); return;
      default: throw new WireError(`wire type ${wire} is not used by OTLP`);
    }
  }

  /** Calls `read` per field; `read` returns false for a field it does not want (then skipped). */
  fields(read: (field: number, wire: number) => boolean): void {
    while (this.more()) {
      const { field, wire } = this.tag();
      if (!read(field, wire)) this.skip(wire);
    }
  }
}

/** Checks the wire type of a known field: a field number with the wrong type is a broken body. */
export function expectWire(field: number, wire: number, want: number): void {
  if (wire !== want) throw new WireError(`field ${field}: wire type ${wire}, expected ${want}`);
}

/** The few bytes of an Export*ServiceResponse or google.rpc.Status, written by hand. */
export class WireWriter {
  readonly #parts: number[] = [];

  varint(field: number, value: number): this {
    this.#tag(field, WIRE.varint);
    this.#raw(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, WIRE.len);
    this.#raw(value.length);
    for (const b of value) this.#parts.push(b);
    return this;
  }

  finish(): Buffer {
    return Buffer.from(this.#parts);
  }

  #tag(field: number, wire: number): void {
    this.#raw(field * 8 + wire);
  }

  #raw(value: number): void {
    let v = value;
    while (v >= 0x80) {
      this.#parts.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.#parts.push(v);
  }
}
