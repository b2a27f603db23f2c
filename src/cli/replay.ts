import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CliIo } from './CliIo.js';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { SyslogMessage } from '../ingest/SyslogMessage.js';
import { LogplexStream } from '../ingest/logplexStream.js';
import type { ParsedBody } from '../ingest/logplexFrames.js';
import { parseSyslogHeader } from '../ingest/syslogHeader.js';
import { fromHerokuLogsLine } from '../ingest/herokuLogsLine.js';
import { graceVerdictOf } from '../console/graceVerdict.js';
import { formatRuleError, loadRules } from '../rules/load.js';
import { defaultRulesPath } from '../rules/defaultPath.js';
import { DryEvaluator, describeAction } from '../rules/dryRun.js';
import { ReplayLimits } from '../actions/replayLimits.js';
import { formatDuration } from '../rules/formatDuration.js';
import type { Firing } from '../rules/Firing.js';

type Format = 'logplex' | 'syslog-lines' | 'heroku-logs';
/** Sees each judged batch and its firings (`--report`, src/cli/replayReport.ts). */
export type ReplayObserver = (events: readonly DrainEvent[], firings: readonly Firing[]) => Promise<void>;

const USAGE = 'usage: mallet replay FILE [--app NAME] [--rules RULES] [--explain]\n';
/** Lines a `heroku logs` line longer than this is cut to (SPEC §6 keeps 64 KiB). */
const MAX_LINE = 64 * 1024 + 512;
const BATCH = 500;
const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;

/**
 * `mallet replay FILE`: a captured log through the rules and the limits as the service applies
 * them (the app allow-list, thresholds and cooldowns, storm guard, flapping, rolling slots), in
 * the log's own time, with no Redis and nothing executed; prints each firing with what the
 * service would do. Reads the file as a stream, so memory stays bounded whatever its size.
 */
export async function runReplay(argv: string[], io: CliIo, observe?: ReplayObserver): Promise<number> {
  let file: string | undefined;
  let appArg: string | undefined;
  let rulesFile: string | undefined;
  let explain = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--app' && argv[i + 1]) appArg = argv[++i]!;
    else if (a === '--rules' && argv[i + 1]) rulesFile = argv[++i]!;
    else if (a === '--explain') explain = true;
    else if (!a.startsWith('-') && file === undefined) file = a;
    else { io.stderr.write(USAGE); return 2; }
  }
  if (!file) { io.stderr.write(USAGE); return 2; }
  rulesFile ??= defaultRulesPath(io.env, io.cwd);
  const loaded = await loadRules(resolve(io.cwd, rulesFile), io.env);
  if (!loaded.ok) {
    for (const e of loaded.errors) io.stderr.write(formatRuleError(e) + '\n');
    return 1;
  }
  const { apps } = loaded.ruleSet;
  const app = appArg ?? 'replay';
  if (apps && !apps.has(app)) {
    // The drain answers 404 for an app the rules file does not list: none of its lines is judged.
    const listed = [...apps.keys()].join(', ');
    io.stderr.write(`${appArg === undefined ? 'no --app given' : `app ${app} is not listed under apps:`} — the rules file lists ${listed || 'no app'}, and the service refuses (404) the drain of any other app, judging none of its lines. Use --app ${[...apps.keys()][0] ?? 'NAME'}.\n`);
    return 1;
  }
  const path = resolve(io.cwd, file);
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (e) {
    io.stderr.write(`${file}: ${(e as NodeJS.ErrnoException).code}\n`);
    return 1;
  }
  const { format, structuredData } = await detectFormat(path);
  const near = new Map<string, NearMiss>();
  const nearPredict = new Map<string, PredictNearMiss>();
  const dry = new DryEvaluator(loaded.ruleSet, explain ? (c) => {
    const prev = near.get(c.rule);
    if (!prev || c.size > prev.size) near.set(c.rule, { size: c.size, count: c.count, withinMs: c.withinMs, time: c.time, target: c.target });
  } : undefined, explain ? (c) => {
    // The closest a predict rule came: the soonest the limit was forecast, else the most samples.
    const a = c.answer;
    if (!a) return;
    const prev = nearPredict.get(c.rule);
    const eta = a.status === 'few' ? undefined : a.etaMs;
    const better = !prev || (eta !== undefined && (prev.etaMs === undefined || eta < prev.etaMs)) || (eta === undefined && prev.etaMs === undefined && a.samples > prev.samples);
    if (better) nearPredict.set(c.rule, { etaMs: eta, samples: a.samples, limit: a.limit, time: c.time, target: c.target });
  } : undefined);
  const limits = new ReplayLimits(loaded.ruleSet.limits, io.env.MALLET_DRY_RUN === '1');
  const progress = progressBar(io, size);
  let lines = 0;
  const outcomes = new Map<string, number>();
  const fired = new Map<string, number>();
  const graced = new Map<string, number>();
  const cooling = new Set<string>();
  let batch: DrainEvent[] = [];
  const tally = (o: string) => outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
  const flush = async () => {
    const evaluation = await dry.evaluate(batch);
    await observe?.(batch, evaluation.firings);
    batch = [];
    for (const f of evaluation.firings) {
      fired.set(f.rule, (fired.get(f.rule) ?? 0) + 1);
      const d = await limits.decide(f);
      const actions = f.actions.map((a) => Object.entries(describeAction(a)).map(([k, v]) => `${k}=${v}`).join(' ')).join('; ');
      let what: string;
      switch (d.mode) {
        case 'execute':
          what = d.waitsUntil === undefined ? 'would run' : `would wait its turn (limits.per_process_type: ${d.waitsBehind} remediation(s) of ${f.processType} ahead), then run at about ${iso(d.waitsUntil)}`;
          tally(d.waitsUntil === undefined ? 'executed' : 'waited');
          break;
        case 'dry_run': what = `dry run (${d.reason}): would record`; tally('dry run'); break;
        case 'held': what = `HELD, only notify runs: ${d.reason}`; tally('held'); break;
        case 'flapping': what = `FLAPPING, left alone (only notify runs): ${d.reason}`; tally('flapping'); break;
        // Replay has no silences; the case keeps the switch whole over the mode table.
        case 'silenced': what = `silenced (${d.reason}): runs nothing`; tally('silenced'); break;
      }
      io.stdout.write(`${iso(f.firedAt)} ${f.rule} ${f.app} ${f.target}: ${f.prediction ? `${f.prediction}: ` : ''}${what}: ${actions}\n`);
    }
    for (const c of evaluation.cooldowns) {
      tally('cooldown lines');
      // One line per firing that cools down; the matches during it are only counted.
      const key = `${c.rule}\u0000${c.app}\u0000${c.target}\u0000${c.window}`;
      if (cooling.has(key)) continue;
      cooling.add(key);
      io.stdout.write(`${iso(Number(c.window))} ${c.rule} ${c.app} ${c.target}: cooldown: matches after the firing at ${iso(Number(c.window))} are counted, not fired\n`);
    }
    for (const g of evaluation.graces) {
      tally('grace lines');
      graced.set(g.rule, (graced.get(g.rule) ?? 0) + 1);
      // One line per grace spell (a start or a release); its matches are only counted.
      const key = `grace\u0000${g.rule}\u0000${g.app}\u0000${g.target}\u0000${g.spell}`;
      if (cooling.has(key)) continue;
      cooling.add(key);
      const [kind, at] = g.spell.split(':');
      const grace = explain ? loaded.ruleSet.rules.find((r) => r.name === g.rule)?.grace : undefined;
      // --explain: why, for the spell's first line, in the words `mallet explain` uses.
      const why = grace ? `: first at ${iso(g.at)}: ${graceVerdictOf(grace, g.target, g.at, g.spell, g.facts).text}` : '';
      io.stdout.write(`${iso(Number(at))} ${g.rule} ${g.app} ${g.target}: grace: matches within the rule's grace after this ${kind === 'release' ? 'release' : 'start'} are counted, not towards the threshold${why}\n`);
    }
    for (const r of evaluation.rejected) {
      tally('rejected');
      io.stdout.write(`rejected ${r.rule} ${r.app}: ${r.reason}\n`);
    }
  };
  const add = async (e: DrainEvent | undefined) => {
    if (!e) return;
    lines++;
    batch.push(e);
    if (batch.length >= BATCH) await flush();
  };

  let bytes = 0;
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  if (format === 'logplex') {
    const reader = new LogplexStream({ structuredData });
    let droppedFrom: number | undefined;
    const take = async (r: ParsedBody) => {
      droppedFrom ??= r.droppedFrom;
      for (const m of r.messages) await add(fromSyslog(m, app, lines));
    };
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      await take(reader.push(chunk));
      progress(bytes);
    }
    await take(reader.end());
    // As the drain does: after a broken frame nothing is read, since where the next one starts is a guess.
    if (droppedFrom !== undefined) io.stderr.write(`broken frame at byte ${droppedFrom}: the rest of the file was not read\n`);
  } else {
    let rest: Buffer = Buffer.alloc(0);
    const onLine = async (buf: Buffer) => {
      if (buf.length === 0) return;
      const line = buf.length > MAX_LINE ? buf.subarray(0, MAX_LINE) : buf;
      await add(format === 'syslog-lines' ? fromSyslogLine(line, app, lines) : fromHerokuLogsLine(line.toString('utf8'), app, `replay:${lines}`));
    };
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      let data = rest.length ? Buffer.concat([rest, chunk]) : chunk;
      let nl: number;
      while ((nl = data.indexOf(0x0a)) !== -1) {
        await onLine(data.subarray(0, nl));
        data = data.subarray(nl + 1);
      }
      // A line without LF is kept only up to the cut: memory stays bounded.
      rest = data.length > MAX_LINE ? Buffer.from(data.subarray(0, MAX_LINE)) : Buffer.from(data);
      progress(bytes);
    }
    await onLine(rest);
  }
  await flush();
  progress(bytes, true);
  if (explain) {
    for (const rule of loaded.ruleSet.rules) {
      const n = near.get(rule.name);
      const firedN = fired.get(rule.name) ?? 0;
      const g = graced.get(rule.name);
      const inGrace = g ? `; ${g} match${g === 1 ? '' : 'es'} counted as grace` : '';
      if (rule.predict) {
        const p = nearPredict.get(rule.name);
        const head = firedN > 0 ? `fired ${firedN} time${firedN === 1 ? '' : 's'}; ` : '';
        const min = rule.predict.minSamples;
        const closest = !p ? (firedN > 0 ? 'no sample that did not predict' : 'no sample matched')
          : p.etaMs !== undefined ? `closest forecast without firing: ${Math.round(p.limit)} MB in ${formatEta(p.etaMs)} (needed within ${formatDuration(rule.predict.withinMs)}; ${p.target}, at ${iso(p.time)})`
            : p.samples < min ? `at most ${p.samples} of ${min} samples of one instance within ${formatDuration(rule.predict.overMs)} (${p.target}, at ${iso(p.time)})`
              : `no rising line (${p.target}, at ${iso(p.time)})`;
        io.stdout.write(`${rule.name}: ${head}${closest}${inGrace}\n`);
        continue;
      }
      const closest = n ? `at most ${n.size} of ${n.count} within ${formatDuration(n.withinMs)} without firing (${n.target}, at ${iso(n.time)})` : 'no window that did not fire';
      const head = firedN > 0 ? `fired ${firedN} time${firedN === 1 ? '' : 's'}; ` : '';
      io.stdout.write(`${rule.name}: ${head}${n || firedN > 0 ? closest : g ? 'no line counted' : 'no line matched'}${inGrace}\n`);
    }
  }
  const total = [...fired.values()].reduce((a, b) => a + b, 0);
  const parts = OUTCOME_ORDER.filter((k) => outcomes.has(k)).map((k) => `${outcomes.get(k)} ${k}`).join(', ');
  io.stderr.write(`${lines} lines (${format}), ${total} firing${total === 1 ? '' : 's'}${parts ? ` (${parts})` : ''}; nothing executed\n`);
  return 0;
}

/** The summary's order: what would run first, then what would not, then lines that did not fire. */
const OUTCOME_ORDER = ['executed', 'waited', 'dry run', 'held', 'flapping', 'cooldown lines', 'grace lines', 'rejected'];

interface NearMiss { size: number; count: number; withinMs: number; time: number; target: string }
interface PredictNearMiss { etaMs: number | undefined; samples: number; limit: number; time: number; target: string }

function formatEta(ms: number): string {
  const min = Math.round(ms / 60_000);
  return min < 120 ? `~${min} min` : `~${Math.round(min / 6) / 10} h`;
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

async function detectFormat(path: string): Promise<{ format: Format; structuredData: boolean }> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    const head = buf.subarray(0, bytesRead).toString('latin1');
    const framed = /^\d{1,9} <\d{1,3}>1 \S+ (\S+)/.exec(head);
    if (framed) return { format: 'logplex', structuredData: framed[1]!.startsWith('d.') };
    if (/^<\d{1,3}>1 /.test(head)) return { format: 'syslog-lines', structuredData: false };
    return { format: 'heroku-logs', structuredData: false };
  } finally {
    await fh.close();
  }
}

function fromSyslog(m: SyslogMessage, app: string, n: number): DrainEvent {
  const at = Date.parse(m.timestamp);
  return {
    app, id: `replay:${n}`, receivedAt: Number.isFinite(at) ? at : 0, timestamp: m.timestamp,
    source: m.appName, process: m.procId, get message() { return m.message; },
  };
}

function fromSyslogLine(line: Buffer, app: string, n: number): DrainEvent | undefined {
  const host = /^<\d{1,3}>1 \S+ (\S+)/.exec(line.subarray(0, 300).toString('latin1'));
  const m = parseSyslogHeader(line, 0, line.length, { structuredData: host?.[1]?.startsWith('d.') ?? false });
  return m ? fromSyslog(m, app, n) : undefined;
}


/** A percentage bar on stderr, only for a terminal or a file over a few MB. */
function progressBar(io: CliIo, total: number): (bytes: number, done?: boolean) => void {
  const tty = (io.stderr as { isTTY?: boolean }).isTTY === true;
  if (!tty && total < PROGRESS_MIN_BYTES) return () => {};
  let last = -1;
  return (bytes, done = false) => {
    const pct = total === 0 ? 100 : Math.floor((bytes / total) * 100);
    if (pct === last && !done) return;
    last = pct;
    const width = 30;
    const fill = Math.round((pct / 100) * width);
    const bar = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}% ${(bytes / 2 ** 20).toFixed(1)}/${(total / 2 ** 20).toFixed(1)} MiB`;
    io.stderr.write(tty ? `\r${bar}${done ? '\n' : ''}` : (done || pct % 10 === 0 ? `${bar}\n` : ''));
  };
}
