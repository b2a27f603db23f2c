import type { SuspectSnapshot } from './SuspectStore.js';

/**
 * Leak suspects of one process type: the job classes that were running most often when mallet
 * quieted its Sidekiq processes. A class that runs in most stops, for long, is where to look
 * for the leak first.
 */
export interface SuspectClass {
  readonly class: string;
  /** Jobs of this class running at quiet, over all stops. */
  readonly count: number;
  /** Stops (processes quieted) in which at least one was running. */
  readonly stops: number;
  /** Median seconds it had been running when quiet was sent; undefined when no record said. */
  readonly medianRunS: number | undefined;
  /** The queue it ran from most often. */
  readonly queue: string;
}

export interface TypeSuspects {
  readonly processType: string;
  /** Sidekiq processes quieted (one sidekiq-stop step quiets each process of the dyno). */
  readonly stops: number;
  readonly jobs: number;
  /** Jobs running but not read (bounds, malformed work records). */
  readonly unread: number;
  /** Most frequent first, at most TOP_CLASSES. */
  readonly classes: readonly SuspectClass[];
}

export const TOP_CLASSES = 5;

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  xs.sort((a, b) => a - b);
  return xs[Math.ceil(xs.length / 2) - 1];
}

/** Per process type, the snapshots taken at or after `from`. */
export function suspectsByType(snapshots: readonly SuspectSnapshot[], from: number): TypeSuspects[] {
  const byType = new Map<string, SuspectSnapshot[]>();
  for (const s of snapshots) {
    if (s.at < from) continue;
    (byType.get(s.processType) ?? byType.set(s.processType, []).get(s.processType)!).push(s);
  }
  const out: TypeSuspects[] = [];
  for (const [processType, list] of byType) {
    const classes = new Map<string, { count: number; stops: number; runs: number[]; queues: Map<string, number> }>();
    let jobs = 0, unread = 0;
    for (const s of list) {
      unread += s.unread;
      const seen = new Set<string>();
      for (const j of s.jobs) {
        jobs++;
        let c = classes.get(j.class);
        if (!c) classes.set(j.class, (c = { count: 0, stops: 0, runs: [], queues: new Map() }));
        c.count++;
        if (!seen.has(j.class)) { seen.add(j.class); c.stops++; }
        if (j.runS !== undefined) c.runs.push(j.runS);
        c.queues.set(j.queue, (c.queues.get(j.queue) ?? 0) + 1);
      }
    }
    const ranked = [...classes].map(([name, c]) => ({
      class: name, count: c.count, stops: c.stops, medianRunS: median(c.runs),
      queue: [...c.queues].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0],
    }));
    ranked.sort((a, b) => b.count - a.count || b.stops - a.stops || (a.class < b.class ? -1 : a.class > b.class ? 1 : 0));
    out.push({ processType, stops: list.length, jobs, unread, classes: ranked.slice(0, TOP_CLASSES) });
  }
  return out.sort((a, b) => (a.processType < b.processType ? -1 : 1));
}

/** `42 s`, `4.2 min`, `3.1 h`. */
export function runTime(s: number | undefined): string {
  if (s === undefined) return 'run time unknown';
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 6) / 10} min`;
  return `${Math.round(s / 360) / 10} h`;
}

/** The clause the type's plain sentence ends with, naming the top suspect. */
export function suspectClause(t: TypeSuspects): string | undefined {
  const top = t.classes[0];
  if (!top) return undefined;
  return `the job most often running when mallet quieted it is ${top.class} (in ${top.stops} of ${t.stops} stop${t.stops === 1 ? '' : 's'}, median ${runTime(top.medianRunS)})`;
}

/** Text lines of the report for one type's suspects. */
export function formatSuspects(t: TypeSuspects): string[] {
  const lines = [`  leak suspects (jobs running when quieted, ${t.stops} Sidekiq stop${t.stops === 1 ? '' : 's'}, ${t.jobs} job${t.jobs === 1 ? '' : 's'}${t.unread ? `, ${t.unread} unread` : ''}):`];
  if (t.classes.length === 0) lines.push('    none: nothing was running');
  for (const c of t.classes) lines.push(`    ${c.class}  ${c.count}× in ${c.stops} stop${c.stops === 1 ? '' : 's'}, median ${runTime(c.medianRunS)}, queue ${c.queue}`);
  return lines;
}

/**
 * The report with its leak suspects: the `suspects` list, and each type's sentence ending with
 * its top suspect. Snapshots from `from` on, in the report's window (`nowMs - sinceMs` when the
 * report has no data of its own to set the window by).
 */
export function withSuspects<R extends { readonly from: number; readonly until: number; readonly types: readonly { readonly processType: string; readonly sentence: string }[] }>(
  report: R, snapshots: readonly SuspectSnapshot[], sinceMs: number, nowMs: number,
): R & { suspects?: readonly TypeSuspects[] } {
  const suspects = suspectsByType(snapshots, report.until > 0 ? report.from : nowMs - sinceMs);
  if (suspects.length === 0) return report;
  const types = report.types.map((t) => {
    const s = suspects.find((x) => x.processType === t.processType);
    const clause = s && suspectClause(s);
    return clause ? { ...t, sentence: `${t.sentence.replace(/\.$/, '')}; ${clause}.` } : t;
  });
  return { ...report, types, suspects };
}
