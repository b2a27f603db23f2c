import { readFile } from 'node:fs/promises';
import type { Document } from 'yaml';
import { z } from 'zod';
import type { $ZodIssue } from 'zod/v4/core';
import { rulesFileSchema, ruleSchema, ACTION_TYPES, type RawAction, type RawRule, type RulesFile } from './schema.js';
import { compileRules } from './compile.js';
import type { CompiledRuleSet } from './CompiledRule.js';
import { envRefs, expandEnv, unsetRefs } from './env.js';
import { describeZodIssue, parseWithPositions, valueAt, type YamlPath } from './yamlPositions.js';
import { didYouMean, knownKeysAt } from './suggest.js';
import { salvage } from './salvage.js';
import { ruleWarnings } from './warnings.js';

export type { CompiledRuleSet } from './CompiledRule.js';

/** One problem in a rules file; line and col are 1-based and point at the offending key or value. */
export interface RuleError {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

/**
 * Warnings (a rules file that loads but probably does not do what was meant) come with both
 * outcomes, in file order, in the same form as errors.
 */
export type LoadResult =
  | { ok: true; ruleSet: CompiledRuleSet; warnings: RuleError[] }
  | { ok: false; errors: RuleError[]; warnings: RuleError[] };

export interface LoadOptions {
  /**
   * `mallet check --allow-unset-env`: an unset `${VAR}` is not an error (CI has no secrets). Values
   * are still checked for being references where a secret belongs, so a literal secret is still
   * refused. Never for serving: an unset variable there is a step that fails at 3 a.m.
   */
  readonly allowUnsetEnv?: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Where salvage may drop a part: every top-level key optional, the rules checked one by one. */
const lenientFile = rulesFileSchema.partial();
const lenientRule = ruleSchema.partial().extend({ actions: z.array(z.unknown()).optional() });
const actionSchema = ruleSchema.shape.actions.element;

/** Values that keep their `${VAR}` references (expanded by the worker, never stored expanded). */
const SECRET_KEYS = new Set(['url', 'redis_url', 'token', 'heroku_api_token', 'drain_password']);

/** The one loader of the rules file: serve, check, test, replay and hot reload all call it. */
export async function loadRules(path: string, env: Env, opts: LoadOptions = {}): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return { ok: false, errors: [{ file: path, line: 1, col: 1, message: `cannot read rules file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }], warnings: [] };
  }
  return loadRulesText(text, path, env, opts);
}

/**
 * Every mistake of the file in one pass: a part the schema refuses is reported and left out, and
 * the rest is still compiled, so a missing `version` or an unknown key does not hide a regex,
 * unit or template error elsewhere (CI shows them all in one run).
 */
export function loadRulesText(text: string, file: string, env: Env, opts: LoadOptions = {}): LoadResult {
  const { doc, syntaxErrors, positionOf } = parseWithPositions(text);
  const errors: RuleError[] = [];
  const warnings: RuleError[] = [];
  if (syntaxErrors.length > 0) {
    for (const e of syntaxErrors) errors.push({ file, ...e });
    return { ok: false, errors: sortErrors(errors), warnings };
  }

  const at = (list: RuleError[]) => (path: YamlPath, message: string, o?: { key?: boolean }) => {
    list.push({ file, ...positionOf(path, o?.key ?? false), message: withRuleName(doc, path, message) });
  };
  const report = at(errors);

  // `${VAR}` anywhere: every variable must be set; outside secret values it is expanded now.
  const data = expandRefs(doc.toJS({ maxAliasCount: 100 }), [], env, report, opts.allowUnsetEnv === true);

  const zodIssues = (issues: readonly $ZodIssue[], prefix: YamlPath) => {
    for (const issue of issues) {
      const full = { ...issue, path: [...prefix, ...issue.path] } as $ZodIssue;
      for (const [path, message, key] of describeIssue(full, data)) report(path, message, { key });
    }
  };
  const parsed = rulesFileSchema.safeParse(data);
  let fileData: RulesFile;
  if (parsed.success) {
    fileData = parsed.data;
  } else {
    zodIssues(parsed.error.issues, []);
    const rest = salvage(lenientFile, data);
    fileData = { version: 1, ...rest, rules: Array.isArray((data as { rules?: unknown } | null)?.rules) ? (data as { rules: unknown[] }).rules : [] };
  }
  const rawRules: (RawRule | undefined)[] = fileData.rules.map((r, i) => {
    const one = ruleSchema.safeParse(r);
    if (one.success) return one.data;
    zodIssues(one.error.issues, ['rules', i]);
    return salvageRule(r);
  });
  const ruleSet = compileRules(fileData, rawRules, file, env, report);
  ruleWarnings(fileData, rawRules, env, at(warnings));
  sortErrors(warnings);
  if (!ruleSet || errors.length > 0) return { ok: false, errors: sortErrors(errors), warnings };
  return { ok: true, ruleSet, warnings };
}

/**
 * What of a refused rule can still be compiled: the parts that pass, each action on its own.
 * Actions keep their index (a sparse array), so their errors point at the right lines.
 */
function salvageRule(data: unknown): RawRule | undefined {
  const rest = salvage(lenientRule, data);
  if (!rest) return undefined;
  const actions: RawAction[] = [];
  (rest.actions ?? []).forEach((a, j) => {
    const one = salvage(actionSchema, a);
    if (one) actions[j] = one;
  });
  return { ...rest, name: rest.name ?? '', match: rest.match ?? {}, actions };
}

/** `file:line:col: message`, the format editors and CI annotate. */
export function formatRuleError(e: RuleError): string {
  return `${e.file}:${e.line}:${e.col}: ${e.message}`;
}

/** In file order, as an editor lists them. */
export function sortErrors(errors: RuleError[]): RuleError[] {
  return errors.sort((a, b) => a.line - b.line || a.col - b.col);
}

function expandRefs(value: unknown, path: (string | number)[], env: Env, report: (p: YamlPath, m: string) => void, allowUnset: boolean): unknown {
  if (typeof value === 'string') {
    const refs = envRefs(value);
    if (refs.length === 0) return value;
    const unset = unsetRefs(refs, env);
    if (!allowUnset) for (const n of unset) report(path, `environment variable ${n} is not set (set it, or run mallet check --allow-unset-env where secrets are absent)`);
    const key = path[path.length - 1];
    if (unset.length > 0 || (typeof key === 'string' && SECRET_KEYS.has(key))) return value;
    return expandEnv(value, env);
  }
  if (Array.isArray(value)) return value.map((v, i) => expandRefs(v, [...path, i], env, report, allowUnset));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandRefs(v, [...path, k], env, report, allowUnset);
    return out;
  }
  return value;
}

/** The action `type` union is the rules file's own case; the rest is shared with the tests file. */
function describeIssue(issue: $ZodIssue, data: unknown): [YamlPath, string, boolean][] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'invalid_union') {
    if (path[path.length - 1] === 'type') {
      const got = valueAt(data, path);
      if (got === undefined) return [[path, `missing required key "type" (one of ${ACTION_TYPES.join(', ')})`, false]];
      const hint = typeof got === 'string' ? didYouMean(got, ACTION_TYPES) : '';
      return [[path, `unknown action type ${JSON.stringify(got)}${hint || ` (expected one of ${ACTION_TYPES.join(', ')})`}`, false]];
    }
    return [[path, issue.message, false]];
  }
  // Each rule is parsed on its own schema (the file's `rules` is a list of unknowns).
  return describeZodIssue(issue, data, (p) => (p[0] === 'rules' && typeof p[1] === 'number'
    ? knownKeysAt(ruleSchema, p.slice(2), valueAt(data, p.slice(0, 2)))
    : knownKeysAt(rulesFileSchema, p, data)));
}

function withRuleName(doc: Document, path: YamlPath, message: string): string {
  if (path[0] !== 'rules' || typeof path[1] !== 'number') return message;
  const name = doc.getIn(['rules', path[1], 'name']);
  return typeof name === 'string' && name.length <= 100 ? `rule ${name}: ${message}` : `rules[${path[1]}]: ${message}`;
}
