import type { BodyPart } from '../bodyPart.js';
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
  /** write() as a part of the drain's body script, when the store is that Redis (undefined: nothing to write). */
  part?(app: string, batch: DynoBatch): BodyPart | undefined;
}

/**
 * A delivery's samples per instance, one entry per minute: the first sample of the minute (by
 * time, then line order), the others dropped. A slot is whole minutes and only its first written
 * sample counts (its value, and the instance's span, quota and swap peak), so a later sample of a
 * minute changes nothing anywhere: the observer drops it before parsing once the minute is
 * stored (DynoObserver), and a 20-second sampler costs Redis one slot write a minute. Both stores
 * apply these entries.
 */
export interface MinuteSample {
  readonly at: number;
  readonly valueMb: number;
  readonly limitMb: number | undefined;
  readonly swapMb: number | undefined;
}

export interface InstanceGroup {
  readonly instance: string;
  readonly dyno: string;
  readonly minutes: readonly MinuteSample[];
}

/** Heroku writes MB with two decimals; kept so, so that Lua's JSON (14 digits) and JS agree. */
const mb2 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? undefined : Math.round(Math.min(Math.max(v, 0), 1e7) * 100) / 100);

export function groupSamples(samples: readonly MemorySample[]): InstanceGroup[] {
  // Most deliveries carry one sample a minute has not seen yet: no map, no sort.
  if (samples.length === 1) {
    const raw = samples[0]!;
    if (!Number.isFinite(raw.at) || !Number.isFinite(raw.valueMb)) return [];
    return [{ instance: raw.instance, dyno: raw.dyno, minutes: [minuteSample(raw)] }];
  }
  const by = new Map<string, { dyno: string; samples: MemorySample[] }>();
  for (const s of samples) {
    if (!Number.isFinite(s.at) || !Number.isFinite(s.valueMb)) continue;
    let g = by.get(s.instance);
    if (!g) by.set(s.instance, (g = { dyno: s.dyno, samples: [] }));
    g.samples.push(s);
  }
  const groups: InstanceGroup[] = [];
  for (const [instance, g] of by) {
    // Stable sort: within one ms, line order decides the first.
    g.samples.sort((a, b) => Math.trunc(a.at) - Math.trunc(b.at));
    const minutes: MinuteSample[] = [];
    let minute = Number.NaN;
    for (const raw of g.samples) {
      const at = Math.trunc(raw.at);
      const m = Math.floor(at / 60_000);
      if (m === minute) continue;
      minute = m;
      minutes.push(minuteSample(raw));
    }
    groups.push({ instance, dyno: g.dyno, minutes });
  }
  return groups;
}

function minuteSample(raw: MemorySample): MinuteSample {
  return { at: Math.trunc(raw.at), valueMb: mb2(raw.valueMb)!, limitMb: mb2(raw.limitMb), swapMb: mb2(raw.swapMb) };
}

/** An event's identity in the events set: the same line seen twice is one member. */
export function eventMember(e: LifecycleEvent): string {
  return `${e.kind}|${e.dyno}|${e.detail}|${e.at}`;
}

const KINDS = new Set<LifecycleKind>(['start', 'up', 'crash', 'exit', 'cycling', 'restart', 'release', 'remediation', 'quota-restart']);

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

/** Past this many samples in one delivery the pairwise grouping below would cost more than groupSamples' map. */
const PAIRWISE_MAX = 16;
/**
 * pushSampleGroups' indices of one group, reused (it is synchronous); its first `n` entries
 * count, as setting its length to 0 would give its storage back to be made again next group.
 */
const groupScratch: number[] = new Array<number>(PAIRWISE_MAX).fill(0);

/**
 * groupSamples(samples) as the dyno script's arguments (dynoScript.ts: per group instance, dyno,
 * n minutes, then n x (at, MB, quota or '', swap or '')) pushed onto `args`, and each group's
 * instance onto `instances`, without the groups, their arrays and their minute objects: a
 * delivery carries a sample or a few, so the groups are found pairwise. The same groups, in the
 * same order, with the same minutes (test/dynos/sampleArgs.test.ts).
 */
export function pushSampleGroups(samples: readonly MemorySample[], instances: string[], args: (string | number)[]): void {
  const n = samples.length;
  if (n > PAIRWISE_MAX) {
    for (const g of groupSamples(samples)) {
      instances.push(g.instance);
      args.push(g.instance, g.dyno, g.minutes.length);
      for (const m of g.minutes) args.push(m.at, m.valueMb, m.limitMb ?? '', m.swapMb ?? '');
    }
    return;
  }
  const idx = groupScratch;
  for (let i = 0; i < n; i++) {
    const s = samples[i]!;
    if (!usable(s) || seenBefore(samples, i, s.instance)) continue;
    // This instance's samples in line order, then stably by whole ms (groupSamples' sort).
    let len = 0;
    for (let j = i; j < n; j++) {
      const t = samples[j]!;
      if (t.instance !== s.instance || !usable(t)) continue;
      const at = Math.trunc(t.at);
      let k = len++;
      while (k > 0 && Math.trunc(samples[idx[k - 1]!]!.at) > at) { idx[k] = idx[k - 1]!; k--; }
      idx[k] = j;
    }
    instances.push(s.instance);
    args.push(s.instance, s.dyno, 0);
    const count = args.length - 1;
    let minutes = 0;
    let minute = Number.NaN;
    for (let k = 0; k < len; k++) {
      const raw = samples[idx[k]!]!;
      const at = Math.trunc(raw.at);
      const m = Math.floor(at / 60_000);
      if (m === minute) continue;
      minute = m;
      minutes++;
      args.push(at, mb2(raw.valueMb)!, mb2(raw.limitMb) ?? '', mb2(raw.swapMb) ?? '');
    }
    args[count] = minutes;
  }
}

function usable(s: MemorySample): boolean {
  return Number.isFinite(s.at) && Number.isFinite(s.valueMb);
}

/** Whether a usable sample before samples[i] is of `instance` (its group is already out). */
function seenBefore(samples: readonly MemorySample[], i: number, instance: string): boolean {
  for (let j = 0; j < i; j++) if (samples[j]!.instance === instance && usable(samples[j]!)) return true;
  return false;
}
