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
      let value = '';
      let runStart = i;
      while (i < n) {
        c = text.charCodeAt(i);
        if (c === QUOTE) break;
        if (c === BACKSLASH && i + 1 < n) {
          value += text.slice(runStart, i);
          runStart = i + 1; // keep the escaped character itself
          i += 2;
          continue;
        }
        i++;
      }
      value += text.slice(runStart, i);
      out.set(key, value);
      i++; // closing quote (or past the end)
      continue;
    }
    const valueStart = i;
    while (i < n && text.charCodeAt(i) > SP) i++;
    out.set(key, text.slice(valueStart, i));
  }
  return out;
}

const SP = 0x20;
const EQ = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
