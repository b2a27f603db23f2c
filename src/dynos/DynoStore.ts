import type { DynoBatch, LifecycleEvent, LifecycleKind, MemorySample } from './DynoRecord.js';

/** One instance as the store gives it back: its meta and its downsampled memory series. */
export interface InstanceSeries {
  readonly instance: string;
  readonly dyno: string;
  readonly firstAt: number;
  readonly lastAt: number;
  readonly limitMb: number | undefined;
  readonly maxSwapMb: number;
  /** [slot start ms, MB], in time order. */
  readonly points: ReadonlyArray<readonly [number, number]>;
}

export interface DynoSnapshot {
  /** By first sample, then instance id. */
  readonly instances: readonly InstanceSeries[];
  /** By time, then text. */
  readonly events: readonly LifecycleEvent[];
}

/** Where lifecycle and trends live: Redis in the service, memory in `mallet replay --report`. */
export interface DynoStore {
  /** Idempotent: writing the same batch again changes nothing. */
  write(app: string, batch: DynoBatch): Promise<void>;
  read(app: string): Promise<DynoSnapshot>;
}

/** A sample group per instance, samples in time order: both stores apply them the same way. */
export interface InstanceGroup {
  readonly instance: string;
  readonly dyno: string;
  readonly samples: readonly MemorySample[];
}

export function groupSamples(samples: readonly MemorySample[]): InstanceGroup[] {
  const by = new Map<string, { instance: string; dyno: string; samples: MemorySample[] }>();
  for (const s of samples) {
    let g = by.get(s.instance);
    if (!g) by.set(s.instance, (g = { instance: s.instance, dyno: s.dyno, samples: [] }));
    g.samples.push(s);
  }
  const groups = [...by.values()];
  for (const g of groups) g.samples.sort((a, b) => a.at - b.at);
  return groups;
}

/** An event's identity in the events set: the same line seen twice is one member. */
export function eventMember(e: LifecycleEvent): string {
  return `${e.kind}|${e.dyno}|${e.detail}|${e.at}`;
}

const KINDS = new Set<LifecycleKind>(['start', 'up', 'crash', 'exit', 'cycling', 'restart', 'release', 'remediation']);

export function parseEventMember(member: string, at: number): LifecycleEvent | undefined {
  const [kind, dyno, detail] = member.split('|');
  if (!KINDS.has(kind as LifecycleKind) || dyno === undefined || detail === undefined) return undefined;
  return { kind: kind as LifecycleKind, dyno, detail, at };
}

export function sortSnapshot(instances: InstanceSeries[], events: Array<LifecycleEvent & { member?: string }>): DynoSnapshot {
  instances.sort((a, b) => a.firstAt - b.firstAt || (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
  const keyed = events.map((e) => ({ e, m: eventMember(e) }));
  keyed.sort((a, b) => a.e.at - b.e.at || (a.m < b.m ? -1 : a.m > b.m ? 1 : 0));
  return { instances, events: keyed.map((k) => k.e) };
}
