import { readFile } from 'node:fs/promises';
import type { Document } from 'yaml';
import type { $ZodIssue } from 'zod/v4/core';
import { rulesFileSchema, ruleSchema, ACTION_TYPES, type RawRule } from './schema.js';
import { compileRules } from './compile.js';
import type { CompiledRuleSet } from './CompiledRule.js';
import { envRefs, expandEnv, unsetRefs } from './env.js';
import { describeZodIssue, parseWithPositions, valueAt, type YamlPath } from './yamlPositions.js';

export type { CompiledRuleSet } from './CompiledRule.js';

/** One problem in a rules file; line and col are 1-based and point at the offending key or value. */
export interface RuleError {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

export type LoadResult = { ok: true; ruleSet: CompiledRuleSet } | { ok: false; errors: RuleError[] };

type Env = Readonly<Record<string, string | undefined>>;

/** Values that keep their `${VAR}` references (expanded by the worker, never stored expanded). */
const SECRET_KEYS = new Set(['url', 'redis_url', 'token', 'heroku_api_token', 'drain_password']);

/** The one loader of the rules file: serve, check, test, replay and hot reload all call it. */
export async function loadRules(path: string, env: Env): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return { ok: false, errors: [{ file: path, line: 1, col: 1, message: `cannot read rules file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }] };
  }
  return loadRulesText(text, path, env);
}

export function loadRulesText(text: string, file: string, env: Env): LoadResult {
  const { doc, syntaxErrors, positionOf } = parseWithPositions(text);
  const errors: RuleError[] = [];
  if (syntaxErrors.length > 0) {
    for (const e of syntaxErrors) errors.push({ file, ...e });
    return { ok: false, errors: sortErrors(errors) };
  }

  const report = (path: YamlPath, message: string, opts?: { key?: boolean }) => {
    errors.push({ file, ...positionOf(path, opts?.key ?? false), message: withRuleName(doc, path, message) });
  };

  // `${VAR}` anywhere: every variable must be set; outside secret values it is expanded now.
  const data = expandRefs(doc.toJS({ maxAliasCount: 100 }), [], env, report);

  const zodIssues = (issues: readonly $ZodIssue[], prefix: YamlPath) => {
    for (const issue of issues) {
      const full = { ...issue, path: [...prefix, ...issue.path] } as $ZodIssue;
      for (const [path, message, key] of describeIssue(full, data)) report(path, message, { key });
    }
  };
  const parsed = rulesFileSchema.safeParse(data);
  if (!parsed.success) {
    zodIssues(parsed.error.issues, []);
    return { ok: false, errors: sortErrors(errors) };
  }
  const rawRules: (RawRule | undefined)[] = parsed.data.rules.map((r, i) => {
    const one = ruleSchema.safeParse(r);
    if (one.success) return one.data;
    zodIssues(one.error.issues, ['rules', i]);
    return undefined;
  });
  const ruleSet = compileRules(parsed.data, rawRules, file, env, report);
  if (!ruleSet || errors.length > 0) return { ok: false, errors: sortErrors(errors) };
  return { ok: true, ruleSet };
}

/** `file:line:col: message`, the format editors and CI annotate. */
export function formatRuleError(e: RuleError): string {
  return `${e.file}:${e.line}:${e.col}: ${e.message}`;
}

/** In file order, as an editor lists them. */
export function sortErrors(errors: RuleError[]): RuleError[] {
  return errors.sort((a, b) => a.line - b.line || a.col - b.col);
}

function expandRefs(value: unknown, path: (string | number)[], env: Env, report: (p: YamlPath, m: string) => void): unknown {
  if (typeof value === 'string') {
    const refs = envRefs(value);
    if (refs.length === 0) return value;
    const unset = unsetRefs(refs, env);
    for (const n of unset) report(path, `environment variable ${n} is not set`);
    const key = path[path.length - 1];
    if (unset.length > 0 || (typeof key === 'string' && SECRET_KEYS.has(key))) return value;
    return expandEnv(value, env);
  }
  if (Array.isArray(value)) return value.map((v, i) => expandRefs(v, [...path, i], env, report));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandRefs(v, [...path, k], env, report);
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
      return [[path, got === undefined ? `missing required key "type" (one of ${ACTION_TYPES.join(', ')})` : `unknown action type ${JSON.stringify(got)} (expected one of ${ACTION_TYPES.join(', ')})`, false]];
    }
    return [[path, issue.message, false]];
  }
  return describeZodIssue(issue, data);
}

function withRuleName(doc: Document, path: YamlPath, message: string): string {
  if (path[0] !== 'rules' || typeof path[1] !== 'number') return message;
  const name = doc.getIn(['rules', path[1], 'name']);
  return typeof name === 'string' && name.length <= 100 ? `rule ${name}: ${message}` : `rules[${path[1]}]: ${message}`;
}
