import type { BodyPart } from '../bodyPart.js';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import { lineClassOf } from '../ingest/lineClass.js';
import type { Firing } from '../rules/Firing.js';

/**
 * The pipeline's second kind of consumer, beside the rules engine: it sees each delivery's events
 * once and keeps what it learns (dyno lifecycle, memory trends). Same discipline as the rules:
 * `observe` only reads the events and decides what to write; `store` writes it idempotently (a
 * delivery that failed half-way, or two in flight at once, write the same thing again); `count`
 * is called once, for the delivery that was first. A retried frame adds nothing, a failed
 * delivery (nothing stored, or stored and retried) adds nothing either.
 */
export interface Observer {
  /**
   * The line classes (src/ingest/lineClass.ts) it may want, as a mask: a line of any other class
   * is passed over with one bit test, never shown to `wants`. Most of a drain is router and app
   * output, so most lines cost an observer nothing.
   */
  readonly lineClasses: number;
  /**
   * Cheap prefilter, called for every line of those classes: it reads the header fields (source,
   * process) and at most byte-level prefix tests, never the decoded message.
   */
  wants(event: DrainEvent): boolean;
  /**
   * The same question before the line is a message of its own (a syslog read, where a line no
   * consumer may want is never made into an object): header fields and byte tests only, no
   * `app`, no state; true for every line `wants` could take. Absent: every line of its classes.
   */
  mayWant?(event: DrainEvent): boolean;
  /**
   * The wanted events of one delivery, in order, and the firings the rules decided for it. The
   * array is the caller's scratch, reused for the next delivery: keep what it holds, not it.
   */
  observe(app: string, events: readonly DrainEvent[], firings: readonly Firing[]): Observation;
}

export interface Observation {
  store(): Promise<void>;
  count(): void;
  /**
   * The same writes as store(), as parts of the drain's body script, so they share the one round
   * trip of the body's votes (src/server/bodyScript.ts); absent when the store cannot (then the
   * pipeline calls store()).
   */
  parts?(): readonly BodyPart[] | undefined;
  /** Told once the parts were written by the body script (what store() does after its write). */
  written?(): void;
  /**
   * This observation with the delivery's firings added (the remediations the rules decided once
   * they are stored), without reading the lines again; absent: the firings add nothing.
   */
  withFirings?(firings: readonly Firing[]): Observation;
}

const STORED: Promise<void> = Promise.resolve();
const NO_PARTS: readonly BodyPart[] = Object.freeze([]);
const NO_EVENTS: readonly DrainEvent[] = Object.freeze([]);

/** A delivery no observer wants a line of (most of them): nothing to write, nothing allocated. */
export const NOTHING: Observation = Object.freeze({ store: () => STORED, count: () => {}, parts: () => NO_PARTS });

/** The wanted lines of one delivery, reused: observe() is synchronous and keeps none of it. */
const scratch: DrainEvent[] = [];

/** One observation over several observers, each seeing only the events it wants. */
export function observeAll(observers: readonly Observer[], app: string, events: readonly DrainEvent[], firings: readonly Firing[]): Observation {
  if (observers.length === 1) return observeOne(observers[0]!, app, events, firings) ?? NOTHING;
  if (observers.length === 0) return NOTHING;
  return combined(observers.map((o) => [o, observeOne(o, app, events, firings)] as const), app) ?? NOTHING;
}

/**
 * `observation` (observeAll's, for the same delivery) with its firings: what observeAll would
 * give for the events and the firings, without the lines being filtered and read again.
 */
export function withFirings(observation: Observation, observers: readonly Observer[], app: string, firings: readonly Firing[]): Observation {
  if (firings.length === 0) return observation;
  if (observation === NOTHING) return observeAll(observers, app, NO_EVENTS, firings);
  return observation.withFirings?.(firings) ?? observation;
}

function observeOne(o: Observer, app: string, events: readonly DrainEvent[], firings: readonly Firing[]): Observation | undefined {
  const mask = o.lineClasses;
  const wanted = scratch;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    // A bit test, no call, for the lines of classes the observer never reads.
    if (((e.lineClass ?? lineClassOf(e.source, e.process)) & mask) !== 0 && o.wants(e)) wanted.push(e);
  }
  if (wanted.length === 0 && firings.length === 0) return undefined;
  try {
    return o.observe(app, wanted, firings);
  } finally {
    wanted.length = 0;
  }
}

type Entry = readonly [Observer, Observation | undefined];

/** Several observers' observations as one; undefined when none has any. */
function combined(entries: readonly Entry[], app: string): Observation | undefined {
  const parts: Observation[] = [];
  for (const [, p] of entries) if (p !== undefined) parts.push(p);
  if (parts.length === 0) return undefined;
  return {
    store: async () => { await Promise.all(parts.map((p) => p.store())); },
    count: () => { for (const p of parts) p.count(); },
    parts: () => {
      const all: BodyPart[] = [];
      for (const p of parts) {
        const mine = p.parts?.();
        if (mine === undefined) return undefined;
        all.push(...mine);
      }
      return all;
    },
    written: () => { for (const p of parts) p.written?.(); },
    withFirings: (firings) => combined(entries.map(([o, p]) => [o, p === undefined ? observeOne(o, app, NO_EVENTS, firings) : (p.withFirings?.(firings) ?? p)] as const), app) ?? NOTHING,
  };
}
