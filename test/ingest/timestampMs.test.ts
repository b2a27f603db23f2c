import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { timestampMs } from '../../src/ingest/timestampMs.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { drainEvents } from '../../src/ingest/drainEvents.js';

describe('timestampMs', () => {
  it('equals Date.parse on logplex timestamps (0–6 fraction digits, Z or an offset)', () => {
    fc.assert(fc.property(
      fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2090-01-01T00:00:00Z'), noInvalidDate: true }),
      fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 999_999 }), fc.constantFrom('Z', '+00:00', '-07:00', '+05:30'),
      (d, digits, micros, zone) => {
        const frac = digits === 0 ? '' : '.' + String(micros).padStart(6, '0').slice(0, digits);
        const ts = d.toISOString().slice(0, 19) + frac + zone;
        expect(timestampMs(ts)).toBe(Date.parse(ts));
      }));
  });

  it('is NaN for what is not one', () => {
    for (const ts of ['-', '', '2024-13-01T00:00:00Z', '2024-01-01 00:00:00Z', '2024-01-01T00:00:00', '2024-01-01T00:00:00.1234567Z', '2024-01-01T00:00:00+0000']) {
      expect(timestampMs(ts)).toBeNaN();
    }
  });

  it("a parsed line's timeMs equals timestampMs of its timestamp text, interleaved lines and bad ones included", () => {
    const frame = (ts: string, text: string) => {
      const msg = `<40>1 ${ts} host heroku web.1 - ${text}`;
      return `${Buffer.byteLength(msg)} ${msg}`;
    };
    fc.assert(fc.property(fc.array(fc.tuple(
      fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2090-01-01T00:00:00Z'), noInvalidDate: true }),
      fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 999_999 }), fc.constantFrom('Z', '+00:00', '-07:00', '+05:30', '+24:00'),
      fc.constantFrom('', '13', '32', '25'),
    ), { minLength: 1, maxLength: 8 }), (stamps) => {
      const tss = stamps.map(([d, digits, micros, zone, bad]) => {
        const frac = digits === 0 ? '' : '.' + String(micros).padStart(6, '0').slice(0, digits);
        let head = d.toISOString().slice(0, 19);
        if (bad === '13' || bad === '32') head = head.slice(0, bad === '13' ? 5 : 8) + bad + head.slice(bad === '13' ? 7 : 10);
        if (bad === '25') head = head.slice(0, 11) + '25' + head.slice(13);
        return head + frac + zone;
      });
      const body = Buffer.from(tss.map((ts) => frame(ts, 'x')).join(''));
      const events = drainEvents({ app: 'a', drainToken: 't', frameId: 'f', dedupe: true, receivedAt: 0, messages: parseLogplexBody(body).messages });
      expect(events.length).toBe(tss.length);
      for (const e of events) {
        const want = timestampMs(e.timestamp);
        if (Number.isNaN(want)) expect(e.timeMs).toBeNaN();
        else expect(e.timeMs).toBe(want);
      }
    }));
  });
});
