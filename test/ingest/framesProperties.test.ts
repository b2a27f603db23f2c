import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { LogplexStream } from '../../src/ingest/logplexStream.js';
import type { SyslogMessage } from '../../src/ingest/SyslogMessage.js';

const token = (max: number) => fc.stringMatching(new RegExp(`^[!-~]{1,${max}}$`));
const timestamp = fc.tuple(
  fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true }),
  fc.integer({ min: 0, max: 6 }),
  fc.constantFrom('Z', '+00:00', '-07:00'),
).map(([d, digits, zone]) => {
  const base = d.toISOString().slice(0, 19);
  const fraction = digits ? `.${String(d.getTime() % 1_000_000).padStart(6, '0').slice(0, digits)}` : '';
  return `${base}${fraction}${zone}`;
});

const message = fc.record({
  pri: fc.integer({ min: 0, max: 191 }),
  timestamp,
  hostname: token(40),
  appName: token(48),
  procId: token(40),
  msgId: token(32),
  text: fc.string({ unit: 'binary', maxLength: 300 }),
  lf: fc.boolean(),
});
type Msg = typeof message extends fc.Arbitrary<infer T> ? T : never;

function frame(m: Msg, sd: boolean): Buffer {
  const msg = Buffer.from(`<${m.pri}>1 ${m.timestamp} ${m.hostname} ${m.appName} ${m.procId} ${m.msgId}${sd ? ' -' : ''} ${m.text}${m.lf ? '\n' : ''}`);
  return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
}

/** What the text reads back as: UTF-8 round trip (lone surrogates become U+FFFD), one LF dropped. */
function expectedText(m: Msg): string {
  const t = Buffer.from(m.text).toString('utf8');
  return !m.lf && t.endsWith('\n') ? t.slice(0, -1) : t;
}

function view(m: SyslogMessage) {
  return { pri: m.pri, timestamp: m.timestamp, hostname: m.hostname, appName: m.appName, procId: m.procId, msgId: m.msgId, text: m.message };
}

function want(m: Msg) {
  return { pri: m.pri, timestamp: m.timestamp, hostname: m.hostname, appName: m.appName, procId: m.procId, msgId: m.msgId, text: expectedText(m) };
}

/** Cut points for a byte length, as a list of piece sizes. */
const cuts = fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 60 });

function pieces(bytes: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  for (let k = 0; i < bytes.length; k++) {
    const n = sizes[k % sizes.length]!;
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

function streamAll(bytes: Buffer, sizes: number[], structuredData: boolean) {
  const s = new LogplexStream({ structuredData });
  const messages: SyslogMessage[] = [];
  let errors = 0;
  for (const p of pieces(bytes, sizes)) {
    const r = s.push(p);
    messages.push(...r.messages);
    errors += r.errors.length;
  }
  const r = s.end();
  messages.push(...r.messages);
  errors += r.errors.length;
  return { messages, errors };
}

describe('framing properties', () => {
  it('arbitrary bytes never throw, and every issue points inside the body', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
      const body = Buffer.from(bytes);
      const r = parseLogplexBody(body);
      for (const e of [...r.errors, ...r.warnings]) expect(e.offset).toBeLessThan(body.length);
      for (const m of r.messages) void view(m);
    }), { numRuns: 500 });
  });

  it('digit-heavy bytes (LEN-like noise) never throw, through the body reader and the stream', () => {
    const noise = fc.array(fc.constantFrom(...'0123456789 <>1-\n\r'.split(''), 'host ', '2024-11-14T03:12:07Z '), { maxLength: 400 }).map((a) => Buffer.from(a.join('')));
    fc.assert(fc.property(noise, cuts, (body, sizes) => {
      parseLogplexBody(body).messages.forEach(view);
      streamAll(body, sizes, true).messages.forEach(view);
    }), { numRuns: 500 });
  });

  it('framed messages round-trip through parseLogplexBody (HTTPS, no SD)', () => {
    fc.assert(fc.property(fc.array(message, { maxLength: 20 }), (msgs) => {
      const r = parseLogplexBody(Buffer.concat(msgs.map((m) => frame(m, false))));
      expect(r.errors).toEqual([]);
      expect(r.messages.map(view)).toEqual(msgs.map(want));
      for (const m of r.messages) expect(m.structuredData).toBeUndefined();
    }), { numRuns: 300 });
  });

  it('framed messages round-trip through LogplexStream in random pieces (syslog, SD `-`)', () => {
    fc.assert(fc.property(fc.array(message, { maxLength: 20 }), cuts, (msgs, sizes) => {
      const r = streamAll(Buffer.concat(msgs.map((m) => frame(m, true))), sizes, true);
      expect(r.errors).toBe(0);
      expect(r.messages.map(view)).toEqual(msgs.map(want));
      for (const m of r.messages) expect(m.structuredData).toBe('-');
    }), { numRuns: 300 });
  });

  it('good frames after arbitrary garbage are recovered by resync once a frame start is found', () => {
    const garbage = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b.map((x) => (x >= 0x30 && x <= 0x39) || x === 0x3c ? 0x78 : x)));
    fc.assert(fc.property(garbage, fc.array(message, { minLength: 1, maxLength: 5 }), cuts, (junk, msgs, sizes) => {
      // A LF first, so the first LEN is not glued to a trailing digit of the junk (there are none) or read as part of it.
      const body = Buffer.concat([junk, Buffer.from('\n'), ...msgs.map((m) => frame(m, true))]);
      const whole = streamAll(body, [body.length], true);
      const chunked = streamAll(body, sizes, true);
      expect(whole.messages.map(view)).toEqual(msgs.map(want));
      expect(chunked.messages.map(view)).toEqual(msgs.map(want));
    }), { numRuns: 300 });
  });
});
