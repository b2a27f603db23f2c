/**
 * `process` globs over PROCID (`web.*`, `worker.?`, `router`), compiled once into the cheapest
 * test that answers them: equality, prefix, suffix, or a linear scan with backtracking bounded by
 * the (short) PROCID. Only `*` and `?` are special; the rest must be PROCID characters.
 */
const GLOB = /^[A-Za-z0-9._*?-]{1,100}$/;

export type ProcessMatcher = (process: string) => boolean;

export function compileGlob(glob: string): { matcher?: ProcessMatcher; error?: string } {
  if (!GLOB.test(glob)) {
    return { error: `bad process glob ${JSON.stringify(glob)}: use PROCID characters [A-Za-z0-9._-] with * and ? wildcards` };
  }
  if (glob === '*') return { matcher: () => true };
  const star = glob.indexOf('*');
  if (!glob.includes('?')) {
    if (star === -1) return { matcher: (p) => p === glob };
    if (star === glob.length - 1 && glob.indexOf('*') === glob.lastIndexOf('*')) {
      const prefix = glob.slice(0, -1);
      return { matcher: (p) => p.startsWith(prefix) };
    }
    if (star === 0 && glob.lastIndexOf('*') === 0) {
      const suffix = glob.slice(1);
      return { matcher: (p) => p.endsWith(suffix) };
    }
  }
  return { matcher: (p) => globMatch(glob, p) };
}

/** Iterative wildcard match: O(len(glob) × len(text)) worst case, no recursion. */
function globMatch(glob: string, text: string): boolean {
  let g = 0, t = 0, starG = -1, starT = 0;
  while (t < text.length) {
    const c = glob.charCodeAt(g);
    if (g < glob.length && (c === 63 /* ? */ || c === text.charCodeAt(t))) { g++; t++; }
    else if (g < glob.length && c === 42 /* * */) { starG = g++; starT = t; }
    else if (starG !== -1) { g = starG + 1; t = ++starT; }
    else return false;
  }
  while (g < glob.length && glob.charCodeAt(g) === 42) g++;
  return g === glob.length;
}
