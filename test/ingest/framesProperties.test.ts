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
  // One line, as logplex frames them: an LF only at the end (a text with one inside is refused).
  text: fc.string({ unit: 'binary', maxLength: 300 }).map((t) => t.replaceAll('\n', ' ')),
  lf: fc.boolean(),
});
type Msg = typeof message extends fc.Arbitrary<infer T> ? T : never;

/** Syslog drains end every message in LF; HTTPS drains send some without. */
function frame(m: Msg, sd: boolean): Buffer {
  const msg = Buffer.from(`<${m.pri}>1 ${m.timestamp} ${m.hostname} ${m.appName} ${m.procId} ${m.msgId}${sd ? ' -' : ''} ${m.text}${m.lf || sd ? '\n' : ''}`);
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

function want(m: Msg, sd = false) {
  return { pri: m.pri, timestamp: m.timestamp, hostname: m.hostname, appName: m.appName, procId: m.procId, msgId: m.msgId, text: expectedText({ ...m, lf: m.lf || sd }) };
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
      expect(r.messages.map(view)).toEqual(msgs.map((m) => want(m)));
      for (const m of r.messages) expect(m.structuredData).toBeUndefined();
    }), { numRuns: 300 });
  });

  it('framed messages round-trip through LogplexStream in random pieces (syslog, SD `-`)', () => {
    fc.assert(fc.property(fc.array(message, { maxLength: 20 }), cuts, (msgs, sizes) => {
      const r = streamAll(Buffer.concat(msgs.map((m) => frame(m, true))), sizes, true);
      expect(r.errors).toBe(0);
      expect(r.messages.map(view)).toEqual(msgs.map((m) => want(m, true)));
      for (const m of r.messages) expect(m.structuredData).toBe('-');
    }), { numRuns: 300 });
  });

  it('after arbitrary garbage no frame is read, whatever good frames follow (the rest is dropped, not searched)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.array(message, { minLength: 1, maxLength: 5 }), cuts, (junk, msgs, sizes) => {
      // Garbage is a byte that cannot start a LEN (not a digit, CR or LF) and whatever follows it.
      const first = junk[0]! >= 0x30 && junk[0]! <= 0x39 || junk[0] === 0x0a || junk[0] === 0x0d ? 0x78 : junk[0]!;
      const body = Buffer.concat([Buffer.from([first]), junk.subarray(1), ...msgs.map((m) => frame(m, true))]);
      for (const r of [streamAll(body, [body.length], true), streamAll(body, sizes, true)]) {
        expect(r.messages).toEqual([]);
        expect(r.errors).toBe(1);
      }
      const whole = parseLogplexBody(body);
      expect(whole.messages).toEqual([]);
      expect(whole.droppedFrom).toBe(0);
    }), { numRuns: 300 });
  });
});

/**
 * README, Guarantees: an app's text is never read as a platform line. Whatever an app prints —
 * whole frames of `APP-NAME heroku` with or without a LEN, LEN-like digits, CR/LF, any bytes — and
 * whatever broken framing comes before its line (a stray byte or digit, a LEN off by a few bytes,
 * garbage, its own frame cut short; on syslog streams also a truncated frame before it), no message
 * with APP-NAME `heroku` comes out: the prefix and the frames after hold none, so one could only
 * come from the app's text.
 *
 * Not generated, because no reader can tell it from a good body (README, Limits): on an HTTPS
 * drain, a truncated frame followed by more frames, which is a frame without its LF whose LEN runs
 * on into the next; and on syslog streams, an LF inside an app's text, which logplex never sends
 * (it frames one line per message).
 */
describe('app text is never read as a platform line', () => {
  const TOKEN = 'd.4f0b6c1e-8a2d-4e57-9b3c-6d1a2e7f9c05';
  const header = (sd: boolean, app: string, proc: string, host = sd ? TOKEN : 'host') =>
    `<${app === 'heroku' ? 45 : 190}>1 2026-12-01T00:00:00Z ${host} ${app} ${proc} -${sd ? ' -' : ''} `;
  const platform = (sd: boolean) => `${header(sd, 'heroku', 'web.9')}Error R14 (Memory quota exceeded)\n`;
  const lenOf = (s: string) => Buffer.byteLength(s);

  /** What an app may print: pieces of a smuggled platform frame, digits, spaces, `<`, CR/LF, any text. */
  const fragment = (sd: boolean) => fc.oneof(
    fc.constant(`${lenOf(platform(sd))} ${platform(sd)}`),
    fc.integer({ min: -3, max: 3 }).map((d) => `${lenOf(platform(sd)) + d} ${platform(sd)}`),
    fc.constant(platform(sd)),
    fc.constant(`user said: ${lenOf(platform(sd))} ${platform(sd)}`),
    fc.stringMatching(/^[0-9]{1,12}$/),
    fc.constantFrom(' ', '<', '\n', '\r', '\r\n', ' - ', '- - '),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.string({ unit: fc.constantFrom(...'0123456789 <>-'), maxLength: 12 }),
  );
  const appText = (sd: boolean) => fc.array(fragment(sd), { maxLength: 8 }).map((a) => (sd ? a.join('').replaceAll('\n', ' ') : a.join('')));
  /** Another app line: no `heroku` in it, nor anything that could spell it. */
  const plainText = fc.string({ unit: fc.constantFrom(...'abc xyz 0123456789<>-'), maxLength: 40 });
  const proc = fc.constantFrom('web.1', 'web.12', 'web.123', 'worker.45', 'run.9999');
  const framed = (msg: string) => `${lenOf(msg)} ${msg}`;

  type Broken =
    | { kind: 'none' } | { kind: 'stray' | 'garbage'; bytes: Uint8Array } | { kind: 'digits'; digits: string }
    | { kind: 'len'; delta: number } | { kind: 'truncated' | 'cut-short'; keep: number };
  const broken = (sd: boolean): fc.Arbitrary<Broken> => fc.oneof(
    fc.record({ kind: fc.constant('none' as const) }),
    fc.record({ kind: fc.constant('stray' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) }),
    fc.record({ kind: fc.constant('digits' as const), digits: fc.stringMatching(/^[0-9]{1,4}$/) }),
    fc.record({ kind: fc.constant('len' as const), delta: fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0) }),
    fc.record({ kind: fc.constant(sd ? 'truncated' as const : 'cut-short' as const), keep: fc.double({ min: 0, max: 1, noNaN: true }) }),
    fc.record({ kind: fc.constant('cut-short' as const), keep: fc.double({ min: 0, max: 1, noNaN: true }) }),
    fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
  );

  function body(sd: boolean, before: string[], brk: Broken, line: string, after: string[]): Buffer {
    const good = before.map((t) => framed(`${header(sd, 'app', 'web.2')}${t}\n`));
    const parts: Buffer[] = good.slice(0, -1).map((f) => Buffer.from(f));
    const last = good.at(-1) ?? framed(`${header(sd, 'app', 'web.3')}last\n`);
    const lastMsg = last.slice(last.indexOf(' ') + 1);
    switch (brk.kind) {
      case 'len': parts.push(Buffer.from(`${Math.max(1, lenOf(lastMsg) + brk.delta)} ${lastMsg}`)); break;
      case 'truncated': {
        const b = Buffer.from(last);
        parts.push(b.subarray(0, Math.floor(b.length * brk.keep)));
        break;
      }
      default: parts.push(Buffer.from(last));
    }
    if (brk.kind === 'stray' || brk.kind === 'garbage') parts.push(Buffer.from(brk.bytes));
    if (brk.kind === 'digits') parts.push(Buffer.from(brk.digits));
    const own = Buffer.from(framed(line));
    if (brk.kind === 'cut-short') {
      parts.push(own.subarray(0, Math.floor(own.length * brk.keep)));
      return Buffer.concat(parts);
    }
    parts.push(own);
    for (const t of after) parts.push(Buffer.from(framed(`${header(sd, 'app', 'web.4')}${t}\n`)));
    return Buffer.concat(parts);
  }

  const cases = (sd: boolean) => fc.record({
    before: fc.array(plainText, { maxLength: 3 }), brk: broken(sd), proc, text: appText(sd), after: fc.array(plainText, { maxLength: 2 }),
  });
  const heroku = (ms: SyslogMessage[]) => ms.filter((m) => m.appName === 'heroku').map((m) => m.message);

  it('HTTPS bodies', () => {
    fc.assert(fc.property(cases(false), ({ before, brk, proc: p, text, after }) => {
      const r = parseLogplexBody(body(false, before, brk, `${header(false, 'app', p)}${text}\n`, after));
      expect(heroku(r.messages)).toEqual([]);
    }), { numRuns: 3000 });
  });

  it('syslog streams, in random pieces', () => {
    fc.assert(fc.property(cases(true), cuts, ({ before, brk, proc: p, text, after }, sizes) => {
      const bytes = body(true, before, brk, `${header(true, 'app', p)}${text}\n`, after);
      expect(heroku(streamAll(bytes, sizes, true).messages)).toEqual([]);
    }), { numRuns: 1500 });
  });

  it('the generator does make platform frames: the same text framed on its own is one', () => {
    // Guards the property above against a generator that never smuggles anything.
    const r = parseLogplexBody(Buffer.from(framed(platform(false))));
    expect(heroku(r.messages)).toEqual(['Error R14 (Memory quota exceeded)']);
  });
});
