import type { StatusSection } from '../console/statusPage.js';
import type { DynoStore } from './DynoStore.js';
import { buildReport, type TypeReport } from './report.js';
import type { SuspectStore } from './SuspectStore.js';
import { withSuspects, runTime, type TypeSuspects } from './suspectReport.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** A report sentence as HTML: escaped, its `command` spans (written for a terminal) shown as code, not as backticks. */
const prose = (s: string) => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');
const W = 640;
const H = 120;

/** Memory over time per process type (highest MB per 15 min), remediations as red ticks. */
function chart(t: TypeReport): string {
  if (t.chart.length < 2) return '';
  const t0 = t.chart[0]![0];
  const t1 = t.chart[t.chart.length - 1]![0];
  const top = Math.max(t.quotaMb ?? 0, ...t.chart.map((p) => p[1])) || 1;
  const x = (ms: number) => (((ms - t0) / Math.max(1, t1 - t0)) * W).toFixed(1);
  const y = (mb: number) => (H - (mb / top) * H).toFixed(1);
  const line = t.chart.map((p) => `${x(p[0])},${y(p[1])}`).join(' ');
  const quota = t.quotaMb !== undefined ? `<line x1="0" x2="${W}" y1="${y(t.quotaMb)}" y2="${y(t.quotaMb)}" stroke="#999" stroke-dasharray="4"/>` : '';
  const marks = t.marks.filter((m) => m[0] >= t0 && m[0] <= t1).map((m) => `<line x1="${x(m[0])}" x2="${x(m[0])}" y1="0" y2="${H}" stroke="#c00" stroke-width="1"><title>${esc(`${new Date(m[0]).toISOString()} ${m[1]} ${m[2]}`)}</title></line>`).join('');
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${esc(`${t.processType} memory over time`)}">${quota}${marks}<polyline fill="none" stroke="#36c" stroke-width="1.5" points="${line}"/></svg>`;
}

/** The top leak suspects of a type as a small table: class, count, median run time, queue. */
function suspectTable(s: TypeSuspects): string {
  if (s.classes.length === 0) return `<p>Leak suspects: nothing was running in ${s.stops} Sidekiq stop(s).</p>`;
  const rows = s.classes.map((c) => `<tr><td><code>${esc(c.class)}</code></td><td>${c.count} in ${c.stops} of ${s.stops}</td><td>${esc(runTime(c.medianRunS))}</td><td>${esc(c.queue)}</td></tr>`).join('');
  return `<table><caption>${esc(s.processType)} leak suspects: jobs running when mallet quieted it</caption><tr><th>class</th><th>running (stops)</th><th>median run time</th><th>queue</th></tr>${rows}</table>`;
}

/** The status page's leak-report section: per listed app, one sentence and a chart per type. */
export async function leakReportSection(store: DynoStore, apps: readonly string[], sinceMs: number, suspects?: SuspectStore): Promise<StatusSection> {
  const parts: string[] = [];
  if (apps.length === 0) parts.push('<p>List the apps in the rules file (<code>apps:</code>) to see their leak report here; any app: <code>GET /admin/api/report?app=NAME</code> or <code>mallet report --app NAME</code>.</p>');
  for (const app of apps.slice(0, 20)) {
    const built = buildReport(app, await store.read(app), sinceMs);
    const r = suspects ? withSuspects(built, await suspects.read(app), sinceMs, Date.now()) : built;
    parts.push(`<h3>${esc(app)}</h3>`);
    if (r.advice) parts.push(`<p>${prose(r.advice)}</p>`);
    for (const t of r.types) {
      parts.push(`<p>${prose(t.sentence)}</p>${chart(t)}`);
      const s = r.suspects?.find((x) => x.processType === t.processType);
      if (s) parts.push(suspectTable(s));
    }
    for (const s of r.suspects ?? []) if (!r.types.some((t) => t.processType === s.processType)) parts.push(suspectTable(s));
  }
  return { id: 'leaks', title: 'Leak report', html: parts.join('\n') };
}
