import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { readDynoLine, readMemorySample } from '../../src/dynos/dynoLines.js';
import { readMemorySampleBytes } from '../../src/dynos/memoryBytes.js';
import { eventsOf, UUID_A, UUID_B } from './events.js';

/**
 * The observer reads memory samples from the line's bytes (memoryBytes.ts) and never decodes the
 * text; what it reads must be what the text reader (readMemorySample) reads of the decoded text,
 * whatever the bytes: non-ASCII and broken UTF-8 included, and lines cut anywhere.
 */
const AT = Date.parse('2024-11-14T09:18:44.206Z');

function fromBytes(e: DrainEvent) {
  return e.readMessageBytes!(readMemorySampleBytes, e.process, AT);
}

function fromText(e: DrainEvent) {
  return e.message.startsWith('source=') ? readMemorySample(e.message, e.process, AT) : undefined;
}

/** One logplex body of `heroku[procId]` lines with the given message bytes. */
function eventsOfBytes(procId: string, messages: readonly Buffer[]): DrainEvent[] {
  const frames = messages.map((m) => {
    const msg = Buffer.concat([Buffer.from(`<134>1 2024-11-14T09:18:44.206831+00:00 host heroku ${procId} - `), m]);
    return Buffer.concat([Buffer.from(`${msg.length} `), msg]);
  });
  return drainEvents({ app: 'a', drainToken: 'd.t', frameId: 'f', dedupe: true, receivedAt: 0, messages: parseLogplexBody(Buffer.concat(frames)).messages });
}

const fixtureLines = readFileSync(new URL('../fixtures/dyno-lines.txt', import.meta.url), 'utf8')
  .split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split('\t')[0]!);
/** The captured runtime-metrics lines, syslog frames as a drain sends them. */
const sampleEvents = (() => {
  const lines = readFileSync(new URL('../fixtures/samples/lines/runtime-metrics.txt', import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('<'));
  const body = Buffer.concat(lines.map((l) => Buffer.from(`${Buffer.byteLength(l)} ${l}`)));
  return drainEvents({ app: 'a', drainToken: 'd.t', frameId: 'f', dedupe: true, receivedAt: 0, messages: parseLogplexBody(body).messages });
})();

describe('memory samples read from bytes', () => {
  it('the fixture and captured-sample lines read the same from bytes as from the decoded text', () => {
    const events = [...eventsOf(fixtureLines), ...sampleEvents];
    expect(sampleEvents.length).toBeGreaterThan(10);
    let samples = 0;
    for (const e of events) {
      if (e.source !== 'heroku') continue;
      const b = fromBytes(e);
      expect(b).toEqual(fromText(e));
      if (b) samples++;
    }
    expect(samples).toBeGreaterThan(5);
  });

  it('readDynoLine takes the byte path and never decodes a memory sample', () => {
    const [e] = eventsOf([`2024-11-14T09:18:44.206831+00:00 heroku[web.1]: source=web.1 dyno=heroku.54241834.${UUID_A} sample#memory_total=154.85MB sample#memory_quota=512.00MB`]);
    const spy = Object.create(e!, { message: { get() { throw new Error('decoded'); } } }) as DrainEvent;
    const r = readDynoLine(spy);
    expect(r && 'sample' in r ? r.sample : undefined).toEqual({ dyno: 'web.1', instance: UUID_A, at: AT, valueMb: 154.85, limitMb: 512, swapMb: undefined });
  });

  it('the same instance read twice gives the same string (interned), another instance its own', () => {
    const line = (u: string) => `2024-11-14T09:18:44.206831+00:00 heroku[web.1]: source=web.1 dyno=heroku.1.${u} sample#memory_total=1MB`;
    const [a1, a2, b] = eventsOf([line(UUID_A), line(UUID_A), line(UUID_B)]).map((e) => fromBytes(e)!.instance);
    expect(a1).toBe(UUID_A);
    expect(a2).toBe(a1);
    expect(b).toBe(UUID_B);
  });

  it('generated lines, bytes anywhere: bytes and text agree', () => {
    const procs = ['web.1', 'worker.12', 'web-5d9c8b7f6-q2x4z', 'web.4ed720fa31-ur8z1'];
    const noise = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 4 }).map((a) => Buffer.from(a)),
      fc.constantFrom('é', '€', '\uFFFD', '\uFEFF', '𝄞', ' ', '  ', '=', '.', 'MB').map((x) => Buffer.from(x)),
    );
    const value = fc.oneof(
      { weight: 2, arbitrary: fc.integer({ min: 0, max: 99_999_999 }).map((n) => `${n}MB`) },
      { weight: 3, arbitrary: fc.float({ min: 0, max: 1e7, noNaN: true }).map((x) => `${x.toFixed(2)}MB`) },
      { weight: 2, arbitrary: fc.stringMatching(/^[0-9]{0,8}\.?[0-9]{0,7}(MB|M|B|pages)?$/) },
    ).map((x) => Buffer.from(x));
    const key = fc.constantFrom('sample#memory_total', 'sample#memory_quota', 'sample#memory_swap', 'sample#memory_rss', 'sample#load_avg_1m', 'sample#memory_', 'sample#memory_totals');
    // A field now and then with a bad byte, a multi-byte character or a broken sequence in it.
    const field = fc.tuple(key, value, fc.option(noise, { freq: 6 }), fc.nat(3)).map(([k, v, n, where]) =>
      n === null ? Buffer.from(` ${k}=${v}`) : where === 0 ? Buffer.concat([n, Buffer.from(` ${k}=`), v]) : where === 1 ? Buffer.concat([Buffer.from(` ${k}=`), n, v]) : Buffer.concat([Buffer.from(` ${k}=`), v, n]));
    const instance = (proc: string) => fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(`heroku.54241834.${UUID_A}`, `heroku.1.${UUID_B}`, proc) },
      { weight: 2, arbitrary: fc.constantFrom(`heroku.x.${UUID_A}`, `heroku.123.${UUID_A.toUpperCase()}`, `heroku.123.${UUID_A.slice(0, 30)}`, `heroku.123456789012345678901.${UUID_A}`, 'heroku.', '') },
      { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    );
    const line = fc.constantFrom(...procs).chain((proc) => fc.record({
      proc: fc.constant(proc),
      source: fc.oneof({ weight: 8, arbitrary: fc.constant(proc) }, { weight: 1, arbitrary: fc.constantFrom(...procs) }),
      instance: instance(proc),
      // memory_total first, as the platform writes it, mostly.
      first: fc.oneof({ weight: 5, arbitrary: fc.tuple(value, fc.option(noise, { freq: 8 })).map(([v, n]) => Buffer.concat([Buffer.from(' sample#memory_total='), v, n ?? Buffer.alloc(0)])) }, { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) }),
      fields: fc.array(field, { maxLength: 8 }),
      cut: fc.option(fc.nat(), { freq: 3 }),
    }));
    let read = 0;
    fc.assert(fc.property(fc.array(line, { minLength: 1, maxLength: 5 }), (lines) => {
      for (const l of lines) {
        const whole = Buffer.concat([Buffer.from(`source=${l.source} dyno=${l.instance}`), l.first, ...l.fields]);
        // Cut anywhere now and then (inside a character too); no LF inside a frame's text.
        const kept = l.cut === null ? whole.length : whole.length - (l.cut % (whole.length + 1));
        const bytes = Buffer.from(whole.subarray(0, kept)).map((c) => (c === 0x0a ? 0x20 : c));
        if (bytes.length === 0) continue;
        const [e] = eventsOfBytes(l.proc, [Buffer.from(bytes)]);
        expect(e).toBeDefined();
        const b = fromBytes(e!);
        expect(b).toEqual(fromText(e!));
        if (b) read++;
      }
    }), { numRuns: 3000 });
    // The generator reaches the samples it is about, not only lines both readers turn down.
    expect(read).toBeGreaterThan(300);
  });
});
