import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { $ZodIssue } from 'zod/v4/core';
import { didYouMean } from './suggest.js';

/**
 * A YAML file read twice, as promtool does: once to plain data for the schema, once to nodes
 * with positions, so every problem found in the data can be reported at `file:line:col`.
 * Shared by the rules file and the rule-tests file.
 */
export type YamlPath = readonly (string | number)[];

/** 1-based, as editors and CI annotations count. */
export interface YamlPosition {
  readonly line: number;
  readonly col: number;
}

export interface PositionedYaml {
  readonly doc: Document;
  /** Syntax errors, duplicate keys included; when there are any the data is not to be trusted. */
  readonly syntaxErrors: readonly (YamlPosition & { readonly message: string })[];
  /** Where the node at `path` is (its key when `key`), else the nearest existing ancestor. */
  positionOf(path: YamlPath, key?: boolean): YamlPosition;
}

export function parseWithPositions(text: string): PositionedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): YamlPosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, col };
  };
  return {
    doc,
    syntaxErrors: doc.errors.map((e) => ({ ...at(e.pos[0]), message: `YAML: ${e.message.split('\n')[0]}` })),
    positionOf: (path, key = false) => at(offsetOf(doc, path, key)),
  };
}

/**
 * A zod issue as messages at paths: unknown keys one per key, at the key; a missing key at its
 * parent; the rest at the offending value. The boolean says whether to point at the key.
 * `knownKeys` gives the keys allowed where an unknown one was found, for a "did you mean".
 */
export function describeZodIssue(issue: $ZodIssue, data: unknown, knownKeys?: (path: YamlPath) => readonly string[]): [YamlPath, string, boolean][] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const last = path[path.length - 1];
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => [[...path, k], `unknown key ${JSON.stringify(k)}${knownKeys ? didYouMean(k, knownKeys(path)) : ''}`, true]);
    case 'invalid_type': {
      if (valueAt(data, path) === undefined) return [[path, `missing required key ${JSON.stringify(last)}`, false]];
      const msg = issue.message.startsWith('Invalid input') ? `expected ${issue.expected}` : issue.message;
      return [[path, `${typeof last === 'string' ? last + ': ' : ''}${msg}`, false]];
    }
    case 'invalid_key':
      // A record key with the wrong shape (an app name): point at the key, with the key's own message.
      return [[path, `${issue.issues[0]?.message ?? issue.message}: ${JSON.stringify(last)}`, true]];
    case 'invalid_value':
      if (valueAt(data, path) === undefined) return [[path, `missing required key ${JSON.stringify(last)} (expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')})`, false]];
      return [[path, `${typeof last === 'string' ? last + ': ' : ''}expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`, false]];
    default:
      return [[path, issue.message, false]];
  }
}

export function valueAt(data: unknown, path: YamlPath): unknown {
  let v = data;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

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
      if (!value?.range) return (pair.key as Node).range?.[0] ?? best;
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
