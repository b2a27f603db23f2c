/**
 * Instructions per body of the HTTPS drain's parse + match path (routeCut.ts's `match` cut without
 * the HTTP): parseLogplexBody, drainEvents and the example rules' matchEvent over the benchmark
 * corpus, with every line made a message (`all`, the path before the prefilter) and with the
 * service's prefilter (`prefilter`: Pipeline.wants as the service builds it, the example rules and
 * the dyno lines). Each contender in its own `valgrind --tool=callgrind` process, instructions
 * counted only over the measured passes, after warm-up passes (TurboFan done compiling).
 *
 * `--parse-only` adds the parse alone, without and with the prefilter (no events, no matching).
 *
 *   node --import tsx bench/support/parseMatchCost.ts [--lines 20000] [--passes 3] [--warmup 8] [--parse-only]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { BodyPrefilter } from '../../src/ingest/bodyPrefilter.js';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { matchEvent, mayMatch, type RuleMatch } from '../../src/rules/match.js';
import { wantsDynoLine } from '../../src/dynos/dynoLines.js';
import { exampleRulesAndCorpus, numberArg } from './benchInputs.js';

const i = process.argv.indexOf('--contender');
const contender = i >= 0 ? process.argv[i + 1] : undefined;
const lines = numberArg('lines', 20_000);
const passes = numberArg('passes', 3);
const warmup = numberArg('warmup', 8);

if (contender === undefined) {
  const { bodies, totalLines } = await exampleRulesAndCorpus(lines);
  const self = fileURLToPath(import.meta.url);
  const ir: Record<string, number> = {};
  let made: Record<string, number> = {};
  const contenders = ['all', 'prefilter', ...(process.argv.includes('--parse-only') ? ['parse', 'parse+prefilter'] : [])];
  for (const c of contenders) {
    const r = spawnSync('valgrind', ['--tool=callgrind', '--instr-atstart=no', '--callgrind-out-file=/dev/null',
      process.execPath, '--import', 'tsx', self, '--contender', c, '--lines', String(lines), '--passes', String(passes), '--warmup', String(warmup)], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const m = /Collected : (\d+)/.exec(r.stderr ?? '');
    const out = (r.stdout ?? '').trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !m || !out.startsWith('{')) throw new Error(`callgrind run of ${c} failed (${r.status}):\n${r.stderr?.slice(-2000)}`);
    ir[c] = Number(m[1]) / (bodies.length * passes);
    made = { ...made, [c]: (JSON.parse(out) as { made: number }).made };
  }
  console.log(`callgrind, ${totalLines}-line corpus in ${bodies.length} bodies, ${passes} measured passes after ${warmup} warm-up passes`);
  console.log('| contender | messages made per pass | instructions/body | instructions/line | ratio |');
  console.log('|---|---:|---:|---:|---:|');
  for (const c of contenders) {
    console.log(`| ${c} | ${made[c]} | ${Math.round(ir[c]!).toLocaleString('en')} | ${Math.round(ir[c]! * bodies.length / totalLines).toLocaleString('en')} | ${(ir.all! / ir[c]!).toFixed(2)}× |`);
  }
  process.exit(0);
}

const { rules, bodies } = await exampleRulesAndCorpus(lines);
const mode = contender as string;
const prefilter = mode.endsWith('prefilter') ? new BodyPrefilter((e) => mayMatch(rules, e) || wantsDynoLine(e)) : undefined;
let sink = 0;
let made = 0;
function pass(): void {
  made = 0;
  const now = Date.now();
  for (const body of bodies) {
    const parsed = parseLogplexBody(body, prefilter);
    made += parsed.messages.length;
    if (mode.startsWith('parse')) continue;
    const events = drainEvents({ app: 'acme-shop', drainToken: 'd.bench', frameId: 'frame', dedupe: true, receivedAt: now, ...parsed });
    const out: RuleMatch[] = [];
    for (let k = 0; k < events.length; k++) matchEvent(rules, events[k]!, out);
    sink += out.length;
  }
}
for (let k = 0; k < warmup; k++) pass();
const ctl = (on: boolean) => execFileSync('callgrind_control', ['-i', on ? 'on' : 'off', String(process.pid)], { stdio: 'ignore' });
ctl(true);
for (let k = 0; k < passes; k++) pass();
ctl(false);
console.log(JSON.stringify({ made, sink }));
