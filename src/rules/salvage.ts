import type { $ZodIssue } from 'zod/v4/core';
import type { z } from 'zod';

/**
 * What of a value still passes its schema once the parts the schema refused are taken out:
 * unknown keys and invalid values are removed (a required value that is missing takes its parent
 * with it), round after round, until the rest parses. The loader has already reported every
 * issue of the first parse; the salvaged rest is only compiled so that its own mistakes (regexes,
 * units, templates) show in the same run instead of after the structural ones are fixed.
 */
export function salvage<S extends z.ZodType>(schema: S, value: unknown): z.output<S> | undefined {
  const cur: unknown = structuredClone(value);
  // Each round removes at least one node, and a rules file is a few levels deep.
  for (let round = 0; round < 20; round++) {
    const r = schema.safeParse(cur);
    if (r.success) return r.data;
    let changed = false;
    for (const issue of r.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      if (path.length === 0 && issue.code !== 'unrecognized_keys') return undefined;
      changed = prune(cur, issue, path) || changed;
    }
    if (!changed) return undefined;
  }
  return undefined;
}

function prune(root: unknown, issue: $ZodIssue, path: (string | number)[]): boolean {
  if (issue.code === 'unrecognized_keys') {
    const obj = at(root, path);
    if (!isRecord(obj)) return false;
    for (const k of issue.keys) delete obj[k];
    return issue.keys.length > 0;
  }
  // Remove the offending value; when it is absent already (a missing required key), its parent.
  for (let n = path.length; n > 0; n--) {
    const parent = at(root, path.slice(0, n - 1));
    const key = path[n - 1]!;
    if (!isRecord(parent) && !Array.isArray(parent)) continue;
    const container = parent as Record<string | number, unknown>;
    if (container[key] === undefined || container[key] === REMOVED) continue;
    // Array items are replaced, not spliced: later items keep their index (and their position).
    if (Array.isArray(parent)) container[key] = REMOVED;
    else delete container[key];
    return true;
  }
  return false;
}

/** Stands in for a removed array item; schemas of items refuse it, so its parent is removed next. */
const REMOVED = Symbol('removed');

function at(root: unknown, path: readonly (string | number)[]): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
