import { readFile } from 'node:fs/promises';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { $ZodIssue } from 'zod/v4/core';
import { rulesFileSchema, ruleSchema, ACTION_TYPES, type RawRule } from './schema.js';
import { compileRules, type YamlPath } from './compile.js';
import type { CompiledRuleSet } from './CompiledRule.js';
import { envRefs, expandEnv } from './env.js';

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
const SECRET_KEYS = new Set(['url', 'redis_url', 'token', 'heroku_api_token']);

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
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const errors: RuleError[] = [];
  const at = (offset: number, message: string) => {
    const { line, col } = lineCounter.linePos(offset);
    errors.push({ file, line, col, message });
  };
  if (doc.errors.length > 0) {
    for (const e of doc.errors) at(e.pos[0], `YAML: ${e.message.split('\n')[0]}`);
    return { ok: false, errors: sortErrors(errors) };
  }

  const report = (path: YamlPath, message: string, opts?: { key?: boolean }) => {
    at(offsetOf(doc, path, opts?.key ?? false), withRuleName(doc, path, message));
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

function sortErrors(errors: RuleError[]): RuleError[] {
  return errors.sort((a, b) => a.line - b.line || a.col - b.col);
}

function expandRefs(value: unknown, path: (string | number)[], env: Env, report: (p: YamlPath, m: string) => void): unknown {
  if (typeof value === 'string') {
    const refs = envRefs(value);
    if (refs.length === 0) return value;
    const unset = refs.filter((n) => env[n] === undefined || env[n] === '');
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

/** Turns a zod issue into messages at paths (unknown keys: one per key, at the key). */
function describeIssue(issue: $ZodIssue, data: unknown): [YamlPath, string, boolean][] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const last = path[path.length - 1];
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => [[...path, k], `unknown key ${JSON.stringify(k)}`, true]);
    case 'invalid_type': {
      if (valueAt(data, path) === undefined) return [[path, `missing required key ${JSON.stringify(last)}`, false]];
      const msg = issue.message.startsWith('Invalid input') ? `expected ${issue.expected}` : issue.message;
      return [[path, `${typeof last === 'string' ? last + ': ' : ''}${msg}`, false]];
    }
    case 'invalid_union':
      if (last === 'type') {
        const got = valueAt(data, path);
        return [[path, got === undefined ? `missing required key "type" (one of ${ACTION_TYPES.join(', ')})` : `unknown action type ${JSON.stringify(got)} (expected one of ${ACTION_TYPES.join(', ')})`, false]];
      }
      return [[path, issue.message, false]];
    case 'invalid_value':
      return [[path, `${typeof last === 'string' ? last + ': ' : ''}expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`, false]];
    default:
      return [[path, issue.message, false]];
  }
}

function valueAt(data: unknown, path: YamlPath): unknown {
  let v = data;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

/** Offset of the node at `path` (its key when `key`), else of the nearest existing ancestor. */
function offsetOf(doc: Document, path: YamlPath, key: boolean): number {
  let node: unknown = doc.contents;
  let best = (node as Node | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const isLast = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return best;
      if (isLast && key) return (pair.key as Node).range?.[0] ?? best;
      const value = pair.value as Node | null;
      // A key with no value (`cooldown:`) points at its key.
      if (!value || !value.range) return (pair.key as Node).range?.[0] ?? best;
      node = value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item?.range) return best;
      node = item;
    } else {
      return best;
    }
    best = (node as Node).range?.[0] ?? best;
  }
  return best;
}

function withRuleName(doc: Document, path: YamlPath, message: string): string {
  if (path[0] !== 'rules' || typeof path[1] !== 'number') return message;
  const name = doc.getIn(['rules', path[1], 'name']);
  return typeof name === 'string' && name.length <= 100 ? `rule ${name}: ${message}` : `rules[${path[1]}]: ${message}`;
}
