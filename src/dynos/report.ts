import { isFirDyno, processTypeOf } from '../rules/shapes.js';
import type { LifecycleEvent } from './DynoRecord.js';
import type { DynoSnapshot, InstanceSeries } from './DynoStore.js';
import { formatSuspects, suspectClause, type TypeSuspects } from './suspectReport.js';

/**
 * The leak report: per process type, how fast its instances grow, how soon they reach their
 * quota, and how often mallet and Heroku stepped in. Built from a snapshot alone, in the data's
 * own time (the newest sample or event is "now"), so `mallet replay --report` over a captured log
 * prints what the service built from the live drain.
 */
export interface TypeReport {
  readonly processType: string;
  readonly instances: number;
  /** Instances with enough samples for a slope (≥ MIN_POINTS over ≥ 30 min). */
  readonly trended: number;
  readonly growthMbPerHour: { readonly median: number; readonly p90: number } | undefined;
  readonly quotaMb: number | undefined;
  /** Median hours from start to 90 % / 100 % of quota, over the instances that got there. */
  readonly hoursTo90: number | undefined;
  readonly hoursTo100: number | undefined;
  /** When none got there: quota over the median growth, from the median start value. */
  readonly projectedHoursTo100: number | undefined;
  /** `rule/action+action` → per day. */
  readonly remediationsPerDay: Readonly<Record<string, number>>;
  readonly remediations: number;
  readonly crashesPerDay: number;
  readonly cyclingPerDay: number;
  readonly sentence: string;
  /** `fir` when the type's dynos have Fir names (OTLP metrics, README "Fir apps"). */
  readonly generation: 'cedar' | 'fir';
  /**
   * Restarts by the platform at the memory limit: `Error R15` lines, and on Fir (which restarts at
   * 100 % of the quota and may log nothing) instances whose samples stopped at ≥ 97 % of their
   * quota while the app's other samples went on; each instance once.
   */
  readonly quotaRestarts: number;
  readonly quotaRestartsPerDay: number;
  /** Memory over time: [bucket start ms, highest MB of any instance of the type]. */
  readonly chart: ReadonlyArray<readonly [number, number]>;
  /** Remediations in the window, for the chart: [ms, dyno, rule/action]. */
  readonly marks: ReadonlyArray<readonly [number, string, string]>;
}

export interface LeakReport {
  readonly app: string;
  readonly from: number;
  readonly until: number;
  readonly days: number;
  readonly types: readonly TypeReport[];
  readonly releases: number;
  /** Set when the app sent no runtime metrics in the window: how to enable them. */
  readonly advice?: string;
  /** Jobs running when sidekiq-stop quieted a process, per process type (src/dynos/suspectReport.ts). */
  readonly suspects?: readonly TypeSuspects[];
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MIN_POINTS = 10;
const MIN_SPAN_MS = 30 * 60_000;
/** A `Starting process` this long before an instance's first sample is its start. */
const START_LOOKBACK_MS = 10 * 60_000;
const CHART_BUCKET_MS = 15 * 60_000;
/** Below this an instance is called flat. */
const FLAT_MB_PER_HOUR = 1;
/**
 * A Fir instance whose last sample is this close to its quota, and after which the app sent
 * samples for this long, ended at the quota: Fir restarts a dyno when it reaches 100 % (Dev
 * Center, "Dyno memory behavior") and the replacement comes back under a new name. At a minute's
 * export interval a leak of even 100 MB/h is within 2 % of a 512 MB quota at its last sample.
 */
const FIR_END_AT_QUOTA = 0.97;
const FIR_ENDED_AFTER_MS = 5 * 60_000;

/** Least-squares slope of MB over hours. */
export function slopeMbPerHour(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  const t0 = points[0]![0];
  let st = 0, sv = 0, stt = 0, stv = 0;
  for (const [t, v] of points) {
    const x = (t - t0) / HOUR;
    st += x; sv += v; stt += x * x; stv += x * v;
  }
  const den = n * stt - st * st;
  return den === 0 ? 0 : (n * stv - st * sv) / den;
}

function quantile(sorted: readonly number[], q: number): number {
  // Nearest rank: a value that occurred, not an interpolation.
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

const median = (xs: readonly number[]) => (xs.length ? quantile([...xs].sort((a, b) => a - b), 0.5) : undefined);

export function buildReport(app: string, snap: DynoSnapshot, sinceMs: number): LeakReport {
  let until = 0;
  for (const i of snap.instances) until = Math.max(until, i.lastAt);
  for (const e of snap.events) until = Math.max(until, e.at);
  const from = until - sinceMs;
  let dataStart = until;
  for (const i of snap.instances) if (i.lastAt >= from) dataStart = Math.min(dataStart, Math.max(i.firstAt, from));
  for (const e of snap.events) if (e.at >= from) dataStart = Math.min(dataStart, e.at);
  const days = Math.max((until - dataStart) / DAY, 1 / 24);
  const events = snap.events.filter((e) => e.at >= from);
  const starts = new Map<string, number[]>();
  for (const e of snap.events) if (e.kind === 'start') (starts.get(e.dyno) ?? starts.set(e.dyno, []).get(e.dyno)!).push(e.at);

  const byType = new Map<string, InstanceSeries[]>();
  for (const i of snap.instances) {
    if (i.lastAt < from) continue;
    const t = processTypeOf(i.dyno);
    (byType.get(t) ?? byType.set(t, []).get(t)!).push(i);
  }
  const types: TypeReport[] = [];
  for (const [processType, list] of [...byType].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    types.push(typeReport(processType, list, events.filter((e) => e.dyno !== '' && processTypeOf(e.dyno) === processType), starts, from, days, until));
  }
  const releases = events.filter((e) => e.kind === 'release').length;
  const report: LeakReport = { app, from, until, days, types, releases };
  if (types.length === 0) {
    return { ...report, advice: `No runtime metrics from ${app}${until ? ' in this period' : ''}: enable them with \`heroku labs:enable log-runtime-metrics -a ${app}\` and restart the app (\`heroku restart -a ${app}\`); memory samples then arrive every 20 s per dyno. A Fir app has no runtime metrics: add a telemetry drain with \`--signals logs,metrics\` instead (README, "Fir apps").` };
  }
  return report;
}

function typeReport(processType: string, list: readonly InstanceSeries[], events: readonly LifecycleEvent[], starts: Map<string, number[]>, from: number, days: number, until: number): TypeReport {
  const fir = firQuotaEnds(list, events, until);
  const slopes: number[] = [];
  const to90: number[] = [];
  const to100: number[] = [];
  const startValues: number[] = [];
  let quotaMb: number | undefined;
  const buckets = new Map<number, number>();
  for (const inst of list) {
    const points = inst.points.filter((p) => p[0] >= from);
    if (inst.limitMb !== undefined) quotaMb = inst.limitMb;
    // Its `Starting process` line if one came shortly before its first sample, else that sample.
    let line = -Infinity;
    for (const t of starts.get(inst.dyno) ?? []) if (t <= inst.firstAt && t >= inst.firstAt - START_LOOKBACK_MS && t > line) line = t;
    const startedAt = Number.isFinite(line) ? line : inst.firstAt;
    if (points.length >= MIN_POINTS && points[points.length - 1]![0] - points[0]![0] >= MIN_SPAN_MS) {
      slopes.push(slopeMbPerHour(points));
      startValues.push(inst.points[0]![1]);
    }
    if (inst.limitMb !== undefined) {
      const q = inst.limitMb;
      const p90 = inst.points.find((p) => p[1] >= 0.9 * q);
      const p100 = inst.points.find((p) => p[1] >= q);
      if (p90) to90.push((p90[0] - startedAt) / HOUR);
      if (p100) to100.push((p100[0] - startedAt) / HOUR);
      // Fir's restart at 100 % comes before a sample can show it: the end is when it got there.
      else if (fir.ended.has(inst.instance)) to100.push((inst.lastAt - startedAt) / HOUR);
    }
    for (const [t, v] of points) {
      const b = t - (t % CHART_BUCKET_MS);
      if (v > (buckets.get(b) ?? -1)) buckets.set(b, v);
    }
  }
  const sorted = [...slopes].sort((a, b) => a - b);
  const growth = sorted.length ? { median: quantile(sorted, 0.5), p90: quantile(sorted, 0.9) } : undefined;
  const hoursTo90 = median(to90);
  const hoursTo100 = median(to100);
  const startMb = median(startValues);
  const projectedHoursTo100 = hoursTo100 === undefined && growth && growth.median >= FLAT_MB_PER_HOUR && quotaMb !== undefined && startMb !== undefined
    ? Math.max(0, (quotaMb - startMb) / growth.median) : undefined;
  const remediationCounts: Record<string, number> = {};
  const marks: Array<readonly [number, string, string]> = [];
  let crashes = 0, cycling = 0, remediations = 0;
  for (const e of events) {
    if (e.kind === 'remediation') {
      remediations++;
      remediationCounts[e.detail] = (remediationCounts[e.detail] ?? 0) + 1;
      marks.push([e.at, e.dyno, e.detail]);
    } else if (e.kind === 'crash') crashes++;
    else if (e.kind === 'cycling') cycling++;
  }
  const remediationsPerDay = Object.fromEntries(Object.entries(remediationCounts).sort().map(([k, n]) => [k, round2(n / days)]));
  const r: Omit<TypeReport, 'sentence'> = {
    processType, instances: list.length, trended: slopes.length, growthMbPerHour: growth && { median: round2(growth.median), p90: round2(growth.p90) }, quotaMb,
    hoursTo90: round1(hoursTo90), hoursTo100: round1(hoursTo100), projectedHoursTo100: round1(projectedHoursTo100),
    remediationsPerDay, remediations, crashesPerDay: round2(crashes / days), cyclingPerDay: round2(cycling / days),
    chart: [...buckets].sort((a, b) => a[0] - b[0]), marks,
    generation: fir.generation, quotaRestarts: fir.restarts, quotaRestartsPerDay: round2(fir.restarts / days),
  };
  return { ...r, sentence: sentenceOf(r, events, days) };
}

/** Which Fir instances ended at their quota (FIR_END_AT_QUOTA), and the type's restarts at quota. */
function firQuotaEnds(list: readonly InstanceSeries[], events: readonly LifecycleEvent[], until: number) {
  const generation: 'cedar' | 'fir' = list.some((i) => isFirDyno(i.dyno)) ? 'fir' : 'cedar';
  const logged = new Set<string>();
  let restarts = 0;
  for (const e of events) if (e.kind === 'quota-restart') { restarts++; logged.add(e.dyno); }
  const ended = new Set<string>();
  for (const i of list) {
    const last = i.points[i.points.length - 1];
    if (!isFirDyno(i.dyno) || i.limitMb === undefined || !last || until - i.lastAt < FIR_ENDED_AFTER_MS) continue;
    if (last[1] < FIR_END_AT_QUOTA * i.limitMb) continue;
    ended.add(i.instance);
    if (!logged.has(i.dyno)) restarts++;
  }
  return { generation, ended, restarts };
}

const round1 = (x: number | undefined) => (x === undefined ? undefined : Math.round(x * 10) / 10);
const round2 = (x: number) => Math.round(x * 100) / 100;
const mbh = (x: number) => (Math.abs(x) >= 10 ? Math.round(x).toString() : x.toFixed(1));

function sentenceOf(r: Omit<TypeReport, 'sentence'>, events: readonly LifecycleEvent[], days: number): string {
  const parts: string[] = [];
  const g = r.growthMbPerHour;
  const quota = r.quotaMb !== undefined ? `its ${Math.round(r.quotaMb)} MB quota` : 'its quota';
  if (!g) parts.push(`${r.processType} has too few samples for a trend yet`);
  else if (g.median < FLAT_MB_PER_HOUR) parts.push(`${r.processType} is flat (~${mbh(g.median)} MB/h)`);
  else if (r.hoursTo100 !== undefined) parts.push(`${r.processType} grows ~${mbh(g.median)} MB/h and reaches ${quota} ~${r.hoursTo100} h after start`);
  else if (r.projectedHoursTo100 !== undefined) parts.push(`${r.processType} grows ~${mbh(g.median)} MB/h and would reach ${quota} ~${r.projectedHoursTo100} h after start`);
  else parts.push(`${r.processType} grows ~${mbh(g.median)} MB/h`);
  if (g && g.median >= FLAT_MB_PER_HOUR && r.quotaMb === undefined) {
    parts.push(r.generation === 'fir' ? 'quota unknown (no memory-limit metric arrived: set fir.memory_quota for it)' : 'quota unknown (no sample#memory_quota)');
  }
  if (r.quotaRestarts > 0) {
    parts.push(`${r.generation === 'fir' ? 'Fir' : 'Heroku'} restarted it at its memory limit ${r.quotaRestarts} time${r.quotaRestarts === 1 ? '' : 's'}`);
  }
  const period = `${Math.round(days * 10) / 10} day${Math.round(days * 10) === 10 ? '' : 's'}`;
  if (r.remediations > 0) {
    const acted = events.filter((e) => e.kind === 'remediation');
    const stops = acted.filter((e) => !/\/notify$/.test(e.detail)).length;
    parts.push(stops > 0 ? `mallet stopped or restarted it ${stops} time${stops === 1 ? '' : 's'} in ${period}` : `mallet notified about it ${acted.length} time${acted.length === 1 ? '' : 's'} in ${period}`);
  } else parts.push(`mallet did not act on it in ${period}`);
  return `${parts.join('; ')}.`;
}

/** The report as text: one plain sentence per process type, then its figures. */
export function formatReport(r: LeakReport): string {
  const iso = (t: number) => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const out: string[] = [];
  if (r.until === 0) out.push(`Leak report for ${r.app}: no data yet.`);
  else out.push(`Leak report for ${r.app}, ${iso(Math.max(r.from, r.until - r.days * DAY))} .. ${iso(r.until)} (${r.days.toFixed(1)} days, ${r.releases} release${r.releases === 1 ? '' : 's'})`);
  if (r.advice) out.push(r.advice);
  for (const t of r.types) {
    out.push('', t.sentence);
    const g = t.growthMbPerHour;
    out.push(`  instances ${t.instances} (${t.trended} with a trend)${g ? `, growth median ${g.median} MB/h, p90 ${g.p90} MB/h` : ''}`);
    out.push(`  start to 90% of quota ${t.hoursTo90 ?? '-'} h, to 100% ${t.hoursTo100 ?? '-'} h (median)${t.projectedHoursTo100 !== undefined ? `, projected ${t.projectedHoursTo100} h` : ''}`);
    const rem = Object.entries(t.remediationsPerDay).map(([k, v]) => `${k} ${v}`).join(', ');
    out.push(`  per day: remediations ${rem || '0'}; crashes ${t.crashesPerDay}; Heroku cycling ${t.cyclingPerDay}`);
    if (t.quotaRestarts > 0) out.push(`  restarts at the memory limit ${t.quotaRestarts} (${t.quotaRestartsPerDay} per day)`);
    const sus = r.suspects?.find((x) => x.processType === t.processType);
    if (sus) out.push(...formatSuspects(sus));
  }
  for (const sus of r.suspects ?? []) {
    if (r.types.some((t) => t.processType === sus.processType)) continue;
    const clause = suspectClause(sus);
    out.push('', `${sus.processType} sent no memory samples${clause ? `; ${clause}` : ''}.`, ...formatSuspects(sus));
  }
  return out.join('\n') + '\n';
}
