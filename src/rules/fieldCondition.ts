/**
 * `fields` conditions over logfmt values (SPEC §4): equality, or `> >= < <=` against a number
 * with a unit (ms, s, MB, GB, pages, %), or against a percentage of another field
 * (`> 90% sample#memory_quota`). Heroku writes memory as `512.00MB` in metrics and `591M` in R14
 * lines (../shared/docs/heroku-drain-protocol.md §3.1), so M/G are read as MB/GB.
 */
type Op = '>' | '>=' | '<' | '<=';
type Dimension = 'time' | 'memory' | 'pages' | 'percent' | 'none';

export type FieldCondition =
  | { readonly kind: 'equals'; readonly value: string }
  | { readonly kind: 'compare'; readonly op: Op; readonly value: number; readonly dim: Dimension }
  | { readonly kind: 'ratio'; readonly op: Op; readonly percent: number; readonly other: string };

const UNITS: Record<string, { dim: Dimension; scale: number }> = {
  '': { dim: 'none', scale: 1 },
  ms: { dim: 'time', scale: 1 },
  s: { dim: 'time', scale: 1000 },
  MB: { dim: 'memory', scale: 1 },
  GB: { dim: 'memory', scale: 1024 },
  pages: { dim: 'pages', scale: 1 },
  '%': { dim: 'percent', scale: 1 },
};
/** Values as Heroku writes them; the condition side accepts only the documented units. */
const VALUE_UNITS: Record<string, { dim: Dimension; scale: number }> = { ...UNITS, M: UNITS.MB!, G: UNITS.GB! };

const COMPARE = /^(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z%]*)$/;
const RATIO = /^(>=|<=|>|<)\s*(\d+(?:\.\d+)?)%\s+([A-Za-z0-9_#.-]{1,100})$/;
/** `591M(115.5%)` in R14 lines: the quantity, then a parenthesised percentage that is ignored. */
const VALUE = /^(-?\d+(?:\.\d+)?)([A-Za-z%]*)(?:\([0-9.]*%\))?$/;

export function parseFieldCondition(raw: string | number): { condition?: FieldCondition; error?: string } {
  if (typeof raw === 'number') return { condition: { kind: 'equals', value: String(raw) } };
  const text = raw.trim();
  if (!/^[<>]/.test(text)) return { condition: { kind: 'equals', value: raw } };
  const ratio = RATIO.exec(text);
  if (ratio) return { condition: { kind: 'ratio', op: ratio[1] as Op, percent: Number(ratio[2]), other: ratio[3]! } };
  const cmp = COMPARE.exec(text);
  if (!cmp) return { error: `bad field condition ${JSON.stringify(raw)}: expected e.g. ">= 29000ms", "> 500MB" or "> 90% sample#memory_quota"` };
  const unit = UNITS[cmp[3]!];
  if (!unit) return { error: `bad unit ${JSON.stringify(cmp[3])} in ${JSON.stringify(raw)}: use ms, s, MB, GB, pages or %` };
  return { condition: { kind: 'compare', op: cmp[1] as Op, value: Number(cmp[2]) * unit.scale, dim: unit.dim } };
}

/** A logfmt value as a number in its dimension's base unit, or undefined (empty, text, unknown unit). */
export function readQuantity(value: string): { n: number; dim: Dimension } | undefined {
  // VALUE's grammar read by hand (every matched line's fields, twice for a ratio): no match
  // array, and the unit found in a Map rather than by a keyed load on a dictionary object.
  const len = value.length;
  let i = value.charCodeAt(0) === MINUS ? 1 : 0;
  const digits = i;
  while (i < len && isDigit(value.charCodeAt(i))) i++;
  if (i === digits) return undefined;
  if (i < len && value.charCodeAt(i) === DOT) {
    const f = ++i;
    while (i < len && isDigit(value.charCodeAt(i))) i++;
    if (i === f) return undefined;
  }
  const numberEnd = i;
  while (i < len && isUnitChar(value.charCodeAt(i))) i++;
  const unitEnd = i;
  if (i < len) {
    // `(<digits and dots>%)` to the end, as R14 lines append the percentage.
    if (value.charCodeAt(i) !== OPEN || value.charCodeAt(len - 1) !== CLOSE || value.charCodeAt(len - 2) !== PERCENT || len - 2 < i + 1) return undefined;
    for (let k = i + 1; k < len - 2; k++) {
      const c = value.charCodeAt(k);
      if (!isDigit(c) && c !== DOT) return undefined;
    }
  }
  const unit = VALUE_UNIT_MAP.get(unitEnd === numberEnd ? '' : value.slice(numberEnd, unitEnd));
  if (unit === undefined) return undefined;
  return { n: Number(value.slice(0, numberEnd)) * unit.scale, dim: unit.dim };
}

const VALUE_UNIT_MAP = new Map(Object.entries(VALUE_UNITS));
const MINUS = 45;
const DOT = 46;
const OPEN = 40;
const CLOSE = 41;
const PERCENT = 37;
const isDigit = (c: number) => c >= 48 && c <= 57;
/** [A-Za-z%] */
const isUnitChar = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === PERCENT;

/** readQuantity as the regular expression reads it: what the hand reading is tested against. */
export function readQuantityByRegExp(value: string): { n: number; dim: Dimension } | undefined {
  const m = VALUE.exec(value);
  if (!m) return undefined;
  const unit = VALUE_UNITS[m[2]!];
  if (!unit) return undefined;
  return { n: Number(m[1]) * unit.scale, dim: unit.dim };
}

function compare(op: Op, a: number, b: number): boolean {
  switch (op) {
    case '>': return a > b;
    case '>=': return a >= b;
    case '<': return a < b;
    case '<=': return a <= b;
  }
}

export function testCondition(c: FieldCondition, key: string, fields: ReadonlyMap<string, string>): boolean {
  const raw = fields.get(key);
  if (raw === undefined) return false;
  if (c.kind === 'equals') return raw === c.value;
  const q = readQuantity(raw);
  if (!q) return false;
  if (c.kind === 'compare') {
    // A unitless condition compares the bare number; otherwise the dimensions must agree.
    if (c.dim !== 'none' && q.dim !== c.dim) return false;
    return compare(c.op, q.n, c.value);
  }
  const otherRaw = fields.get(c.other);
  const other = otherRaw === undefined ? undefined : readQuantity(otherRaw);
  if (!other || other.dim !== q.dim) return false;
  return compare(c.op, q.n, (other.n * c.percent) / 100);
}
