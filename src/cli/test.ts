import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { CliIo } from './CliIo.js';
import { formatRuleError, loadRulesText } from '../rules/load.js';
import { ruleTestsSchema, testEvents, type ExpectedFiring, type RuleTest } from '../rules/ruleTests.js';
import { DryEvaluator, describeAction } from '../rules/dryRun.js';
import { formatDuration } from '../rules/formatDuration.js';
import { parseDuration } from '../rules/duration.js';
import type { CompiledRuleSet } from '../rules/CompiledRule.js';

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
  let data: unknown;
  try {
    data = parseYaml(await readFile(path, 'utf8'));
  } catch (e) {
    io.stderr.write(`${file}: ${(e as Error).message.split('\n')[0]}\n`);
    return 1;
  }
  const parsed = ruleTestsSchema.safeParse(data);
  if (!parsed.success) {
    for (const i of parsed.error.issues) io.stderr.write(`${file}: ${i.path.join('.') || '(top)'}: ${i.message}\n`);
    return 1;
  }
  const rulesPath = resolve(dirname(path), parsed.data.rules);
  const rulesShown = relative(io.cwd, rulesPath) || rulesPath;
  let rulesText: string;
  try {
    rulesText = await readFile(rulesPath, 'utf8');
  } catch (e) {
    io.stderr.write(`${rulesShown}:1:1: cannot read rules file: ${(e as NodeJS.ErrnoException).code}\n`);
    return 1;
  }
  const loaded = loadRulesText(rulesText, rulesShown, io.env);
  if (!loaded.ok) {
    for (const e of loaded.errors) io.stderr.write(formatRuleError(e) + '\n');
    return 1;
  }

  let failed = 0;
  for (const [i, test] of parsed.data.tests.entries()) {
    const problems = await runOne(test, i, loaded.ruleSet);
    if (problems.length === 0) {
      io.stdout.write(`ok    ${test.name}\n`);
    } else {
      failed++;
      io.stdout.write(`FAIL  ${test.name}\n${problems.map((l) => '      ' + l).join('\n')}\n`);
    }
  }
  const total = parsed.data.tests.length;
  io.stdout.write(`\n${total - failed} passed, ${failed} failed (${file})\n`);
  return failed === 0 ? 0 : 1;
}

async function runOne(test: RuleTest, index: number, ruleSet: CompiledRuleSet): Promise<string[]> {
  const { events, start, errors } = testEvents(test, index);
  if (errors.length > 0) return errors;
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
