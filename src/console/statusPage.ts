import type { FiringOutcome } from '../rules/Firing.js';
import type { FiringRecord } from './history.js';
import type { RulesStatus } from './RulesStatus.js';
import type { Silence } from './Silence.js';
import { STATS_BUCKET_MS, sumBuckets, type DayStats } from './stats.js';
import { human } from './explain.js';

/**
 * The `/admin` status page: server-rendered HTML and an inline SVG chart, no script and nothing
 * fetched from elsewhere, so it works offline and without JavaScript. Every value that came from
 * a log line or a request is escaped.
 */

/** A section another part of mallet adds to the page (its HTML is its own, already escaped). */
export interface StatusSection {
  readonly id: string;
  readonly title: string;
  readonly html: string;
}

export interface StatusPageModel {
  readonly now: number;
  readonly rules: RulesStatus;
  readonly ruleNames: readonly string[];
  readonly stats: DayStats;
  readonly recent: readonly FiringRecord[];
  readonly silences: readonly Silence[];
  /** The bull-board job page of a job id. */
  readonly jobUrl: (jobId: string) => string;
  readonly queuesUrl: string;
  readonly sections: readonly StatusSection[];
}

/** Colours and labels, one place: the chart, the table and the badges use the same. */
const OUTCOME_STYLE: Record<FiringOutcome, { colour: string; label: string; meaning: string }> = {
  enqueued: { colour: '#2563eb', label: 'enqueued', meaning: 'actions queued' },
  held: { colour: '#d97706', label: 'held', meaning: 'storm guard: only notify ran' },
  flapping: { colour: '#dc2626', label: 'flapping', meaning: 'target kept firing: left alone' },
  silenced: { colour: '#6b7280', label: 'silenced', meaning: 'a silence covered it: nothing ran' },
  dry_run: { colour: '#7c3aed', label: 'dry run', meaning: 'recorded, nothing executed' },
  cooldown: { colour: '#0891b2', label: 'cooldown', meaning: 'matched during a cooldown' },
  grace: { colour: '#65a30d', label: 'grace', meaning: 'matched during a boot or deploy grace: not counted' },
  duplicate: { colour: '#78716c', label: 'duplicate', meaning: 'the same firing submitted again' },
  rejected: { colour: '#be185d', label: 'rejected', meaning: 'a value from the line had the wrong shape' },
};
/** Firings proper (one per fired window); cooldown, duplicate and rejected count lines and retries. */
const CHART_OUTCOMES: readonly FiringOutcome[] = ['enqueued', 'held', 'flapping', 'silenced', 'dry_run'];
const TABLE_OUTCOMES: readonly FiringOutcome[] = ['enqueued', 'held', 'flapping', 'silenced', 'dry_run', 'cooldown', 'grace', 'rejected', 'duplicate'];

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const time = (ms: number) => new Date(ms).toISOString().slice(11, 19);
const dateTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

export function renderStatusPage(m: StatusPageModel): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>mallet — status</title>
<style>${CSS}</style>
</head>
<body>
<header>
  <h1>mallet <span>status</span></h1>
  <nav><a href="${esc(m.queuesUrl)}">Jobs (bull-board)</a> <a href="api/firings">History API</a> <a href="api/silences">Silences API</a></nav>
</header>
<main>
${summarySection(m)}
${rulesSection(m)}
${chartSection(m)}
${perRuleSection(m)}
${silencesSection(m)}
${decisionsSection(m)}
${m.sections.map((s) => `<section id="${esc(s.id)}"><h2>${esc(s.title)}</h2>\n${s.html}\n</section>`).join('\n')}
</main>
<footer>Times are UTC. Refreshes every 30 s. Rendered ${dateTime(m.now)}.</footer>
</body>
</html>
`;
}

/** The first thing on the page: what happened in the last hour, per outcome, at a glance. */
function summarySection(m: StatusPageModel): string {
  const hour = sumBuckets(m.stats, 6);
  const day = sumBuckets(m.stats, m.stats.buckets.length);
  const total = (sums: ReturnType<typeof sumBuckets>, o: string) => [...sums.values()].reduce((a, byName) => a + (byName.get(o) ?? 0), 0);
  const tiles = TABLE_OUTCOMES.map((o) => {
    const h = total(hour, o);
    const d = total(day, o);
    return `<li class="tile${h === 0 ? ' quiet' : ''}" title="${esc(OUTCOME_STYLE[o].meaning)}"><span class="n" style="color:${h === 0 ? '#9ca3af' : OUTCOME_STYLE[o].colour}">${h}</span><span class="what">${OUTCOME_STYLE[o].label}</span><span class="day">${d} in 24 h</span></li>`;
  }).join('');
  const refused = m.rules.refused ? ' <a class="warn" href="#rules">the last rules reload was refused</a>' : '';
  return `<section id="summary">
<h2>Last hour${refused}</h2>
<ul class="tiles">${tiles}</ul>
</section>`;
}

function rulesSection(m: StatusPageModel): string {
  const r = m.rules;
  const refused = r.refused
    ? `<div class="alert" role="alert"><strong>The last reload was refused</strong> at ${dateTime(r.refused.at)}: the rules loaded at ${dateTime(r.loadedAt)} stay in force until the file is fixed.
<ul class="errors">${r.refused.errors.slice(0, 50).map((e) => `<li><code>${esc(e)}</code></li>`).join('')}</ul></div>`
    : '';
  return `<section id="rules">
<h2>Rules</h2>
${refused}
<dl class="facts">
  <dt>File</dt><dd><code>${esc(r.path)}</code>${r.fromExample ? ' <em>(the example rules: set MALLET_RULES or create config/rules.yml)</em>' : ''}</dd>
  <dt>In force since</dt><dd>${dateTime(r.loadedAt)} <span class="muted">(${human(m.now - r.loadedAt)} ago)</span></dd>
  <dt>Rules</dt><dd>${r.rules}: ${m.ruleNames.map((n) => `<code>${esc(n)}</code>`).join(', ')}</dd>
</dl>
</section>`;
}

function chartSection(m: StatusPageModel): string {
  // 48 bars of 30 minutes from the 144 ten-minute buckets.
  const per = 3;
  const bars: Array<Map<FiringOutcome, number>> = [];
  for (let i = 0; i < m.stats.buckets.length; i += per) {
    const bar = new Map<FiringOutcome, number>();
    for (const bucket of m.stats.buckets.slice(i, i + per)) {
      for (const byName of bucket.values()) {
        for (const o of CHART_OUTCOMES) bar.set(o, (bar.get(o) ?? 0) + (byName.get(o) ?? 0));
      }
    }
    bars.push(bar);
  }
  const totals = bars.map((b) => [...b.values()].reduce((a, c) => a + c, 0));
  const max = Math.max(1, ...totals);
  const total = totals.reduce((a, c) => a + c, 0);
  const W = 480;
  const H = 120;
  const bw = W / bars.length;
  const rects: string[] = [];
  bars.forEach((bar, i) => {
    let y = H;
    const start = m.stats.bucketStarts[i * per] ?? 0;
    for (const o of CHART_OUTCOMES) {
      const n = bar.get(o) ?? 0;
      if (n === 0) continue;
      const h = (n / max) * H;
      y -= h;
      rects.push(`<rect x="${(i * bw + 0.5).toFixed(1)}" y="${y.toFixed(2)}" width="${(bw - 1).toFixed(1)}" height="${h.toFixed(2)}" fill="${OUTCOME_STYLE[o].colour}"><title>${time(start)}–${time(start + per * STATS_BUCKET_MS)}: ${n} ${OUTCOME_STYLE[o].label}</title></rect>`);
    }
  });
  const grid = [0.5, 1].map((f) => `<line x1="0" x2="${W}" y1="${(H - f * H).toFixed(1)}" y2="${(H - f * H).toFixed(1)}" class="grid"/>`).join('');
  const legend = CHART_OUTCOMES.map((o) => `<li><i style="background:${OUTCOME_STYLE[o].colour}"></i>${OUTCOME_STYLE[o].label}</li>`).join('');
  return `<section id="chart">
<h2>Firings, last 24 hours <span class="muted">${total} in all; 30-minute bars</span></h2>
<div class="chart">
  <div class="ymax">${max}</div>
  <svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="Firings per 30 minutes over the last 24 hours, by outcome">${grid}${rects.join('')}<line x1="0" x2="${W}" y1="${H}" y2="${H}" class="axis"/></svg>
  <div class="xaxis"><span>24 h ago</span><span>12 h ago</span><span>now</span></div>
</div>
<ul class="legend">${legend}</ul>
<p class="muted small">A firing is one fired threshold window. Matches during a cooldown, duplicates and rejected lines are counted in the table below.</p>
</section>`;
}

function perRuleSection(m: StatusPageModel): string {
  const hour = sumBuckets(m.stats, 6);
  const day = sumBuckets(m.stats, m.stats.buckets.length);
  const names = [...new Set([...m.ruleNames, ...day.keys()])];
  const cell = (rule: string, name: string) => {
    const h = hour.get(rule)?.get(name) ?? 0;
    const d = day.get(rule)?.get(name) ?? 0;
    return d === 0 ? '<td class="zero">·</td>' : `<td><b>${h}</b> / ${d}</td>`;
  };
  const rows = names.map((rule) => `<tr><th scope="row"><code>${esc(rule)}</code>${m.ruleNames.includes(rule) ? '' : ' <em class="muted">(no longer in the rules)</em>'}</th>${cell(rule, 'matches')}${TABLE_OUTCOMES.map((o) => cell(rule, o)).join('')}</tr>`).join('\n');
  return `<section id="per-rule">
<h2>Per rule <span class="muted">last hour / last 24 hours</span></h2>
<div class="scroll"><table>
<thead><tr><th scope="col">rule</th><th scope="col">matches</th>${TABLE_OUTCOMES.map((o) => `<th scope="col" title="${esc(OUTCOME_STYLE[o].meaning)}"><i style="background:${OUTCOME_STYLE[o].colour}"></i>${OUTCOME_STYLE[o].label}</th>`).join('')}</tr></thead>
<tbody>
${rows || `<tr><td colspan="${TABLE_OUTCOMES.length + 2}">No rules.</td></tr>`}
</tbody></table></div>
<ul class="rule-cards">${names.map((rule) => {
    const parts = ['matches', ...TABLE_OUTCOMES].filter((n) => (day.get(rule)?.get(n) ?? 0) > 0).map((n) => {
      const label = n === 'matches' ? 'matches' : OUTCOME_STYLE[n as FiringOutcome].label;
      const dot = n === 'matches' ? '' : `<i style="background:${OUTCOME_STYLE[n as FiringOutcome].colour}"></i>`;
      return `<span>${dot}${label} <b>${hour.get(rule)?.get(n) ?? 0}</b> / ${day.get(rule)?.get(n) ?? 0}</span>`;
    });
    return `<li><code>${esc(rule)}</code><div>${parts.join('') || '<span class="muted">nothing in 24 h</span>'}</div></li>`;
  }).join('')}</ul>
</section>`;
}

function silencesSection(m: StatusPageModel): string {
  const items = m.silences.map((s) => `<li><span class="badge" style="background:${OUTCOME_STYLE.silenced.colour}">${esc(s.id)}</span>
 <b>${esc(s.app)}</b>${s.rule ? ` rule <code>${esc(s.rule)}</code>` : ' every rule'}${s.target ? ` target <code>${esc(s.target)}</code>` : ' every target'}
 <span class="muted">until ${dateTime(s.endsAt)} (${human(s.endsAt - m.now)} left)${s.createdBy ? `, by ${esc(s.createdBy)}` : ''}</span>
 <div class="why">${esc(s.comment)}</div></li>`).join('\n');
  return `<section id="silences">
<h2>Active silences <span class="muted">${m.silences.length}</span></h2>
${items ? `<ul class="silences">${items}</ul>` : '<p class="muted">None.</p>'}
<p class="muted small">Add one with <code>mallet silence add --app APP [--rule RULE] [--target 'web.*'] --for 2h --comment "why"</code>; end it with <code>mallet silence expire ID</code>.</p>
</section>`;
}

function decisionsSection(m: StatusPageModel): string {
  const today = new Date(m.now).toISOString().slice(0, 10);
  const when = (ms: number) => (new Date(ms).toISOString().slice(0, 10) === today ? time(ms) : new Date(ms).toISOString().slice(5, 19).replace('T', ' '));
  // Newest first by when it happened. A firing and the cooldown lines after it in the same body
  // share a time, but the cooldown came after it: shown above it.
  const later = (o: FiringOutcome) => (o === 'cooldown' || o === 'duplicate' ? 0 : 1);
  const ordered = m.recent.map((r, i) => ({ r, i })).sort((a, b) => b.r.at - a.r.at || later(a.r.outcome) - later(b.r.outcome) || a.i - b.i).map(({ r }) => r);
  const items = ordered.map((r) => {
    const st = OUTCOME_STYLE[r.outcome];
    const count = r.count > 1 ? ` <span class="count">×${r.count}</span> <span class="muted">to ${time(r.last)}</span>` : '';
    const job = r.job ? ` <a href="${esc(m.jobUrl(r.job))}">job</a>` : '';
    const reason = r.reason ? `<div class="reason">${esc(r.reason)}</div>` : '';
    return `<li class="decision" data-outcome="${r.outcome}">
 <div class="head"><time datetime="${new Date(r.at).toISOString()}">${when(r.at)}</time> <span class="badge" style="background:${st.colour}" title="${esc(st.meaning)}">${st.label}</span>${count}
 <code>${esc(r.rule)}</code> <b>${esc(r.app)}</b> ${r.target ? `<code>${esc(r.target)}</code>` : ''}${job}</div>
 ${reason}${r.line ? `<div class="line">${esc(r.line)}</div>` : ''}</li>`;
  }).join('\n');
  return `<section id="decisions">
<h2>Last ${m.recent.length} decisions</h2>
${items ? `<ol class="decisions">${items}</ol>` : '<p class="muted">No firing decision recorded yet.</p>'}
</section>`;
}

const CSS = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;background:#f3f4f6}
header{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:.5rem 1.5rem;padding:.75rem 1rem;background:#111827;color:#f9fafb}
header h1{margin:0;font-size:1.25rem}header h1 span{font-weight:400;color:#9ca3af}
nav{display:flex;flex-wrap:wrap;gap:1rem}nav a{color:#bfdbfe}
main{max-width:1100px;margin:0 auto;padding:.75rem}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:.75rem 1rem;margin:0 0 .75rem}
h2{font-size:1.05rem;margin:.1rem 0 .6rem}h2 .muted{font-weight:400;font-size:.9rem}
.muted{color:#6b7280}.small{font-size:.85rem}
code{font:13px/1.3 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f3f4f6;padding:0 .25em;border-radius:3px;overflow-wrap:anywhere}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(7.5rem,1fr));gap:.5rem;list-style:none;margin:0;padding:0}
.tile{border:1px solid #e5e7eb;border-radius:6px;padding:.4rem .6rem;display:flex;flex-direction:column}
.tile .n{font-size:1.6rem;font-weight:700;line-height:1.1;font-variant-numeric:tabular-nums}.tile .what{font-weight:600}.tile .day{font-size:.8rem;color:#6b7280}
.tile.quiet .what{color:#6b7280;font-weight:500}
a.warn{font-size:.9rem;font-weight:600;color:#b91c1c;margin-left:.5rem}
.rule-cards{display:none;list-style:none;margin:0;padding:0}.rule-cards li{padding:.4rem 0;border-top:1px solid #f0f0f0}.rule-cards li:first-child{border-top:0}
.rule-cards div{display:flex;flex-wrap:wrap;gap:.15rem .9rem;font-size:.9rem;margin-top:.2rem;font-variant-numeric:tabular-nums}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}.facts dt{color:#6b7280}.facts dd{margin:0;min-width:0}
.alert{background:#fef2f2;border:1px solid #fecaca;color:#7f1d1d;border-radius:6px;padding:.6rem .8rem;margin-bottom:.75rem}
.errors{margin:.4rem 0 0;padding-left:1.2rem}
.chart{position:relative;padding-left:2.2rem}.chart svg{display:block;width:100%;height:140px;background:#fafafa;border-radius:4px}
.chart .ymax{position:absolute;left:0;top:0;font-size:.8rem;color:#6b7280;width:2rem;text-align:right}
.xaxis{display:flex;justify-content:space-between;font-size:.8rem;color:#6b7280}
.grid{stroke:#e5e7eb;stroke-width:1;vector-effect:non-scaling-stroke}.axis{stroke:#9ca3af;stroke-width:1;vector-effect:non-scaling-stroke}
.legend{display:flex;flex-wrap:wrap;gap:.3rem 1rem;list-style:none;padding:0;margin:.5rem 0 0;font-size:.9rem}
i{display:inline-block;width:.7em;height:.7em;border-radius:2px;margin-right:.3em;vertical-align:baseline}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.9rem;font-variant-numeric:tabular-nums}
th,td{padding:.35rem .5rem;border-bottom:1px solid #f0f0f0;text-align:right;white-space:nowrap}
th[scope=row],thead th:first-child{text-align:left;position:sticky;left:0;background:#fff}
thead th{font-weight:600;color:#374151;font-size:.8rem}
td.zero{color:#d1d5db}
.badge{display:inline-block;color:#fff;border-radius:999px;padding:0 .55em;font-size:.8rem;font-weight:600;line-height:1.6}
.count{font-weight:600}
ol.decisions,ul.silences{list-style:none;margin:0;padding:0}
.decision,.silences li{padding:.45rem 0;border-top:1px solid #f0f0f0}.decision:first-child,.silences li:first-child{border-top:0}
.decision .head{display:flex;flex-wrap:wrap;align-items:baseline;gap:.2rem .45rem}
.decision time{font-variant-numeric:tabular-nums;color:#374151}
.line,.why{font:12.5px/1.35 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#4b5563;margin-top:.15rem;overflow-wrap:anywhere}
.why{font-family:inherit;font-size:.9rem}
.reason{font-size:.88rem;color:#92400e;margin-top:.1rem}
footer{text-align:center;color:#6b7280;font-size:.8rem;padding:0 1rem 1.5rem}
@media (max-width:700px){body{font-size:14px}main{padding:.4rem}section{padding:.6rem .7rem}.facts{grid-template-columns:1fr}.facts dt{margin-top:.3rem}
#per-rule .scroll{display:none}.rule-cards{display:block}
.tiles{grid-template-columns:repeat(4,1fr);gap:.3rem}.tile{padding:.25rem .35rem}.tile .n{font-size:1.25rem}.tile .what{font-size:.8rem}.tile .day{font-size:.7rem}}
`;
