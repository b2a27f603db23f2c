import type { BodyPart } from '../server/bodyScript.js';
import type { DrainEvent } from '../ingest/DrainEvent.js';
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
   * Cheap prefilter, called for every line: it reads the header fields (source, process) and at
   * most byte-level prefix tests, never the decoded message, so a line no observer wants costs
   * nothing else.
   */
  wants(event: DrainEvent): boolean;
  /** The wanted events of one delivery, in order, and the firings the rules decided for it. */
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
}

const NOTHING: Observation = { store: async () => {}, count: () => {}, parts: () => [] };

/** One observation over several observers, each seeing only the events it wants. */
export function observeAll(observers: readonly Observer[], app: string, events: readonly DrainEvent[], firings: readonly Firing[]): Observation {
  if (observers.length === 0) return NOTHING;
  const parts: Observation[] = [];
  for (const o of observers) {
    const wanted: DrainEvent[] = [];
    for (let i = 0; i < events.length; i++) if (o.wants(events[i]!)) wanted.push(events[i]!);
    if (wanted.length > 0 || firings.length > 0) parts.push(o.observe(app, wanted, firings));
  }
  if (parts.length === 0) return NOTHING;
  if (parts.length === 1) return parts[0]!;
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
  };
}
