import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseSyslogHeader } from '../../src/ingest/syslogHeader.js';
import { BufferedSyslogMessage } from '../../src/ingest/SyslogMessage.js';
import { ByteWords, dataViewOf } from '../../src/ingest/byteWords.js';
import { lineClassOf } from '../../src/ingest/lineClass.js';

// The header parser compares the runs it meets on every line (the expected drain token, the
// timestamp's head and offset, a router line's fields) as eight-byte words. These pin that a word
// compare answers as the byte-by-byte reading did, whatever bytes are near those runs.

const TOKEN = 'd.8c1e5c1a-1d2e-4a47-9d6f-0b3a4c5d6e7f';
const FIELD = /^[\x21-\x7e]+$/;
const HEAD = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$/;

/** A string near `base`: a few of its characters replaced, dropped or added (bytes 0–255). */
const near = (base: string) => fc.array(fc.tuple(fc.nat(base.length), fc.constantFrom('replace', 'drop', 'add'), fc.integer({ min: 0, max: 255 })), { maxLength: 3 })
  .map((edits) => {
    let s = base;
    for (const [at, kind, byte] of edits) {
      const c = String.fromCharCode(byte);
      const k = Math.min(at, s.length);
      s = kind === 'replace' ? s.slice(0, k) + c + s.slice(k + 1) : kind === 'drop' ? s.slice(0, k) + s.slice(k + 1) : s.slice(0, k) + c + s.slice(k);
    }
    return s;
  });
const maybeNear = (base: string) => fc.oneof(fc.constant(base), near(base));

const parseLine = (view: BufferedSyslogMessage | undefined, text: string) => {
  const buf = Buffer.from(text, 'latin1');
  return parseSyslogHeader(buf, 0, buf.length, { structuredData: true }, view);
};

describe('ByteWords', () => {
  it('finds its bytes exactly where a byte-by-byte compare does', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.uint8Array({ maxLength: 60 }), fc.nat(60), (run, around, at) => {
      const words = new ByteWords(Buffer.from(run));
      const buf = Buffer.from(around);
      // Plant the run (sometimes) so that equal and near-equal places both occur.
      if (at % 2 === 0 && at + run.length <= buf.length) buf.set(run, at);
      for (let i = 0; i + run.length <= buf.length; i++) {
        expect(words.at(dataViewOf(buf), buf, i)).toBe(buf.subarray(i, i + run.length).equals(Buffer.from(run)));
      }
    }));
  });

  it('compares NaN and ±0 words byte by byte', () => {
    const nan = Buffer.from([0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 1]);
    const zero = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x80]);
    for (const run of [nan, zero]) {
      const buf = Buffer.concat([Buffer.from([7]), run]);
      expect(new ByteWords(run).at(dataViewOf(buf), buf, 1)).toBe(true);
      const other = Buffer.from(buf);
      other[other.length - 1]! ^= 1;
      expect(new ByteWords(run).at(dataViewOf(other), other, 1)).toBe(false);
    }
    // +0 and -0 are equal as floats, not as bytes.
    const pos = Buffer.alloc(8);
    expect(new ByteWords(zero).at(dataViewOf(pos), pos, 0)).toBe(false);
  });
});

describe('parseSyslogHeader, word compares against the fields they stand for', () => {
  it('reads a HOSTNAME near the expected one as the field it is', () => {
    const view = BufferedSyslogMessage.view();
    view.expectHostname(Buffer.from(TOKEN, 'latin1'));
    fc.assert(fc.property(maybeNear(TOKEN), (host) => {
      const m = parseLine(view, `<134>1 2024-11-14T00:00:00.123+00:00 ${host} heroku router - - at=info\n`);
      if (host.length === 0 || host.length > 255 || !FIELD.test(host)) {
        // A space splits the field: the line may still parse, with other fields, but never as the token.
        if (m !== undefined) expect(m.hostnameIsExpected).toBe(false);
        return;
      }
      expect(m).toBeDefined();
      expect(m!.hostname).toBe(host);
      expect(m!.hostnameIsExpected).toBe(host === TOKEN);
    }));
  });

  it('reads a run of PRI and VERSION prefixes as the fields they are, whatever came before', () => {
    const prefix = fc.oneof(maybeNear('<158>1 '), maybeNear('<190>1 '), maybeNear('<13>12 '), fc.constant('<0>1 '), fc.constant('<191>1 '));
    fc.assert(fc.property(fc.array(prefix, { minLength: 1, maxLength: 8 }), (prefixes) => {
      for (const p of prefixes) {
        const m = parseLine(undefined, `${p}2024-11-14T00:00:00.123+00:00 ${TOKEN} app web.1 - - x\n`);
        const ok = /^<(0|[1-9]\d{0,2})>[1-9]\d? $/.exec(p);
        if (ok !== null && Number(ok[1]) <= 191) {
          expect(m, p).toBeDefined();
          expect(m!.pri).toBe(Number(ok[1]));
          expect(m!.timestamp).toBe('2024-11-14T00:00:00.123+00:00');
        } else if (!p.slice(1, -1).includes(' ')) {
          expect(m, p).toBeUndefined();
        }
      }
    }), { numRuns: 300 });
  });

  it('reads a run of timestamps near each other as RFC 3339 allows, whatever came before', () => {
    // Fractions of 0–7 characters around the digits' range (`/` below `0`, `:`–`?` above `9`).
    const fraction = fc.array(fc.constantFrom(...'0123456789/:;?'), { maxLength: 7 }).map((cs) => `2024-11-14T00:00:00${cs.length > 0 ? `.${cs.join('')}` : ''}+00:00`);
    const ts = fc.oneof(fraction,
      maybeNear('2024-11-14T00:00:00.123+00:00'), maybeNear('2024-11-14T00:00:01Z'), maybeNear('2024-11-14T00:00:01.5-05:00'),
      fc.constant('2024-11-14T00:00:00.123456+00:00'), fc.constant('2024-11-14T00:00:00+00:00'),
    );
    // A stamp right after the one it was edited from: only the bytes the cached head's words cover differ.
    const pair = fc.tuple(fc.constantFrom('2024-11-14T00:00:00.123+00:00', '2024-11-14T00:00:01Z'), fc.nat(28), fc.integer({ min: 0x20, max: 0x7e }))
      .map(([base, at, byte]) => [base, base.slice(0, at) + String.fromCharCode(byte) + base.slice(at + 1)]);
    fc.assert(fc.property(fc.array(fc.oneof(ts.map((t) => [t]), pair), { minLength: 1, maxLength: 8 }), (groups) => {
      for (const stamp of groups.flat()) {
        const m = parseLine(undefined, `<134>1 ${stamp} ${TOKEN} app web.1 - - x\n`);
        if (!stamp.includes(' ') && HEAD.test(stamp)) {
          expect(m, stamp).toBeDefined();
          expect(m!.timestamp).toBe(stamp);
          expect(m!.appName).toBe('app');
        } else if (!stamp.includes(' ')) {
          expect(m, stamp).toBeUndefined();
        }
      }
    }), { numRuns: 300 });
  });

  it('reads APP-NAME, PROCID and MSGID near a router line\'s as the fields they are', () => {
    const field = (base: string) => maybeNear(base).filter((s) => !s.includes(' ') && !s.includes('\n'));
    fc.assert(fc.property(field('heroku'), field('router'), field('-'), fc.constantFrom('- at=info', '-\n', '- ', '[x]'), (app, proc, msgId, rest) => {
      const text = `<158>1 2024-11-14T00:00:00.123+00:00 ${TOKEN} ${app} ${proc} ${msgId} ${rest}`;
      const m = parseLine(undefined, `${text}${text.endsWith('\n') ? '' : '\n'}`);
      const ok = app.length >= 1 && app.length <= 48 && FIELD.test(app) && proc.length >= 1 && proc.length <= 128 && FIELD.test(proc)
        && msgId.length >= 1 && msgId.length <= 32 && FIELD.test(msgId);
      if (!ok) {
        expect(m).toBeUndefined();
        return;
      }
      expect(m).toBeDefined();
      expect([m!.appName, m!.procId, m!.msgId]).toEqual([app, proc, msgId]);
      expect(m!.lineClass).toBe(lineClassOf(app, proc));
      expect(m!.structuredData).toBe(rest.startsWith('[') ? '[x]' : '-');
    }));
  });
});
