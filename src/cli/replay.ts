import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CliIo } from './CliIo.js';
import type { DrainEvent } from '../ingest/DrainEvent.js';
import type { SyslogMessage } from '../ingest/SyslogMessage.js';
import { LogplexStream } from '../ingest/logplexStream.js';
import { parseSyslogHeader } from '../ingest/syslogHeader.js';
import { formatRuleError, loadRules } from '../rules/load.js';
import { defaultRulesPath } from '../rules/defaultPath.js';
import { DryEvaluator, describeAction } from '../rules/dryRun.js';
import { DEFAULT_SINCE, sinceMs } from '../dynos/reportIo.js';
import { ReplayReport } from './replayReport.js';

type Format = 'logplex' | 'syslog-lines' | 'heroku-logs';

const USAGE = 'usage: mallet replay FILE [--app NAME] [--rules RULES] [--report [--since 7d] [--json]]\n';
/** Lines a `heroku logs` line longer than this is cut to (SPEC §6 keeps 64 KiB). */
const MAX_LINE = 64 * 1024 + 512;
const BATCH = 500;
const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;
const HEROKU_LOGS = /^(\S+) ([A-Za-z0-9_.-]+)\[([^\]\s]+)\]: ?(.*)$/s;

/**
 * `mallet replay FILE`: a captured log through the rules in dry-run (no Redis, nothing executed),
 * printing each firing. Reads the file as a stream, so memory stays bounded whatever its size.
 */
export async function runReplay(argv: string[], io: CliIo): Promise<number> {
  let file: string | undefined;
  let app = 'replay';
  let rulesFile: string | undefined;
  let report = false;
  let json = false;
  let since = DEFAULT_SINCE;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--app' && argv[i + 1]) app = argv[++i]!;
    else if (a === '--report') report = true;
    else if (a === '--json') json = true;
    else if (a === '--since' && argv[i + 1]) since = argv[++i]!;
    else if (a === '--rules' && argv[i + 1]) rulesFile = argv[++i]!;
    else if (!a.startsWith('-') && file === undefined) file = a;
    else { io.stderr.write(USAGE); return 2; }
  }
  if (!file) { io.stderr.write(USAGE); return 2; }
  const sinceWindow = sinceMs(since);
  if (sinceWindow === undefined) { io.stderr.write(`--since ${JSON.stringify(since)}: expected a duration like 7d or 12h\n`); return 2; }
  // With --report the firings are not printed (stdout is the report); the summary line stays.
  const leaks = report ? new ReplayReport(app, sinceWindow, json) : undefined;
  rulesFile ??= defaultRulesPath(io.env, io.cwd);
  const loaded = await loadRules(resolve(io.cwd, rulesFile), io.env);
  if (!loaded.ok) {
    for (const e of loaded.errors) io.stderr.write(formatRuleError(e) + '\n');
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
  const dry = new DryEvaluator(loaded.ruleSet);
  const progress = progressBar(io, size);
  let lines = 0;
  let firings = 0;
  let batch: DrainEvent[] = [];
  const flush = async () => {
    const { firings: fired, rejected } = await dry.evaluate(batch);
    await leaks?.observe(batch, fired);
    batch = [];
    for (const f of fired) {
      firings++;
      if (leaks) continue;
      const actions = f.actions.map((a) => Object.entries(describeAction(a)).map(([k, v]) => `${k}=${v}`).join(' ')).join('; ');
      io.stdout.write(`${new Date(f.firedAt).toISOString()} ${f.rule} ${f.app} ${f.target}${f.dryRun ? ' (dry_run)' : ''}: ${actions}\n`);
    }
    if (!leaks) for (const r of rejected) io.stdout.write(`rejected ${r.rule} ${r.app}: ${r.reason}\n`);
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
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      for (const m of reader.push(chunk).messages) await add(fromSyslog(m, app, lines));
      progress(bytes);
    }
    for (const m of reader.end().messages) await add(fromSyslog(m, app, lines));
  } else {
    let rest: Buffer = Buffer.alloc(0);
    const onLine = async (buf: Buffer) => {
      if (buf.length === 0) return;
      const line = buf.length > MAX_LINE ? buf.subarray(0, MAX_LINE) : buf;
      await add(format === 'syslog-lines' ? fromSyslogLine(line, app, lines) : fromHerokuLogs(line.toString('utf8'), app, lines));
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
  io.stderr.write(`${lines} lines (${format}), ${firings} firing${firings === 1 ? '' : 's'} (dry run)\n`);
  await leaks?.print(io);
  return 0;
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

function fromHerokuLogs(line: string, app: string, n: number): DrainEvent | undefined {
  const m = HEROKU_LOGS.exec(line.endsWith('\r') ? line.slice(0, -1) : line);
  if (!m) return undefined;
  const at = Date.parse(m[1]!);
  return { app, id: `replay:${n}`, receivedAt: Number.isFinite(at) ? at : 0, timestamp: m[1]!, source: m[2]!, process: m[3]!, message: m[4]! };
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
