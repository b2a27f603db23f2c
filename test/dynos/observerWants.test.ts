import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { timestampMs } from '../../src/ingest/timestampMs.js';
import { DynoObserver } from '../../src/dynos/DynoObserver.js';
import type { DynoStore } from '../../src/dynos/DynoStore.js';
import { MINUTE_MS } from '../../src/dynos/bounds.js';
import { instanceEnd, isDynoProcess, isMemoryLine, isRuntimeLine, readDynoSample, wantsLifecycle, wantsRelease } from '../../src/dynos/dynoLines.js';
import { UUID_A, UUID_B } from './events.js';
import type { DynoBatch, MemorySample } from '../../src/dynos/DynoRecord.js';

/**
 * DynoObserver.wants tells a remembered instance's lines by their byte prefix. It must want
 * exactly the lines the first version wanted (prefixes compared from the start, every remembered
 * instance tried for memory_total, then again for its load average), which this file keeps as the
 * reference, with what it remembered after each written body.
 */
const MEMORY = 'sample#memory_total=';
const MAX_INSTANCES_PER_DYNO = 3;

interface RefStored { instance: string; lineText: string; minute: number }

class ReferenceWants {
  readonly stored = new Map<string, Map<string, RefStored[]>>();

  wants(e: DrainEvent): boolean {
    const source = e.source;
    if (source !== 'heroku') return source === 'app' && wantsRelease(e);
    const p = e.process;
    if (p === 'router') return false;
    const known = this.stored.get(e.app)?.get(p);
    if (known === undefined && !isDynoProcess(p)) return false;
    const text = e.message;
    if (!text.startsWith('source=')) return wantsLifecycle(e);
    if (known !== undefined) {
      for (const k of known) if (text.startsWith(k.lineText + MEMORY)) return Math.floor(timestampMs(e.timestamp) / MINUTE_MS) !== k.minute;
      for (const k of known) if (text.startsWith(k.lineText)) return false;
    }
    return isMemoryLine(e);
  }

  /** What the observer remembers once a body's wanted lines were written. */
  written(app: string, wanted: readonly DrainEvent[]): void {
    let byDyno = this.stored.get(app);
    if (byDyno === undefined) this.stored.set(app, (byDyno = new Map()));
    for (const e of wanted) {
      if (!isRuntimeLine(e)) continue;
      const s = readDynoSample(e);
      if (s === undefined) continue;
      const minute = Math.floor(s.at / MINUTE_MS);
      let known = byDyno.get(s.dyno);
      const k = known?.find((x) => x.instance === s.instance);
      if (k !== undefined) {
        if (minute > k.minute) k.minute = minute;
        continue;
      }
      const text = e.message;
      const end = instanceEnd(text, s.dyno);
      if (end < 0 || !text.startsWith(` ${MEMORY}`, end)) continue;
      if (known === undefined) byDyno.set(s.dyno, (known = []));
      if (known.length >= MAX_INSTANCES_PER_DYNO) known.shift();
      known.push({ instance: s.instance, lineText: text.slice(0, end + 1), minute });
    }
  }
}

/** The samples the observer's last parts() handed the store. */
let parted: readonly MemorySample[] = [];
const nullStore: DynoStore = { write: async () => {}, part: (_app: string, batch: DynoBatch) => { parted = batch.samples; return undefined; } } as unknown as DynoStore;

/**
 * Feeds bodies in order to the observer and the reference; every line's wants must agree, and the
 * samples observe() writes must be readDynoSample's of the lines wanted (a remembered instance's
 * line is read from what wants() found, not from its prefix: DynoObserver #hits).
 */
function compare(bodies: readonly DrainEvent[][]): { lines: number; wanted: number } {
  const observer = new DynoObserver(nullStore);
  const ref = new ReferenceWants();
  let lines = 0;
  let wanted = 0;
  for (const events of bodies) {
    const picked: DrainEvent[] = [];
    for (const e of events) {
      const w = ref.wants(e);
      if (observer.wants(e) !== w) throw new Error(`wants differs (reference ${w}) for ${e.source}[${e.process}]: ${e.message}`);
      lines++;
      if (w) { wanted++; picked.push(e); }
    }
    const app = events[0]?.app ?? 'a';
    const observation = observer.observe(app, picked, []);
    parted = [];
    observation.parts?.();
    const read = picked.filter(isRuntimeLine).map((e) => readDynoSample(e)).filter((x) => x !== undefined);
    expect(parted).toEqual(read);
    observation.written?.();
    ref.written(app, picked);
  }
  return { lines, wanted };
}

function body(lines: readonly string[], app = 'a'): DrainEvent[] {
  const frames = lines.map((l) => { const b = Buffer.from(l); return Buffer.concat([Buffer.from(`${b.length} `), b]); });
  return drainEvents({ app, drainToken: 'd.t', frameId: 'f', dedupe: true, receivedAt: 0, messages: parseLogplexBody(Buffer.concat(frames)).messages });
}

/** Two uuids that differ only in their first byte, and one only in its last: the compare's ends. */
const UUIDS = [UUID_A, UUID_B, `0${UUID_A.slice(1)}`, `${UUID_A.slice(0, -1)}0`];
const DYNOS = ['web.1', 'web.2', 'worker.1', 'web-5d9c8b7f6-q2x4z'];

const line = fc.record({
  dyno: fc.constantFrom(...DYNOS),
  other: fc.constantFrom(...DYNOS),
  uuid: fc.constantFrom(...UUIDS),
  id: fc.constantFrom('54241834', '1', '54241835'),
  minute: fc.integer({ min: 0, max: 3 }),
  second: fc.integer({ min: 0, max: 59 }),
  kind: fc.constantFrom('memory', 'memory', 'memory', 'load', 'late-memory', 'fir', 'fir-load', 'foreign-source', 'lifecycle', 'text', 'cut', 'router', 'release', 'app'),
  cut: fc.integer({ min: 0, max: 120 }),
  mb: fc.integer({ min: 1, max: 9999 }),
}).map(({ dyno, other, uuid, id, minute, second, kind, cut, mb }) => {
  const ts = `2024-11-14T09:0${minute}:${String(second).padStart(2, '0')}.000000+00:00`;
  const cedar = `source=${dyno} dyno=heroku.${id}.${uuid} `;
  const memory = `sample#memory_total=${mb}.00MB sample#memory_rss=1.00MB sample#memory_quota=512.00MB`;
  const load = 'sample#load_avg_1m=0.01 sample#load_avg_5m=0.02';
  const heroku = (m: string, proc = dyno) => `<134>1 ${ts} host heroku ${proc} - ${m}`;
  switch (kind) {
    case 'memory': return heroku(cedar + memory);
    case 'load': return heroku(cedar + load);
    case 'late-memory': return heroku(`${cedar}${load} ${memory}`);
    case 'fir': return heroku(`source=${dyno} dyno=${dyno} ${memory}`);
    case 'fir-load': return heroku(`source=${dyno} dyno=${dyno} ${load}`);
    case 'foreign-source': return heroku(`source=${other} dyno=heroku.${id}.${uuid} ${memory}`);
    case 'lifecycle': return heroku('State changed from up to down');
    case 'text': return heroku(`source=${dyno} something else`);
    case 'cut': return heroku((cedar + memory).slice(0, cut));
    case 'router': return `<158>1 ${ts} host heroku router - at=info method=GET path="/" host=x dyno=${dyno}`;
    case 'release': return `<134>1 ${ts} host app api - Release v${mb} created by a@b.c`;
    default: return `<190>1 ${ts} host app ${dyno} - ${cedar}${memory}`;
  }
});

describe('DynoObserver.wants', () => {
  it('wants what the reference wants, over generated bodies in sequence', () => {
    fc.assert(fc.property(fc.array(fc.array(line, { minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 12 }), (bodies) => {
      compare(bodies.map((b) => body(b)));
    }), { numRuns: 400 });
  });

  it('the generated lines reach both answers for remembered instances', () => {
    const mem = (m: number, u: string) => `<134>1 2024-11-14T09:0${m}:00.000000+00:00 host heroku web.1 - source=web.1 dyno=heroku.1.${u} sample#memory_total=1.00MB`;
    const load = (u: string) => `<134>1 2024-11-14T09:00:10.000000+00:00 host heroku web.1 - source=web.1 dyno=heroku.1.${u} sample#load_avg_1m=0.01`;
    const observer = new DynoObserver(nullStore);
    const [first] = body([mem(0, UUID_A)]);
    observer.observe('a', [first!], []).written?.();
    const [same, later, loadA, other] = body([mem(0, UUID_A), mem(1, UUID_A), load(UUID_A), mem(0, UUID_B)]);
    expect([same, later, loadA, other].map((e) => observer.wants(e!))).toEqual([false, true, false, true]);
  });

  it('wants what the reference wants on the sample bodies and the captured runtime metrics', () => {
    const dir = new URL('../fixtures/samples/bodies/', import.meta.url);
    const bodies = readdirSync(dir).filter((f) => f.endsWith('.logplex')).map((f) => parseLogplexBody(readFileSync(new URL(f, dir))).messages)
      .map((messages) => drainEvents({ app: 'a', drainToken: 'd.t', frameId: 'f', dedupe: true, receivedAt: 0, messages }));
    const metrics = readFileSync(new URL('../fixtures/samples/lines/runtime-metrics.txt', import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('<'));
    // Twice: the second time every instance is remembered.
    const { wanted } = compare([...bodies, body(metrics), body(metrics), ...bodies]);
    expect(wanted).toBeGreaterThan(5);
  });
});
