import type { DrainEvent } from '../ingest/DrainEvent.js';
import { NOTHING, type Observation, type Observer } from '../observe/Observer.js';
import type { Firing } from '../rules/Firing.js';
import { SHAPES } from '../rules/shapes.js';
import type { LifecycleEvent, MemorySample } from './DynoRecord.js';
import type { DynoStore } from './DynoStore.js';
import type { BodyPart } from '../bodyPart.js';
import { DYNO_LINE_CLASSES, instanceEnd, isDynoProcess, isMemoryLine, isRuntimeLine, readDynoEvent, readDynoLine, readDynoSample, wantsDynoLine, wantsLifecycle, wantsRelease } from './dynoLines.js';
import { eventTimeMs, timestampMs } from '../ingest/timestampMs.js';
import { MINUTE_MS } from './bounds.js';
import { lifeBatchOf, type LifeBatch, type LifeStore } from './instanceLife.js';
import { readKnownSampleBytes, type KnownInstance } from './memoryBytes.js';
import { bufCompare } from '../bufferNatives.js';

export interface DynoCounts {
  samples: number;
  events: number;
}

/**
 * What this process last stored of one instance: the byte prefixes its runtime-metrics lines
 * start with (`source=web.1 dyno=heroku.<id>.<uuid> `, then `sample#memory_total=` for a memory
 * sample) and the newest minute written.
 */
interface Stored extends KnownInstance {
  readonly instance: string;
  readonly lineText: string;
  readonly lineBytes: Buffer;
  readonly memoryText: string;
  /** memoryText's bytes. */
  readonly memoryBytes: Buffer;
  minute: number;
}

/** Bounds on what the observer remembers (an optimisation only: forgetting costs a parse). */
const MAX_APPS = 1000;
const MAX_DYNOS_PER_APP = 2000;
/** wants() hits kept for observe() (a syslog batch is at most 4 096 lines). */
const MAX_HITS = 8192;
/** Instances per dyno name at once: two during a preboot overlap, a spare for a quick restart. */
const MAX_INSTANCES_PER_DYNO = 3;

const SOURCE = 'source=';
const SOURCE_BYTES = Buffer.from(SOURCE);
const MEMORY_FIELD = 'sample#memory_total=';

function startsWith(e: DrainEvent, text: string, bytes: Buffer): boolean {
  return e.messageStartsWith ? e.messageStartsWith(bytes) : e.message.startsWith(text);
}

/**
 * startsWith for an instance's prefixes (70–100 bytes): messageStartsWith's loop costs about 30
 * instructions a byte (callgrind), one native compare about 1 100 whatever the length, so the
 * text's bytes are compared natively when the event hands them out.
 */
function startsWithLong(e: DrainEvent, text: string, bytes: Buffer): boolean {
  if (e.readMessageBytes !== undefined) return e.readMessageBytes(bytesStartWith, bytes, 0);
  return startsWith(e, text, bytes);
}

function bytesStartWith(buf: Buffer, start: number, end: number, needle: Buffer, _unused: number): boolean {
  const n = needle.length;
  // The needle's bounds left undefined: compare() takes its defaults (the whole needle) without
  // the two validateOffset calls a number costs (~5 instructions/line, callgrind).
  return end - start >= n && bufCompare.call(buf, needle, undefined, undefined, start, start + n) === 0;
}

/**
 * Lifecycle and memory trends from the drain, and mallet's own remediations (the firings the
 * rules decided) so the report can mark them.
 *
 * Runtime metrics arrive every 20 s per dyno and the store keeps one point a minute (only a
 * slot's first sample counts: DynoStore.ts), so a sample of an instance in the minute this
 * process last stored for it changes nothing: the prefilter drops it on a byte-prefix test and
 * the line's timestamp, before the message is decoded, and the instance's load-average lines
 * on the same prefix. Two of three samples cost that much.
 */
export class DynoObserver implements Observer {
  readonly #stored = new Map<string, Map<string, Stored[]>>();
  /**
   * The memory samples of remembered instances that wants() took since the last observe(), in
   * order, with their instance and time: observe() is shown the lines wants() took, in the same
   * order (Observer.ts observeOne), and reads each from its fields on, without matching its
   * prefix, reading its instance id or its timestamp again. An entry serves only its own event
   * object (a line's bytes never change); observe() empties them. The first #nHits entries
   * count (setting an array's length to 0 gives its storage back, which the next push makes
   * again: a count keeps it).
   */
  readonly #hits: (DrainEvent | undefined)[] = [];
  readonly #hitOf: (Stored | undefined)[] = [];
  readonly #hitAt: number[] = [];
  #nHits = 0;
  #lastApp: string | undefined = undefined;
  #lastKnown: Map<string, Stored[]> | undefined = undefined;

  constructor(
    private readonly store: DynoStore,
    private readonly onCount?: (app: string, counts: DynoCounts) => void,
    /** The rules' view of the lifecycle (instanceLife.ts), written beside the trends. */
    private readonly life?: LifeStore,
  ) {}

  /** Runtime metrics and lifecycle lines come from `heroku` dyno PROCIDs, releases from `app[api]`. */
  readonly lineClasses = DYNO_LINE_CLASSES;

  /** wants() without the remembered instances (which need the app): wantsDynoLine, its superset. */
  mayWant(e: DrainEvent): boolean {
    return wantsDynoLine(e);
  }

  wants(e: DrainEvent): boolean {
    const source = e.source;
    if (source !== 'heroku') return source === 'app' && wantsRelease(e);
    const p = e.process;
    if (p === 'router') return false;
    const known = this.#knownOf(e.app)?.get(p);
    if (known === undefined && !isDynoProcess(p)) return false;
    if (known !== undefined) {
      // A remembered instance's prefix starts with `source=`: the test below is not needed for
      // the lines it takes (most of what wants() sees), only for the lines it does not.
      for (let i = 0; i < known.length; i++) {
        const k = known[i]!;
        // This instance's prefix with memory_total right after it, in one native compare. (A
        // load average of the instance would fail an 8-byte test of the field's head sooner, but
        // the prefilter, wantsDynoLine, leaves none to wants(): that test cost ~400 instructions
        // on every memory sample, callgrind.)
        if (!startsWithLong(e, k.memoryText, k.memoryBytes)) continue;
        const at = eventTimeMs(e);
        if (Math.floor(at / MINUTE_MS) === k.minute) return false;
        // observe() reads it next: what was found here is handed on, not found again. (Bounded
        // for a caller that asks wants() without observe(): forgetting costs a read.)
        if (this.#nHits >= MAX_HITS) this.#forgetHits();
        const n = this.#nHits++;
        this.#hits[n] = e;
        this.#hitOf[n] = k;
        this.#hitAt[n] = at;
        return true;
      }
    }
    if (!startsWith(e, SOURCE, SOURCE_BYTES)) return wantsLifecycle(e);
    if (known !== undefined) {
      // The platform writes memory_total first: a line of a remembered instance without it is its
      // load average (a prefix compare, cheaper than searching the line for memory_total).
      for (let i = 0; i < known.length; i++) if (startsWithLong(e, known[i]!.lineText, known[i]!.lineBytes)) return false;
    }
    // An instance not remembered yet, or a line laid out otherwise.
    return isMemoryLine(e);
  }

  /** Empties #hits, its events let go (they hold their bodies' bytes). */
  #forgetHits(): void {
    for (let i = 0; i < this.#nHits; i++) this.#hits[i] = this.#hitOf[i] = undefined;
    this.#nHits = 0;
  }

  /** The app's remembered instances; the last app asked for is kept (a body's lines share theirs). */
  #knownOf(app: string): Map<string, Stored[]> | undefined {
    if (app !== this.#lastApp) {
      this.#lastApp = app;
      this.#lastKnown = this.#stored.get(app);
    }
    return this.#lastKnown;
  }

  observe(app: string, events: readonly DrainEvent[], firings: readonly Firing[]): Observation {
    let samples: MemorySample[] | undefined;
    let lines: DrainEvent[] | undefined;
    let lifecycle: LifecycleEvent[] | undefined;
    const hits = this.#hits;
    const nHits = this.#nHits;
    let h = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const hit = h < nHits && hits[h] === e ? h++ : -1;
      if (hit >= 0 && e.readMessageBytes !== undefined) {
        // readDynoSample's answer for it: the prefix is this instance's (see #hits).
        const at = this.#hitAt[hit]!;
        const s = Number.isFinite(at) ? e.readMessageBytes(readKnownSampleBytes, this.#hitOf[hit]!, at) : undefined;
        if (s === undefined) continue;
        (samples ??= []).push(s);
        (lines ??= []).push(e);
      } else if (isRuntimeLine(e)) {
        const s = readDynoSample(e);
        if (s === undefined) continue;
        (samples ??= []).push(s);
        (lines ??= []).push(e);
      } else {
        const l = readDynoEvent(e);
        if (l !== undefined) (lifecycle ??= []).push(l);
      }
    }
    if (nHits > 0) this.#forgetHits();
    if (firings.length > 0) lifecycle = this.remediations(app, firings, lifecycle);
    if (samples === undefined && lifecycle === undefined) return NOTHING;
    return new DynoObservation(this, app, samples ?? NONE, lines ?? NONE, lifecycle ?? NONE);
  }

  /** `events` with the firings for a dyno of this app added as remediations (a copy; undefined when none). */
  remediations(app: string, firings: readonly Firing[], events?: readonly LifecycleEvent[]): LifecycleEvent[] | undefined {
    let out: LifecycleEvent[] | undefined;
    for (const f of firings) {
      if (f.app !== app || !SHAPES.dyno.test(f.target)) continue;
      (out ??= events === undefined ? [] : [...events]).push({ kind: 'remediation', dyno: f.target, at: firedAtLineTime(f), detail: `${f.rule}/${f.actions.map((a) => a.type).join('+')}` });
    }
    return out ?? (events === undefined ? undefined : [...events]);
  }

  /** Writes one delivery's records, then remembers what it wrote. */
  async write(app: string, samples: readonly MemorySample[], lines: readonly DrainEvent[], events: readonly LifecycleEvent[]): Promise<void> {
    const life = this.life;
    const stored = this.store.write(app, { samples, events });
    await (life === undefined ? stored : Promise.all([stored, life.write(app, lifeBatchOf(samples, events))]));
    this.written(app, samples, lines);
  }

  /**
   * write()'s script calls as parts of the drain's body script (one round trip with the votes);
   * undefined when a store cannot make them (then the pipeline calls write()).
   */
  parts(app: string, samples: readonly MemorySample[], events: readonly LifecycleEvent[]): readonly BodyPart[] | undefined {
    const { store, life } = this;
    if (!store.part || (life && !life.recordsPart)) return undefined;
    const d = store.part(app, { samples, events });
    const l = life === undefined ? undefined : life.recordsPart!(app, samples, events);
    if (d === undefined) return l === undefined ? NO_PARTS : [l];
    return l === undefined ? [d] : [d, l];
  }

  /** After the records were written (by write() or the body script). */
  written(app: string, samples: readonly MemorySample[], lines: readonly DrainEvent[]): void {
    // Only once written: a sample dropped for a minute that was never stored would be lost.
    if (samples.length > 0) this.#remember(app, samples, lines);
  }

  counted(app: string, counts: DynoCounts): void {
    this.onCount?.(app, counts);
  }

  #remember(app: string, samples: readonly MemorySample[], lines: readonly DrainEvent[]): void {
    let byDyno = this.#stored.get(app);
    if (byDyno === undefined) {
      if (this.#stored.size >= MAX_APPS) this.#stored.clear();
      this.#stored.set(app, (byDyno = new Map()));
      this.#lastApp = undefined;
    }
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i]!;
      const minute = Math.floor(s.at / MINUTE_MS);
      let known = byDyno.get(s.dyno);
      const k = known === undefined ? undefined : storedOf(known, s.instance);
      if (k !== undefined) {
        if (minute > k.minute) k.minute = minute;
        continue;
      }
      const text = lines[i]!.message;
      const end = instanceEnd(text, s.dyno);
      // A sample line is laid out as the platform writes it (readMemorySample): memory_total next.
      if (end < 0 || !text.startsWith(` ${MEMORY_FIELD}`, end)) continue;
      const lineText = text.slice(0, end + 1);
      const memoryText = lineText + MEMORY_FIELD;
      if (known === undefined) {
        if (byDyno.size >= MAX_DYNOS_PER_APP) byDyno.clear();
        byDyno.set(s.dyno, (known = []));
      }
      if (known.length >= MAX_INSTANCES_PER_DYNO) known.shift();
      known.push({ dyno: s.dyno, instance: s.instance, fieldsAt: end, lineText, lineBytes: Buffer.from(lineText), memoryText, memoryBytes: Buffer.from(memoryText), minute });
    }
  }
}

/** The lifecycle lines of a batch, per app, as the dyno observer would write them. */
export function lifeBatchOfEvents(events: readonly DrainEvent[]): Map<string, LifeBatch> {
  const by = new Map<string, { samples: MemorySample[]; events: LifecycleEvent[] }>();
  for (const e of events) {
    if (!wantsDynoLine(e)) continue;
    const r = readDynoLine(e);
    if (r === undefined) continue;
    let g = by.get(e.app);
    if (!g) by.set(e.app, (g = { samples: [], events: [] }));
    if ('sample' in r) g.samples.push(r.sample);
    else g.events.push(r.event);
  }
  return new Map([...by].map(([app, g]) => [app, lifeBatchOf(g.samples, g.events)]));
}

const NONE: readonly never[] = Object.freeze([]);
const NO_PARTS: readonly BodyPart[] = Object.freeze([]);

function storedOf(known: readonly Stored[], instance: string): Stored | undefined {
  for (let i = 0; i < known.length; i++) if (known[i]!.instance === instance) return known[i];
  return undefined;
}

/** One delivery's records (a class, not closures: one is made per body with dyno lines). */
class DynoObservation implements Observation {
  constructor(
    private readonly observer: DynoObserver,
    private readonly app: string,
    private readonly samples: readonly MemorySample[],
    private readonly lines: readonly DrainEvent[],
    private readonly events: readonly LifecycleEvent[],
  ) {}

  store(): Promise<void> {
    return this.observer.write(this.app, this.samples, this.lines, this.events);
  }

  parts(): readonly BodyPart[] | undefined {
    return this.observer.parts(this.app, this.samples, this.events);
  }

  written(): void {
    this.observer.written(this.app, this.samples, this.lines);
  }

  count(): void {
    this.observer.counted(this.app, { samples: this.samples.length, events: this.events.length });
  }

  withFirings(firings: readonly Firing[]): Observation {
    const events = this.observer.remediations(this.app, firings, this.events);
    return events === undefined || events.length === this.events.length ? this : new DynoObservation(this.observer, this.app, this.samples, this.lines, events);
  }
}

/**
 * A firing's time in line time: the newest timestamp of its trigger lines (`TIMESTAMP src[proc]:
 * …`), as lifecycle and trends use, so replay marks it where the service does; else the engine
 * time. The newest, not the last: the service orders a window's lines by arrival, and the lines
 * of one body arrive together.
 */
function firedAtLineTime(f: Firing): number {
  let at = Number.NEGATIVE_INFINITY;
  for (const line of f.triggerLines) {
    const t = timestampMs(line.slice(0, Math.max(0, line.indexOf(' '))));
    if (t > at) at = t;
  }
  return Number.isFinite(at) ? at : f.firedAt;
}
