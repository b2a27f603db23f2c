import { describe, expect, it } from 'vitest';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { MAX_MESSAGE_BYTES } from '../../src/ingest/SyslogMessage.js';
import { fieldsOf, sampleBodies } from './sampleBodies.js';

const kinds = (issues: Array<{ offset: number; kind: string }> | undefined) =>
  (issues ?? []).map(({ offset, kind }) => ({ offset, kind }));

describe('parseLogplexBody on the vendored bodies', () => {
  for (const body of sampleBodies('bodies')) {
    it(`${body.name} parses to its sidecar`, () => {
      const r = parseLogplexBody(body.bytes);
      expect(r.messages.map((m) => fieldsOf(m))).toEqual(body.sidecar.expected);
      expect(r.errors).toEqual([]);
      expect(r.warnings).toEqual([]);
      // HTTPS drains carry no STRUCTURED-DATA.
      for (const m of r.messages) expect(m.structuredData).toBeUndefined();
    });
  }

  /**
   * Where mallet keeps fewer frames than the samples' lenient reader, on purpose: after a broken
   * frame it drops the rest of the body rather than guess where the next frame starts (README,
   * Guarantees: a guess can land on a frame an app printed). The sidecars stay as the samples
   * describe them; these are mallet's deviations, each with its reason.
   */
  const refusedGuesses: Record<string, { keep: number; why: string }> = {
    'bodies/malformed/bad-length.logplex': { keep: 2, why: 'frames 4–5 follow a LEN that runs past the end: finding them means searching message bytes' },
    'bodies/malformed/bad-header.logplex': { keep: 1, why: 'frame 3 follows a frame that is not syslog, whose LEN is no surer than its header' },
  };

  for (const body of sampleBodies('bodies/malformed')) {
    const refused = refusedGuesses[body.name];
    it(`${body.name} keeps what comes before the first broken frame${refused ? ` (not the rest: ${refused.why})` : ''}`, () => {
      const r = parseLogplexBody(body.bytes);
      const expected = refused ? body.sidecar.expected.slice(0, refused.keep) : body.sidecar.expected;
      expect(r.messages.map((m) => fieldsOf(m))).toEqual(expected);
      expect(r.errors).toEqual(kinds(body.sidecar.errors));
      expect(r.warnings).toEqual(kinds(body.sidecar.warnings));
      expect(r.droppedFrom).toBe(body.sidecar.errors?.[0]?.offset);
    });
  }
});

describe('parseLogplexBody framing', () => {
  const frame = (msg: string) => `${Buffer.byteLength(msg)} ${msg}`;
  const line = (text: string, proc = 'web.1') => `<190>1 2024-11-14T03:12:07.4+00:00 host app ${proc} - ${text}\n`;

  it('counts LEN in bytes, not UTF-16 units', () => {
    const r = parseLogplexBody(Buffer.from(frame(line('héllo 🦄')) + frame(line('next'))));
    expect(r.messages.map((m) => m.message)).toEqual(['héllo 🦄', 'next']);
  });

  it('keeps an empty message and one without its trailing space', () => {
    const bare = '<190>1 2024-11-14T03:12:07+00:00 host app worker.2 -';
    const r = parseLogplexBody(Buffer.from(frame(line('')) + frame(bare) + frame(`${bare}\n`)));
    expect(r.messages.map((m) => [m.procId, m.message])).toEqual([['web.1', ''], ['worker.2', ''], ['worker.2', '']]);
  });

  it('strips exactly one trailing LF', () => {
    const r = parseLogplexBody(Buffer.from(frame(line('two\n'))));
    expect(r.messages[0]!.message).toBe('two\n');
  });

  it('does not take the first word of an HTTPS text for structured data', () => {
    const r = parseLogplexBody(Buffer.from(frame(line('[GET] - done'))));
    expect(r.messages[0]!.message).toBe('[GET] - done');
    expect(r.messages[0]!.msgId).toBe('-');
  });

  it('truncates text over 64 KiB to 64 KiB', () => {
    const r = parseLogplexBody(Buffer.from(frame(line('x'.repeat(MAX_MESSAGE_BYTES + 10)))));
    expect(r.messages[0]!.message.length).toBe(MAX_MESSAGE_BYTES);
  });

  it.each([
    ['LEN 0', '0 <190>1 x', 'bad-length'],
    ['10-digit LEN', '1234567890 <190>1', 'bad-length'],
    ['LEN without its space', '12<190>1', 'bad-length'],
    ['LEN at the end', '12', 'bad-length'],
    ['no LEN', 'hello', 'no-length'],
    ['LEN past the end', '500 <190>1 x', 'overrun'],
  ])('%s is reported and nothing is kept', (_name, text, kind) => {
    const r = parseLogplexBody(Buffer.from(text));
    expect(r.messages).toEqual([]);
    expect(r.errors[0]).toEqual({ offset: 0, kind });
  });

  it.each([
    ['PRI over 191', '<192>1 2024-11-14T03:12:07+00:00 host app web.1 - x'],
    ['no version', '<190> 2024-11-14T03:12:07+00:00 host app web.1 - x'],
    ['7 fraction digits', '<190>1 2024-11-14T03:12:07.1234567+00:00 host app web.1 - x'],
    ['no offset', '<190>1 2024-11-14T03:12:07 host app web.1 - x'],
    ['a letter in the offset', '<190>1 2024-11-14T03:12:07+0a:00 host app web.1 - x'],
    ['a letter in the seconds', '<190>1 2024-11-14T03:12:0a.5+00:00 host app web.1 - x'],
    ['NUL bytes for a timestamp', '<190>1 \u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000+00:00 host app web.1 - x'],
    ['too few fields', '<190>1 2024-11-14T03:12:07Z host app'],
    ['control byte in APP-NAME', '<190>1 2024-11-14T03:12:07Z host a\u0001p web.1 - x'],
  ])('a frame with %s is a bad-header, and the frames after it are dropped', (_name, msg) => {
    const r = parseLogplexBody(Buffer.from(frame(line('before')) + frame(msg) + frame(line('not read'))));
    const at = Buffer.byteLength(frame(line('before')));
    expect(r.errors).toEqual([{ offset: at, kind: 'bad-header' }]);
    expect(r.messages.map((m) => m.message)).toEqual(['before']);
    expect(r.droppedFrom).toBe(at);
  });

  it('drops the rest after a LEN that is too short, without searching it for a frame', () => {
    const good = frame(line('after'));
    const body = Buffer.from(`${frame(line('before'))}5 ${line('broken')}${good}`);
    const r = parseLogplexBody(body);
    expect(r.messages.map((m) => m.message)).toEqual(['before']);
    // LEN 5 frames `<190>`, a bad header: one error, nothing read after it.
    expect(r.errors).toEqual([{ offset: Buffer.byteLength(frame(line('before'))), kind: 'bad-header' }]);
  });

  it('does not re-read a wrong LEN from its own tail', () => {
    // "1900" is wrong; its tail "900" would fit and parse, but is glued to a digit.
    const text = line('a'.repeat(1200));
    const body = Buffer.from(`1900 ${text}`);
    const r = parseLogplexBody(body);
    expect(r.messages).toEqual([]);
    expect(r.errors).toEqual([{ offset: 0, kind: 'overrun' }]);
  });

  it('keeps each timestamp exactly when neighbours share its second or its offset', () => {
    const stamps = [
      '2024-11-14T03:12:07.801557+00:00', '2024-11-14T03:12:07.80155+00:00', '2024-11-14T03:12:07+00:00',
      '2024-11-14T03:12:07.8-07:00', '2024-11-14T03:12:07.8Z', '2024-11-14T03:12:08.000001+00:00', '2024-11-14T03:12:07.1+00:00',
    ];
    const body = stamps.map((t) => frame(`<134>1 ${t} host heroku web.1 - m\n`)).join('');
    const parsed = parseLogplexBody(Buffer.from(body)).messages;
    // Read in reverse too, so no answer depends on the order fields are read in.
    expect([...parsed].reverse().map((m) => m.timestamp).reverse()).toEqual(stamps);
    expect(parseLogplexBody(Buffer.from(body)).messages.map((m) => m.timestamp)).toEqual(stamps);
  });

  it('reads Z and numeric offsets and 0–6 fraction digits as sent', () => {
    const stamps = ['2024-11-14T03:12:07Z', '2024-11-14T03:12:07.1+00:00', '2024-11-14T03:12:07.123456-07:00', '-'];
    const body = stamps.map((t) => frame(`<134>1 ${t} host heroku web.1 - m\n`)).join('');
    expect(parseLogplexBody(Buffer.from(body)).messages.map((m) => m.timestamp)).toEqual(stamps);
  });
});
