import type { $ZodType } from 'zod/v4/core';
import type { YamlPath } from './yamlPositions.js';

/**
 * "Did you mean" for the rules file: the closest known key or action type to a misspelt one, by
 * edit distance (optimal string alignment: a swapped pair of letters counts as one edit).
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  // Too far and the hint misleads more than it helps: about one edit in three letters.
  const limit = Math.max(2, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase(), limit);
    if (d < bestD) { best = c; bestD = d; }
  }
  if (best !== undefined && bestD <= limit) return best;
  // `redis-stop` for `redis-stop-key`, `quiet` for `quiet_timeout`: a prefix is a good hint too.
  if (word.length >= 4) return candidates.find((c) => c.startsWith(word));
  return undefined;
}

/** The suffix ` (did you mean "x"?)`, or ''. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const c = closest(word, candidates);
  return c === undefined || c === word ? '' : ` (did you mean ${JSON.stringify(c)}?)`;
}

/** Optimal string alignment distance, giving up (returning limit + 1) once past `limit`. */
export function editDistance(a: string, b: string, limit = Infinity): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  // Keys are short (a strict schema caps what is compared), so three rows are plenty.
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      cur.push(d);
      if (d < rowMin) rowMin = d;
    }
    if (rowMin > limit) return limit + 1;
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

interface Def {
  type: string;
  shape?: Record<string, $ZodType>;
  innerType?: $ZodType;
  element?: $ZodType;
  valueType?: $ZodType;
  options?: $ZodType[];
  discriminator?: string;
  in?: $ZodType;
}
const defOf = (s: $ZodType) => s._zod.def as unknown as Def;

/**
 * The keys the schema knows for the object at `path` of `data` (for an unknown key's hint). An
 * action's keys are those of its own `type`; an unknown type gets no key hints.
 */
export function knownKeysAt(schema: $ZodType, path: YamlPath, data: unknown): string[] {
  let s: $ZodType | undefined = schema;
  let v = data;
  for (let i = 0; ; i++) {
    s = settle(s, v);
    if (!s) return [];
    if (i === path.length) break;
    const def = defOf(s);
    const seg = path[i]!;
    if (def.type === 'object') s = def.shape?.[String(seg)];
    else if (def.type === 'array') s = def.element;
    else if (def.type === 'record') s = def.valueType;
    else return [];
    v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[seg] : undefined;
  }
  const def = defOf(s);
  return def.type === 'object' ? Object.keys(def.shape ?? {}) : [];
}

/** Unwraps optional/nullable/pipe and picks a discriminated union's member by the data. */
function settle(s: $ZodType | undefined, v: unknown): $ZodType | undefined {
  for (let guard = 0; s && guard < 10; guard++) {
    const def = defOf(s);
    if (def.type === 'optional' || def.type === 'nullable' || def.type === 'default') s = def.innerType;
    else if (def.type === 'pipe') s = def.in;
    else if (def.type === 'union' && def.discriminator !== undefined) {
      const tag = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[def.discriminator] : undefined;
      s = def.options?.find((o) => {
        const d = defOf(o).shape?.[def.discriminator!];
        return d !== undefined && (d._zod.def as unknown as { values?: unknown[] }).values?.includes(tag);
      });
      if (!s) return undefined;
    } else return s;
  }
  return s;
}
