import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import type { CliIo } from './CliIo.js';
import { formatRuleError, loadRulesText, type RuleError } from '../rules/load.js';
import { loadRuleTestsText, testEvents, unknownRuleErrors, type ExpectedFiring, type RuleTest } from '../rules/ruleTests.js';
import { DryEvaluator, describeAction } from '../rules/dryRun.js';
import { formatDuration } from '../rules/formatDuration.js';
import { parseDuration } from '../rules/duration.js';
import type { CompiledRuleSet } from '../rules/CompiledRule.js';
import type { OtlpLineMessages } from '../rules/ruleTests.js';
import { otlpFileMessages } from '../ingest/otlp/otlpFile.js';
import { timestampMs } from '../ingest/timestampMs.js';

interface Got { at: string; rule: string; target: string; actions: Record<string, string>[] }

/**
 * `mallet test TESTS.yml`: runs each test's lines through the real matching, templates and
 * threshold semantics (in memory, simulated time) and compares the firings. Exit 1 on any failure.
 */
export async function runTest(argv: string[], io: CliIo): Promise<number> {
  if (argv.length !== 1 || argv[0]!.startsWith('-')) {
    io.stderr.write('usage: mallet test TESTS.yml\n');
    return 2;
  }
  const file = argv[0]!;
  const path = resolve(io.cwd, file);
  const fail = (errors: readonly RuleError[], shown: string): number => {
    for (const e of errors) io.stderr.write(formatRuleError(e) + '\n');
    io.stderr.write(`${shown}: ${errors.length} error${errors.length === 1 ? '' : 's'}\n`);
    return 1;
  };
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return fail([{ file, line: 1, col: 1, message: `cannot read tests file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }], file);
  }
  const parsed = loadRuleTestsText(text, file);
  if (!parsed.ok) return fail(parsed.errors, file);
  const { loaded } = parsed;

  const rulesPath = resolve(dirname(path), loaded.tests.rules);
  const rulesShown = relative(io.cwd, rulesPath) || rulesPath;
  let rulesText: string;
  try {
    rulesText = await readFile(rulesPath, 'utf8');
  } catch (e) {
    // The mistake is the `rules:` line of the tests file, so that is where it is reported.
    return fail([loaded.errorAt(['rules'], `cannot read rules file ${rulesShown}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)], file);
  }
  const rules = loadRulesText(rulesText, rulesShown, io.env);
  if (!rules.ok) return fail(rules.errors, rulesShown);
  const unknown = unknownRuleErrors(loaded, new Set(rules.ruleSet.rules.map((r) => r.name)), rulesShown);
  if (unknown.length > 0) return fail(unknown, file);

  // `otlp:` files are read and decoded once, before any test runs, so a bad one is reported at its line.
  const otlpFiles = new Map<string, ReturnType<OtlpLineMessages>>();
  const otlpErrors: RuleError[] = [];
  for (const [i, test] of loaded.tests.tests.entries()) {
    for (const [j, line] of test.lines.entries()) {
      if (line.otlp === undefined || otlpFiles.has(line.otlp)) continue;
      try {
        const messages = otlpFileMessages(readFileSync(resolve(dirname(path), line.otlp)), rules.ruleSet.fir, 0);
        // A file of several samples (a capture, a series) plays them at their own spacing.
        const times = messages.map((m) => timestampMs(m.timestamp));
        const first = Math.min(...times.filter(Number.isFinite));
        otlpFiles.set(line.otlp, messages.map((m, n) => ({
          appName: m.appName, procId: m.procId, message: m.message, offsetMs: Number.isFinite(times[n]!) ? Math.trunc(times[n]! - first) : 0,
        })));
      } catch (e) {
        otlpErrors.push(loaded.errorAt(['tests', i, 'lines', j, 'otlp'], `cannot use OTLP file ${line.otlp}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`));
      }
    }
  }
  if (otlpErrors.length > 0) return fail(otlpErrors, file);
  const otlp: OtlpLineMessages = (name) => otlpFiles.get(name) ?? [];

  let failed = 0;
  for (const [i, test] of loaded.tests.tests.entries()) {
    const problems = await runOne(test, i, rules.ruleSet, otlp);
    if (problems.length === 0) {
      io.stdout.write(`ok    ${test.name}\n`);
    } else {
      failed++;
      io.stdout.write(`FAIL  ${test.name}\n${problems.map((l) => '      ' + l).join('\n')}\n`);
    }
  }
  const total = loaded.tests.tests.length;
  io.stdout.write(`\n${total - failed} passed, ${failed} failed (${file})\n`);
  return failed === 0 ? 0 : 1;
}

async function runOne(test: RuleTest, index: number, ruleSet: CompiledRuleSet, otlp: OtlpLineMessages): Promise<string[]> {
  const { events, start } = testEvents(test, index, otlp);
  const dry = new DryEvaluator(ruleSet);
  const got: Got[] = [];
  const seen = new Set<string>();
  // One line per body, in time order, as a live drain would deliver them.
  for (const e of events) {
    const { firings } = await dry.evaluate([e]);
    for (const f of firings) {
      if (seen.has(f.id)) continue;
      seen.add(f.id);
      got.push({ at: formatDuration(f.firedAt - start), rule: f.rule, target: f.target, actions: f.actions.map(describeAction) });
    }
  }
  return diffFirings(test.expect, got);
}

/** Unified-diff style: `-` expected and missing, `+` fired and not expected. */
function diffFirings(expected: readonly ExpectedFiring[], got: readonly Got[]): string[] {
  const show = (f: { at: string; rule: string; target: string; actions?: readonly Record<string, unknown>[] }) =>
    `at ${f.at} ${f.rule} ${f.target}${f.actions ? ' ' + JSON.stringify(f.actions) : ''}`;
  const out: string[] = [];
  let mismatch = false;
  const n = Math.max(expected.length, got.length);
  for (let i = 0; i < n; i++) {
    const e = expected[i];
    const g = got[i];
    if (e && g && matches(e, g)) {
      out.push(`  ${show(g)}`);
      continue;
    }
    mismatch = true;
    if (e) out.push(`- ${show({ ...e, at: formatDuration(parseAt(e.at)) })}`);
    if (g) out.push(`+ ${show(g)}`);
  }
  return mismatch ? ['firings (- expected, + got):', ...out] : [];
}

const parseAt = (at: string): number => parseDuration(at) ?? NaN;

function matches(e: ExpectedFiring, g: Got): boolean {
  if (parseAt(e.at) !== parseAt(g.at) || e.rule !== g.rule || e.target !== g.target) return false;
  if (!e.actions) return true;
  if (e.actions.length !== g.actions.length) return false;
  // Expected actions list the fields that matter; each must equal the resolved one.
  return e.actions.every((want, i) => Object.entries(want).every(([k, v]) => {
    const have = g.actions[i]![k];
    if (have === undefined) return false;
    if (parseDuration(String(v)) !== undefined && parseDuration(have) !== undefined) return parseAt(String(v)) === parseAt(have);
    return String(v) === have;
  }));
}
