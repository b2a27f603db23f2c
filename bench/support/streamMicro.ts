/**
 * The syslog read path alone, in process, for A/B runs: the stream in 64 KiB reads through
 * LogplexStream with the listener's prefilter and token check (as syslogListener's `keep`),
 * passes alternating between this tree and another copy of src (`--base DIR`, e.g. `git archive`
 * of main), CPU per line of each, median of the passes.
 *   node --import tsx bench/support/streamMicro.ts --base .base [--lines 200000] [--passes 15]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse, stringify } from 'yaml';
import { pino } from 'pino';
import { syslogStream } from './syslogStream.js';

/** Either tree's moving view: the new one expects the token, the old one compares after. */
interface View { hostname: string; hostnameIs(b: Buffer): boolean; expectHostname?(b: Buffer): void; expectedHostname?: Buffer; hostnameIsExpected?: boolean }
const arg = (name: string, fallback: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1]! : fallback; };
const LINES = Number(arg('lines', '200000'));
const PASSES = Number(arg('passes', '15'));
const base = arg('base', '');
const { stream, frames } = await syslogStream(LINES);
const rulesText = stringify(parse(readFileSync(new URL('../../config/rules.example.yml', import.meta.url), 'utf8')));

async function variant(srcDir: string) {
  const u = (f: string) => pathToFileURL(resolve(srcDir, f)).href;
  const { LogplexStream } = await import(u('ingest/logplexStream.ts'));
  const { loadRulesText } = await import(u('rules/load.ts'));
  const { mayMatch } = await import(u('rules/match.ts'));
  const { createMetrics } = await import(u('metrics.ts'));
  const { redisKeys } = await import(u('keys.ts'));
  const { MemoryDynoStore } = await import(u('dynos/dynoMemory.ts'));
  const { DynoObserver } = await import(u('dynos/DynoObserver.ts'));
  const { Pipeline } = await import(u('server/pipeline.ts'));
  const loaded = loadRulesText(rulesText, 'rules.yml', { HEROKU_API_TOKEN: 'x' });
  const ruleSet = loaded.ruleSet;
  const pipeline = new Pipeline({ redis: { defineCommand: () => {} }, keys: redisKeys('b'), metrics: createMetrics(undefined, { defaults: false }), logger: pino({ level: 'silent' }),
    engine: { judge: async () => ({ firings: [], count: () => {} }), mayMatch: (e: unknown) => mayMatch(ruleSet.rules, e) }, sink: { submit: async () => [] }, observers: [new DynoObserver(new MemoryDynoStore())] });
  let tok: Buffer | undefined;
  let skipped = 0;
  // As syslogListener's keep (the new tree expects the token in the parser; the old compares after).
  const keep = (l: View): boolean => {
    if (pipeline.wants(l)) return true;
    if (l.expectHostname !== undefined) {
      if (tok === undefined || l.expectedHostname !== tok || !l.hostnameIsExpected) { tok = Buffer.from(l.hostname, 'latin1'); l.expectHostname(tok); }
    } else if (tok === undefined || !l.hostnameIs(tok)) tok = Buffer.from(l.hostname, 'latin1');
    skipped++;
    return false;
  };
  return () => {
    const s = new LogplexStream({ structuredData: true, keep });
    let kept = 0;
    skipped = 0;
    for (let i = 0; i < stream.length; i += 65536) kept += s.push(stream.subarray(i, i + 65536)).messages.length;
    return kept + skipped;
  };
}
const runs: Array<[string, () => number, number[]]> = [['this tree', await variant(resolve('src')), []]];
if (base) runs.push([`base (${base})`, await variant(resolve(base, 'src')), []]);
const profile = process.argv.includes('--profile') ? arg('profile', '') : '';
const session = profile ? new Session() : undefined;
const post = (m: string) => new Promise<{ profile?: unknown }>((res, rej) => session!.post(m, (e, r) => (e ? rej(e) : res(r as { profile?: unknown }))));
for (let k = 0; k < PASSES + 3; k++) {
  if (session && k === 3) { session.connect(); await post('Profiler.enable'); await post('Profiler.start'); }
  for (const [, pass, times] of runs) {
    const t = process.cpuUsage();
    const n = pass();
    const c = process.cpuUsage(t);
    if (n !== frames) throw new Error(`${n} lines read of ${frames}`);
    if (k >= 3) times.push((c.user + c.system) * 1000 / frames);
  }
}
if (session) writeFileSync(profile, JSON.stringify((await post('Profiler.stop')).profile));
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
for (const [name, , times] of runs) console.log(`${name}: ${med(times).toFixed(0)} ns CPU per line (median of ${times.length}, min ${Math.min(...times).toFixed(0)})`);
if (runs.length === 2) console.log(`ratio: ${(med(runs[0]![2]) / med(runs[1]![2])).toFixed(3)}`);
