import { describe, expect, it } from 'vitest';
import { LogplexStream } from '../../src/ingest/logplexStream.js';
import type { ParsedBody } from '../../src/ingest/logplexFrames.js';
import { fieldsOf, randomChunks, seededRandom, syslogStream } from './sampleBodies.js';

function feed(stream: LogplexStream, chunks: Buffer[]): ParsedBody {
  const all: ParsedBody = { messages: [], errors: [], warnings: [] };
  for (const r of [...chunks.map((c) => stream.push(c)), stream.end()]) {
    all.messages.push(...r.messages);
    all.errors.push(...r.errors);
    all.warnings.push(...r.warnings);
    all.droppedFrom ??= r.droppedFrom;
  }
  return all;
}

describe('LogplexStream', () => {
  const sample = syslogStream();

  it('reads syslog-stream.bin whole', () => {
    const r = feed(new LogplexStream(), [sample.bytes]);
    expect(r.messages.map((m) => fieldsOf(m, true))).toEqual(sample.expected);
    expect(r.errors).toEqual([]);
  });

  it('holds only the unfinished frame when a read finishes a cut frame and carries many more', () => {
    const frame = (n: number) => {
      const msg = `<134>1 2024-01-01T00:00:00+00:00 d.8c1e5c1a-1d2e-4a47-9d6f-0b3a4c5d6e7f app web.1 - - line ${n}\n`;
      return Buffer.from(`${Buffer.byteLength(msg)} ${msg}`);
    };
    const frames = Array.from({ length: 200 }, (_, n) => frame(n));
    const bytes = Buffer.concat(frames);
    const stream = new LogplexStream();
    // Cut inside frame 0's LEN, then inside frame 1, then a big read that ends inside frame 199.
    const cuts = [1, frames[0]!.length + 10, bytes.length - 5];
    const got: string[] = [];
    let from = 0;
    for (const cut of cuts) {
      for (const m of stream.push(bytes.subarray(from, cut)).messages) got.push(m.message);
      from = cut;
    }
    expect(stream.bufferedBytes).toBe(frames[199]!.length - 5);
    for (const m of stream.push(bytes.subarray(from)).messages) got.push(m.message);
    expect(stream.bufferedBytes).toBe(0);
    expect(got).toEqual(frames.map((_, n) => `line ${n}`));
    expect(stream.end().errors).toEqual([]);
  });

  it.each([1, 2, 3, 7, 64, 300, 4096])('reads syslog-stream.bin in random pieces of up to %i bytes', (max) => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = feed(new LogplexStream(), randomChunks(sample.bytes, seededRandom(seed * 7919 + max), max));
      expect(r.messages.map((m) => fieldsOf(m, true))).toEqual(sample.expected);
      expect(r.errors).toEqual([]);
      expect(r.warnings).toEqual([]);
    }
  });

  it('messages stay intact after later reads reuse nothing they view', () => {
    const stream = new LogplexStream();
    const held = [];
    for (const c of randomChunks(sample.bytes, seededRandom(42), 50)) held.push(...stream.push(c).messages);
    // Read lazily only now, after every chunk went through the stream.
    expect(held.map((m) => fieldsOf(m, true))).toEqual(sample.expected);
  });

  it('refuses a frame over maxFrameBytes without buffering it, and reads nothing after it', () => {
    const stream = new LogplexStream({ maxFrameBytes: 1000 });
    const big = Buffer.alloc(50_000, 0x61);
    const head = Buffer.from(`${big.length} `);
    const good = sample.bytes.subarray(0, 299); // first frame: `295 ` + 295 bytes
    const r = feed(stream, [good, head, ...randomChunks(big, seededRandom(3), 999), good]);
    expect(r.errors).toEqual([{ offset: 299, kind: 'bad-length' }]);
    expect(r.droppedFrom).toBe(299);
    expect(r.messages.map((m) => m.procId)).toEqual(['router']);
    expect(stream.broken).toBe(true);
    expect(stream.bufferedBytes).toBe(0);
  });

  it('holds at most about one frame whatever arrives, in whatever pieces', () => {
    const max = 2000;
    const inputs: Array<[string, Buffer]> = [
      ['endless digits', Buffer.alloc(200_000, 0x31)],
      ['a frame that never completes', Buffer.concat([Buffer.from('1999 <190>1 '), Buffer.alloc(200_000, 0x78)])],
      ['back-to-back resync candidates', Buffer.from('x 1999 <'.repeat(25_000))],
      ['oversized LENs', Buffer.from('99999 <'.repeat(30_000))],
    ];
    for (const [name, bytes] of inputs) {
      const stream = new LogplexStream({ maxFrameBytes: max });
      let most = 0;
      for (const piece of randomChunks(bytes, seededRandom(bytes.length), 700)) {
        stream.push(piece);
        most = Math.max(most, stream.bufferedBytes);
      }
      expect(most, name).toBeLessThanOrEqual(max + 10);
      stream.end();
      expect(stream.bufferedBytes, name).toBe(0);
    }
  });

  it('reports an incomplete last frame at end()', () => {
    const stream = new LogplexStream();
    const cut = sample.bytes.subarray(0, 400);
    const r = feed(stream, [cut]);
    expect(r.messages).toHaveLength(1);
    expect(r.errors).toEqual([{ offset: 299, kind: 'overrun' }]);
  });

  it('after garbage, reads nothing more from the stream, whatever frames follow and however they are cut', () => {
    const garbage = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const bytes = Buffer.concat([sample.bytes.subarray(0, 299), garbage, sample.bytes]);
    for (let seed = 1; seed <= 10; seed++) {
      const stream = new LogplexStream();
      const r = feed(stream, randomChunks(bytes, seededRandom(seed), 40));
      expect(r.messages.map((m) => fieldsOf(m, true))).toEqual(sample.expected.slice(0, 1));
      expect(r.errors).toEqual([{ offset: 299, kind: 'no-length' }]);
      expect(stream.broken).toBe(true);
    }
  });

  it('reads RFC 5424 structured data on syslog drains, and refuses a text where SD belongs', () => {
    const tok = 'd.4f0b6c1e-8a2d-4e57-9b3c-6d1a2e7f9c05';
    const msgs = [
      `<190>1 2024-11-14T03:12:07Z ${tok} app web.1 - [ex@32473 iut="3" note="a \\"q\\" ]"][b@1] hi\n`,
      `<190>1 2024-11-14T03:12:07Z ${tok} app web.1 - hello world\n`,
      `<190>1 2024-11-14T03:12:07Z ${tok} app web.1 - -\n`,
    ];
    const bytes = Buffer.from(msgs.map((m) => `${Buffer.byteLength(m)} ${m}`).join(''));
    const r = feed(new LogplexStream(), [bytes]);
    // The second is refused (its text sits where SD belongs), and what follows it is not read.
    expect(r.messages.map((m) => [m.structuredData, m.message])).toEqual([
      ['[ex@32473 iut="3" note="a \\"q\\" ]"][b@1]', 'hi'],
    ]);
    expect(r.errors).toEqual([{ offset: Buffer.byteLength(msgs[0]!) + 4, kind: 'bad-header' }]);
  });

  it('reads HTTPS framing when told there is no structured data', () => {
    const msg = '<190>1 2024-11-14T03:12:07Z host app web.1 - hi\n';
    const r = feed(new LogplexStream({ structuredData: false }), [Buffer.from(`${Buffer.byteLength(msg)} ${msg}`)]);
    expect(r.messages.map((m) => [m.structuredData, m.message])).toEqual([[undefined, 'hi']]);
  });
});
