import type { DrainEvent } from '../ingest/DrainEvent.js';
import { eventTimeMs } from '../ingest/timestampMs.js';
import { readDynoLine, wantsDynoLine } from '../dynos/dynoLines.js';
import { instanceAt, releaseAt } from '../dynos/instanceAt.js';
import { EMPTY_DYNO, LIFE_BOUNDS, lifeBatchOf, mergeDyno, newestTimes, type AppLife, type DynoLife, type LifeStore } from '../dynos/instanceLife.js';
import type { RuleGrace } from './CompiledRule.js';
import { instanceOf } from './instance.js';

/**
 * What the dyno lifecycle says about one matched line: the instance it is taken to be from, whether
 * it is inside its rule's grace, and from when its threshold window counts.
 */
export interface LifeJudgement {
  /** The instance a stop key is for (instanceAt.ts): named by the line or attributed; else by name. */
  readonly instance?: string;
  /** The grace spell the line is in (`start:<ms>` / `release:<ms>`): counted as `grace`, not toward the threshold. */
  readonly grace?: string;
  /**
   * The instance's start in the engine clock: votes of the window older than this no longer count,
   * so a restarted dyno (a new instance) starts its window afresh.
   */
  readonly sinceMs?: number;
  /** The facts it was judged on, in the line's time: for saying why (`mallet replay --explain`). */
  readonly facts?: LifeAt;
}

export interface LifeQuery {
  readonly event: DrainEvent;
  readonly target: string;
  /** The line's engine-clock time (the vote's). */
  readonly time: number;
  readonly grace: RuleGrace | undefined;
}

/** Lifecycle targets are dyno names: Cedar `web.1` only (the lifecycle lines are Cedar's). */
export const CEDAR_DYNO = /^[a-z][a-z0-9_]*\.[0-9]{1,6}$/;

/**
 * Judges each query against the stored lifecycle and the lines of this same body before it (the
 * rules run before the observers store a delivery, so a `Starting process` line and an R14 in one
 * body must still meet). Only the lines before a match count, whatever the body boundaries, so
 * the service, `mallet test` (one line a body) and `mallet replay` (batches) judge alike.
 * One read per app with such targets; none when no query has one. The drain's body script does
 * the same in Lua, in its one call (graceScript.ts; test/server/bodyScriptEquivalence.test.ts).
 */
export async function judgeLifecycle(events: readonly DrainEvent[], queries: readonly LifeQuery[], store: LifeStore): Promise<(LifeJudgement | undefined)[]> {
  const out: (LifeJudgement | undefined)[] = queries.map(() => undefined);
  const perApp = new Map<string, Set<string>>();
  const byEvent = new Map<DrainEvent, number[]>();
  queries.forEach((q, i) => {
    if (!hasLifecycle(q.target)) return;
    let set = perApp.get(q.event.app);
    if (!set) perApp.set(q.event.app, (set = new Set()));
    set.add(q.target);
    const list = byEvent.get(q.event);
    if (list) list.push(i);
    else byEvent.set(q.event, [i]);
  });
  if (perApp.size === 0) return out;
  const state = new Map<string, { releases: number[]; dynos: Map<string, DynoLife> }>();
  await Promise.all([...perApp].map(async ([app, dynos]) => {
    const life = await store.read(app, [...dynos]);
    state.set(app, { releases: [...life.releases], dynos: new Map(life.dynos) });
  }));
  for (const e of events) {
    const s = state.get(e.app);
    if (!s) continue;
    if (wantsDynoLine(e)) apply(s, e);
    const mine = byEvent.get(e);
    if (mine) for (const i of mine) out[i] = judgeOne(s, queries[i]!);
  }
  return out;
}

function apply(s: { releases: number[]; dynos: Map<string, DynoLife> }, e: DrainEvent): void {
  const r = readDynoLine(e);
  if (r === undefined) return;
  const b = 'sample' in r ? lifeBatchOf([r.sample], []) : lifeBatchOf([], [r.event]);
  if (b.releases.length > 0) s.releases = newestTimes(s.releases, b.releases, LIFE_BOUNDS.releases);
  for (const [dyno, at] of b.starts) if (s.dynos.has(dyno)) s.dynos.set(dyno, mergeDyno(s.dynos.get(dyno)!, [at], []));
  for (const [dyno, id, at] of b.samples) if (s.dynos.has(dyno)) s.dynos.set(dyno, mergeDyno(s.dynos.get(dyno)!, [], [[id, at]]));
}

function judgeOne(s: AppLife, q: LifeQuery): LifeJudgement | undefined {
  const t = eventTimeMs(q.event);
  if (!Number.isFinite(t)) return undefined;
  const at = lifeAt(s, q.target, t, instanceOf(q.event, q.target), q.grace);
  return {
    ...(at.instance !== undefined ? { instance: at.instance } : {}),
    ...(at.grace !== undefined ? { grace: at.grace } : {}),
    // Line time and engine time differ by the delivery's delay: the instance's age at the line,
    // taken back from the vote's engine time.
    ...(at.start !== undefined ? { sinceMs: Math.trunc(q.time - (t - at.start)) } : {}),
    facts: at,
  };
}

/** Whether a target has a dyno lifecycle at all (grace, instance attribution, a restart's fresh window). */
export function hasLifecycle(target: string): boolean {
  return CEDAR_DYNO.test(target);
}

/** What the lifecycle says of a line of `target` at `t`, with the facts behind it (`mallet explain` says them in words). */
export interface LifeAt {
  readonly instance?: string;
  /** The line itself names the instance (a runtime-metrics line); else it was attributed, or none. */
  readonly named?: boolean;
  /** The instance's start (instanceAt.ts); undefined = unknown. */
  readonly start?: number;
  /** The app's newest release at or before `t`. */
  readonly release?: number;
  /** The grace spell the line is in, as judgeLifecycle answers it. */
  readonly grace?: string;
}

export function lifeAt(s: AppLife, target: string, t: number, named: string | undefined, grace: RuleGrace | undefined): LifeAt {
  const at = instanceAt(s.dynos.get(target) ?? EMPTY_DYNO, t, named);
  const release = releaseAt(s, t);
  const spell = grace ? graceSpell(grace, at.start, release, t) : undefined;
  return {
    ...(at.instance !== undefined ? { instance: at.instance } : {}),
    ...(named !== undefined ? { named: true } : {}),
    ...(at.start !== undefined ? { start: at.start } : {}),
    ...(release !== undefined ? { release } : {}),
    ...(spell !== undefined ? { grace: spell } : {}),
  };
}

/** The spell a line at `t` is in: its instance's start grace first, then the app's release grace. */
export function graceSpell(g: RuleGrace, start: number | undefined, release: number | undefined, t: number): string | undefined {
  if (g.afterStartMs > 0 && start !== undefined && t - start < g.afterStartMs) return `start:${start}`;
  if (g.afterReleaseMs > 0 && release !== undefined && t - release < g.afterReleaseMs) return `release:${release}`;
  return undefined;
}
