/**
 * logfmt as Heroku's router and runtime metrics write it (`at=error code=H12 desc="Request
 * timeout" dyno= connect=0ms`, `sample#memory_total=221.47MB`), read in one pass over the text.
 *
 * - `key=` gives an empty value; a bare `key` gives an empty value too.
 * - `key="…"` may hold spaces; `\"` and `\\` are unescaped; an unclosed quote runs to the end.
 * - Unquoted values run to the next space and may contain `=`.
 * - A repeated key keeps its last value (Heroku's own logfmt reader does the same).
 * - Anything else (a stray quote, a word starting with `=`) is skipped up to the next space.
 *
 * Linear in the text; nothing is allocated beyond the keys and values returned.
 */
export function parseLogfmt(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const n = text.length;
  let i = 0;
  while (i < n) {
    let c = text.charCodeAt(i);
    if (c <= SP) { i++; continue; }
    if (c === EQ || c === QUOTE) {
      while (i < n && text.charCodeAt(i) > SP) i++;
      continue;
    }
    const keyStart = i;
    while (i < n) {
      c = text.charCodeAt(i);
      if (c <= SP || c === EQ || c === QUOTE) break;
      i++;
    }
    const key = text.slice(keyStart, i);
    if (i >= n || c <= SP) { out.set(key, ''); continue; }
    if (c === QUOTE) {
      // `key"…`: not a pair.
      while (i < n && text.charCodeAt(i) > SP) i++;
      continue;
    }
    i++; // '='
    if (i < n && text.charCodeAt(i) === QUOTE) {
      i++;
      const end = quotedEnd(text, i, n);
      out.set(key, quotedValue(text, i, end, n));
      i = end + 1; // closing quote (or past the end)
      continue;
    }
    const valueStart = i;
    while (i < n && text.charCodeAt(i) > SP) i++;
    out.set(key, text.slice(valueStart, i));
  }
  return out;
}

/** Where the quoted value from `i` ends: its closing quote, or n (unclosed); `\\x` pairs skipped. */
function quotedEnd(text: string, i: number, n: number): number {
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return i;
    i += c === BACKSLASH && i + 1 < n ? 2 : 1;
  }
  return n;
}

/** The quoted value in [i, end) (quotedEnd's), `\\x` unescaped to `x`. */
function quotedValue(text: string, i: number, end: number, n: number): string {
  let value = '';
  let runStart = i;
  while (i < end) {
    if (text.charCodeAt(i) === BACKSLASH && i + 1 < n) {
      value += text.slice(runStart, i);
      runStart = i + 1; // keep the escaped character itself
      i += 2;
      continue;
    }
    i++;
  }
  return runStart === i ? value : value + text.slice(runStart, end);
}

/**
 * parseLogfmt(text).get(key) for a text without a quote, where every token is a run of characters above space:
 * `key` (no space, `=` or quote in it, not empty) is that token's key exactly where it starts
 * a token and is followed by `=`, a space or the end. Found by the native search instead of a
 * character loop (~20 instructions a character in optimised code, callgrind: the string's
 * representation is dispatched on at every charCodeAt); a key that occurs again later wins.
 */
function plainValue(text: string, key: string): string | undefined {
  const n = text.length;
  const kl = key.length;
  let value: string | undefined;
  let at = text.indexOf(key);
  while (at >= 0) {
    const end = at + kl;
    if (at === 0 || text.charCodeAt(at - 1) <= SP) {
      const c = end < n ? text.charCodeAt(end) : SP;
      if (c <= SP) value = '';
      else if (c === EQ) {
        let i = end + 1;
        while (i < n && text.charCodeAt(i) > SP) i++;
        value = text.slice(end + 1, i);
      }
    }
    // An occurrence starting inside this one follows a character of the key, not a space.
    at = text.indexOf(key, end);
  }
  return value;
}

/** Whether `key` can be a key of parseLogfmt's: not empty, no space, `=` or quote in it. */
function isPlainKey(key: string): boolean {
  if (key.length === 0) return false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c <= SP || c === EQ || c === QUOTE) return false;
  }
  return true;
}

/**
 * A line's logfmt fields as parseLogfmt reads them, read only as asked: the rules ask a line for
 * one or two keys (`sample#memory_total` and `sample#memory_quota` of a runtime-metrics line
 * that carries nine), so on a line without quotes (runtime metrics) `get` finds the one key
 * (plainValue) instead of slicing, hashing and storing every key and value of the line, and the
 * last few answers are kept, since several rules read the same fields of a line. A line with a
 * quote (a router line: `desc="Request timeout"`), or anything that needs the whole map (size,
 * iteration), has it parsed once (parseLogfmt) and read from then on.
 */
export class LogfmtFields implements ReadonlyMap<string, string> {
  #all: Map<string, string> | undefined = undefined;
  readonly #keys: string[] = [];
  readonly #values: (string | undefined)[] = [];
  #quoted: boolean | undefined = undefined;
  /** #private: nothing of the line shows when the fields are logged or serialised (a Map shows `{}`). */
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  get(key: string): string | undefined {
    if (this.#all !== undefined) return this.#all.get(key);
    const keys = this.#keys;
    for (let k = 0; k < keys.length; k++) if (keys[k] === key) return this.#values[k];
    this.#quoted ??= this.#text.indexOf('"') >= 0;
    if (this.#quoted) return this.#map().get(key);
    // parseLogfmt makes no key that is empty or holds a space, `=` or a quote: such a key is absent.
    const value = isPlainKey(key) ? plainValue(this.#text, key) : undefined;
    if (keys.length < MEMO_KEYS) {
      keys.push(key);
      this.#values.push(value);
    }
    return value;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  get size(): number { return this.#map().size; }
  forEach(f: (value: string, key: string, map: ReadonlyMap<string, string>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.#map()) f.call(thisArg, v, k, this);
  }
  entries(): MapIterator<[string, string]> { return this.#map().entries(); }
  keys(): MapIterator<string> { return this.#map().keys(); }
  values(): MapIterator<string> { return this.#map().values(); }
  [Symbol.iterator](): MapIterator<[string, string]> { return this.#map()[Symbol.iterator](); }

  #map(): Map<string, string> {
    return (this.#all ??= parseLogfmt(this.#text));
  }
}

/** Answers a LogfmtFields keeps before it stops remembering (a line's rules read few keys). */
const MEMO_KEYS = 4;

const SP = 0x20;
const EQ = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
