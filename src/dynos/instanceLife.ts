import type { BodyPart } from '../bodyPart.js';
import type { LifecycleEvent, MemorySample } from './DynoRecord.js';

/**
 * What the rules need of the dyno lifecycle, per app: the app's recent releases and, per dyno
 * name, its recent process starts and its recent instances (uuid, first and last memory sample).
 * Kept apart from the trends (DynoStore) so that the rules read one small hash field per target,
 * not the app's whole history. Line times throughout, so replay judges as the service does.
 *
 * Every merge is a union cut to the newest few, so merging is order-free: the Redis store
 * (lifeScript.ts), the in-memory one (lifeMemory.ts) and the rules' view of a body not yet stored
 * give the same state for the same lines.
 */
export const LIFE_BOUNDS = Object.freeze({
  /** Release times kept per app, process starts per dyno name, instances per dyno name. */
  releases: 8,
  starts: 8,
  instances: 4,
  /** Dyno names kept per app (the least recently heard of go first). */
  dynos: 2000,
  /**
   * An instance counts as running until this long after its last sample: log-runtime-metrics
   * samples every 20 s, so three missed samples.
   */
  liveMs: 60_000,
});

export interface DynoLife {
  /** `Starting process with command` and `State changed from starting to up` times, ascending. */
  readonly starts: readonly number[];
  /** [uuid, first sample, last sample], the newest last sample first. */
  readonly instances: ReadonlyArray<readonly [string, number, number]>;
}

export interface AppLife {
  readonly releases: readonly number[];
  readonly dynos: ReadonlyMap<string, DynoLife>;
}

/** One delivery's lines as the life state takes them. */
export interface LifeBatch {
  readonly releases: readonly number[];
  /** [dyno, at] */
  readonly starts: ReadonlyArray<readonly [string, number]>;
  /** [dyno, uuid, at] */
  readonly samples: ReadonlyArray<readonly [string, string, number]>;
}

export const EMPTY_DYNO: DynoLife = Object.freeze({ starts: [], instances: [] });

export function lifeBatchOf(samples: readonly MemorySample[], events: readonly LifecycleEvent[]): LifeBatch {
  const releases: number[] = [];
  const starts: [string, number][] = [];
  for (const e of events) {
    if (e.kind === 'release') releases.push(Math.trunc(e.at));
    else if (e.kind === 'start' || e.kind === 'up') starts.push([e.dyno, Math.trunc(e.at)]);
  }
  return { releases, starts, samples: samples.map((s) => [s.dyno, s.instance, Math.trunc(s.at)] as const) };
}

export function isEmptyBatch(b: LifeBatch): boolean {
  return b.releases.length === 0 && b.starts.length === 0 && b.samples.length === 0;
}

/** The newest `n` distinct times, ascending. */
export function newestTimes(a: readonly number[], b: readonly number[], n: number): number[] {
  const all = [...new Set([...a, ...b])].sort((x, y) => x - y);
  return all.slice(Math.max(0, all.length - n));
}

/** Instances merged (first = min, last = max), the `n` with the newest last sample kept. */
export function mergeInstances(
  a: ReadonlyArray<readonly [string, number, number]>, samples: ReadonlyArray<readonly [string, number]>, n: number,
): Array<[string, number, number]> {
  const by = new Map<string, [string, number, number]>();
  for (const [id, f, l] of a) by.set(id, [id, f, l]);
  for (const [id, at] of samples) {
    const cur = by.get(id);
    if (!cur) by.set(id, [id, at, at]);
    else {
      if (at < cur[1]) cur[1] = at;
      if (at > cur[2]) cur[2] = at;
    }
  }
  return sortInstances([...by.values()]).slice(0, n);
}

/** Newest last sample first, then by id (the Lua script sorts the same way). */
export function sortInstances<T extends readonly [string, number, number]>(list: T[]): T[] {
  return list.sort((x, y) => y[2] - x[2] || (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}

export function mergeDyno(d: DynoLife, starts: readonly number[], samples: ReadonlyArray<readonly [string, number]>): DynoLife {
  return {
    starts: newestTimes(d.starts, starts, LIFE_BOUNDS.starts),
    instances: mergeInstances(d.instances, samples, LIFE_BOUNDS.instances),
  };
}

/** The batch grouped per dyno name (in first-seen order). */
export function batchByDyno(b: LifeBatch): Map<string, { starts: number[]; samples: [string, number][] }> {
  const by = new Map<string, { starts: number[]; samples: [string, number][] }>();
  const of = (dyno: string) => {
    let g = by.get(dyno);
    if (!g) by.set(dyno, (g = { starts: [], samples: [] }));
    return g;
  };
  for (const [dyno, at] of b.starts) of(dyno).starts.push(at);
  for (const [dyno, id, at] of b.samples) of(dyno).samples.push([id, at]);
  return by;
}

/** Stored form of a DynoLife (a hash field): `s1,s2|uuid,first,last;uuid,first,last`. */
export function encodeDyno(d: DynoLife): string {
  return `${d.starts.map(String).join(',')}|${d.instances.map(([id, f, l]) => `${id},${f},${l}`).join(';')}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function decodeDyno(text: string | null | undefined): DynoLife {
  if (!text) return EMPTY_DYNO;
  const bar = text.indexOf('|');
  if (bar < 0) return EMPTY_DYNO;
  const starts = text.slice(0, bar).split(',').filter((s) => s !== '').map(Number).filter(Number.isFinite);
  const instances: [string, number, number][] = [];
  for (const part of text.slice(bar + 1).split(';')) {
    const [id, f, l] = part.split(',');
    if (id === undefined || !UUID.test(id)) continue;
    const first = Number(f);
    const last = Number(l);
    if (Number.isFinite(first) && Number.isFinite(last)) instances.push([id, first, last]);
  }
  return { starts, instances };
}

export function encodeTimes(t: readonly number[]): string {
  return t.map(String).join(',');
}

export function decodeTimes(text: string | null | undefined): number[] {
  if (!text) return [];
  return text.split(',').filter((s) => s !== '').map(Number).filter(Number.isFinite);
}

/** Where the life state lives: Redis in the service, memory in `mallet test` / `mallet replay`. */
export interface LifeStore {
  /** The app's releases and the named dynos' state (an unknown dyno reads as empty). */
  read(app: string, dynos: readonly string[]): Promise<AppLife>;
  /** Idempotent: writing the same batch again changes nothing. */
  write(app: string, batch: LifeBatch): Promise<void>;
  /**
   * write(app, lifeBatchOf(samples, events)) as a part of the drain's body script, when the store
   * is that Redis (undefined: nothing to write); the batch is not made.
   */
  recordsPart?(app: string, samples: readonly MemorySample[], events: readonly LifecycleEvent[]): BodyPart | undefined;
}
