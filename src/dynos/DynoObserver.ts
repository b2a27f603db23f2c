import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { Observation, Observer } from '../observe/Observer.js';
import type { Firing } from '../rules/Firing.js';
import { SHAPES } from '../rules/shapes.js';
import type { LifecycleEvent, MemorySample } from './DynoRecord.js';
import type { DynoStore } from './DynoStore.js';
import { readDynoLine, wantsDynoLine } from './dynoLines.js';
import { timestampMs } from '../ingest/timestampMs.js';
import { lifeBatchOf, type LifeBatch, type LifeStore } from './instanceLife.js';

export interface DynoCounts {
  samples: number;
  events: number;
}

/**
 * Lifecycle and memory trends from the drain, and mallet's own remediations (the firings the
 * rules decided) so the report can mark them.
 */
export class DynoObserver implements Observer {
  constructor(
    private readonly store: DynoStore,
    private readonly onCount?: (app: string, counts: DynoCounts) => void,
    /** The rules' view of the lifecycle (instanceLife.ts), written beside the trends. */
    private readonly life?: LifeStore,
  ) {}

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
    const life = this.life;
    return {
      store: async () => {
        await Promise.all([
          this.store.write(app, { samples, events: lifecycle }),
          life?.write(app, lifeBatchOf(samples, lifecycle)),
        ]);
      },
      count: () => this.onCount?.(app, { samples: samples.length, events: lifecycle.length }),
    };
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

/**
 * A firing's time in line time: the timestamp of its newest trigger line (`TIMESTAMP src[proc]: …`),
 * as lifecycle and trends use, so replay marks it where the service does; else the engine time.
 */
function firedAtLineTime(f: Firing): number {
  const last = f.triggerLines[f.triggerLines.length - 1];
  const at = last === undefined ? Number.NaN : timestampMs(last.slice(0, Math.max(0, last.indexOf(' '))));
  return Number.isFinite(at) ? at : f.firedAt;
}
