/**
 * The prefilter of a message regex: a literal every matching line must contain, found by reading
 * the pattern's leading run of plain characters. Conservative: when unsure (top-level `|`, flags,
 * a class or group first), there is no literal and the regex alone decides.
 */
export interface RegexLiteral {
  readonly text: string;
  /** The pattern starts with `^`: the literal must be a prefix of the line. */
  readonly anchored: boolean;
  /** The whole pattern is `^?literal` with no groups: the literal test is the full match. */
  readonly exact: boolean;
}

const META = new Set(['.', '[', ']', '(', ')', '{', '}', '*', '+', '?', '|', '^', '$', '\\']);
const ESCAPABLE = /[.[\](){}*+?|^$\\/\- #:=<>"'!@%&,;~`]/;

export function requiredLiteral(pattern: string): RegexLiteral | undefined {
  if (hasTopLevelAlternation(pattern)) return undefined;
  let i = 0;
  const anchored = pattern.startsWith('^');
  if (anchored) i = 1;
  let text = '';
  let lastLen = 0;
  for (; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const n = pattern[i + 1];
      if (n === undefined || !ESCAPABLE.test(n)) break;
      lastLen = text.length;
      text += n;
      i++;
      continue;
    }
    if (META.has(c)) break;
    lastLen = text.length;
    text += c;
  }
  const next = pattern[i];
  // `ab*`, `ab?`, `ab{0,2}`: the last character is optional, so it is not required.
  if (next === '*' || next === '?' || next === '{') text = text.slice(0, lastLen);
  if (text.length === 0) return undefined;
  const exact = i === pattern.length;
  return { text, anchored, exact };
}

function hasTopLevelAlternation(pattern: string): boolean {
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') { i++; continue; }
    if (inClass) { if (c === ']') inClass = false; continue; }
    if (c === '[') inClass = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return true;
  }
  return false;
}

/**
 * The UTF-8 bytes to look for in an undecoded line, or undefined when a byte search could answer
 * differently from the decoded text: a literal holding U+FFFD (also what a bad byte decodes to)
 * or a lone surrogate (which has no UTF-8 form).
 */
export function literalBytes(text: string): Buffer | undefined {
  const known = shared.get(text);
  if (known !== undefined) return known;
  if (text.length === 0 || text.includes('\uFFFD')) return undefined;
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.toString('utf8') !== text) return undefined;
  if (shared.size >= MAX_SHARED) shared.clear();
  shared.set(text, bytes);
  return bytes;
}

/**
 * One Buffer per literal text: a batch's LiteralScan keys each needle by identity, so a literal
 * that the rules and the dyno observer both look for (`sample#memory_total=`, tested by the
 * rules' prefilter and then by wantsDynoLine on the same line) is searched for once, not once
 * per copy. Bounded (texts come from rule files, reloads bring new ones); forgetting costs only
 * a second search. The Buffers are never written to.
 */
const shared = new Map<string, Buffer>();
const MAX_SHARED = 4096;
