import { LIFE_BOUNDS, type AppLife, type DynoLife } from './instanceLife.js';

/** How long before an instance's first sample its `Starting process` line may be (boot, release phase). */
export const START_BEFORE_FIRST_SAMPLE_MS = 5 * 60_000;

export interface InstanceAt {
  /** The instance the line is taken to be from: named by the line, or attributed (below). */
  readonly instance?: string;
  /** When that instance (or, unattributed, the dyno name's newest process) started; undefined = unknown. */
  readonly start?: number;
}

/**
 * Which instance of `dyno` a line at `t` comes from, and when it started.
 *
 * A runtime-metrics line names its instance: its start is the start line (`Starting process`, or
 * `starting to up`) nearest before its first sample, within 5 minutes, else that first sample.
 *
 * Any other line (an R14, an app line) names none. The instances running at `t` are those sampled
 * from at or before `t` until `LIFE_BOUNDS.liveMs` after it. One running: the line is its. Two
 * (a preboot overlap: the old, bloated web.1 and the fresh one) cannot be told apart, and the line
 * is attributed to the older. That is the safe choice: a stop meant for the old one is right, or
 * stops a process Heroku is about to stop anyway (preboot shuts the old dynos down once the new
 * ones are up); a name-only stop could instead be taken by the fresh one, which has just taken the
 * traffic, and an attribution to an instance already gone is a stop nobody takes (the key
 * expires). None running, or runtime metrics off: no instance, the stop is by name as before.
 *
 * The start of such a line is the dyno name's newest start at or before `t` (a `Starting process`,
 * `State changed from starting to up`, or first sample of an instance), whichever instance it
 * was attributed to: so a restart's grace covers its boot even while the previous instance still
 * counts as running, and in a preboot overlap the old instance's lines share the new one's grace
 * (not counted, which errs on the side of not stopping).
 */
export function instanceAt(d: DynoLife, t: number, named?: string): InstanceAt {
  if (named !== undefined) {
    const own = d.instances.find((x) => x[0] === named);
    if (own && own[1] <= t) return { instance: named, start: startBefore(d, own[1]) };
    return { instance: named, ...latestStart(d, t) };
  }
  let oldest: readonly [string, number, number] | undefined;
  for (const x of d.instances) {
    if (x[1] > t || t > x[2] + LIFE_BOUNDS.liveMs) continue;
    if (!oldest || x[1] < oldest[1] || (x[1] === oldest[1] && x[0] < oldest[0])) oldest = x;
  }
  return { ...(oldest ? { instance: oldest[0] } : {}), ...latestStart(d, t) };
}

/**
 * The latest start line in the span before the first sample: the nearest one belongs to this
 * instance (an earlier one to the instance before it).
 */
function startBefore(d: DynoLife, first: number): number {
  let best: number | undefined;
  for (const s of d.starts) if (s <= first && s >= first - START_BEFORE_FIRST_SAMPLE_MS && (best === undefined || s > best)) best = s;
  return best ?? first;
}

function latestStart(d: DynoLife, t: number): { start?: number } {
  let best: number | undefined;
  for (const s of d.starts) if (s <= t && (best === undefined || s > best)) best = s;
  for (const x of d.instances) if (x[1] <= t && (best === undefined || x[1] > best)) best = x[1];
  return best === undefined ? {} : { start: best };
}

/** The app's newest release at or before `t`. */
export function releaseAt(life: AppLife, t: number): number | undefined {
  let best: number | undefined;
  for (const r of life.releases) if (r <= t && (best === undefined || r > best)) best = r;
  return best;
}
