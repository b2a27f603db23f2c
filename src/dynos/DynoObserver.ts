import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { Observation, Observer } from '../observe/Observer.js';
import type { Firing } from '../rules/Firing.js';
import { SHAPES } from '../rules/shapes.js';
import type { LifecycleEvent, MemorySample } from './DynoRecord.js';
import type { DynoStore } from './DynoStore.js';
import { readDynoLine, wantsDynoLine } from './dynoLines.js';
import { timestampMs } from '../ingest/timestampMs.js';

export interface DynoCounts {
  samples: number;
  events: number;
}

/**
 * Lifecycle and memory trends from the drain, and mallet's own remediations (the firings the
 * rules decided) so the report can mark them.
 */
export class DynoObserver implements Observer {
  constructor(private readonly store: DynoStore, private readonly onCount?: (app: string, counts: DynoCounts) => void) {}

  wants(event: DrainEvent): boolean {
    return wantsDynoLine(event);
  }

  observe(app: string, events: readonly DrainEvent[], firings: readonly Firing[]): Observation {
    const samples: MemorySample[] = [];
    const lifecycle: LifecycleEvent[] = [];
    for (const e of events) {
      const r = readDynoLine(e);
      if (r === undefined) continue;
      if ('sample' in r) samples.push(r.sample);
      else lifecycle.push(r.event);
    }
    for (const f of firings) {
      if (f.app !== app || !SHAPES.dyno.test(f.target)) continue;
      lifecycle.push({ kind: 'remediation', dyno: f.target, at: firedAtLineTime(f), detail: `${f.rule}/${f.actions.map((a) => a.type).join('+')}` });
    }
    const batch = { samples, events: lifecycle };
    const store = this.store;
    return {
      store: () => store.write(app, batch),
      ...(store.part ? { parts: () => { const p = store.part!(app, batch); return p ? [p] : []; } } : {}),
      count: () => this.onCount?.(app, { samples: samples.length, events: lifecycle.length }),
    };
  }
}

/**
 * A firing's time in line time: the timestamp of its newest trigger line (`TIMESTAMP src[proc]: …`),
 * as lifecycle and trends use, so replay marks it where the service does; else the engine time.
 */
function firedAtLineTime(f: Firing): number {
  const last = f.triggerLines[f.triggerLines.length - 1];
  const at = last === undefined ? Number.NaN : timestampMs(last.slice(0, Math.max(0, last.indexOf(' '))));
  return Number.isFinite(at) ? at : f.firedAt;
}
