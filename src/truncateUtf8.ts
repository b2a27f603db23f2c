/**
 * `s` cut to at most `maxBytes` of UTF-8 (a sequence cut in two becomes U+FFFD). Strings short
 * enough in any encoding (3 bytes per UTF-16 unit at most) are returned without encoding them.
 */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (s.length * 3 <= maxBytes) return s;
  // Counted before it is encoded: most strings that could be too long are not (a runtime-metrics
  // trigger line of ~400 characters against the history's 1 024 bytes), and need no copy.
  if (s.length <= maxBytes && Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  const buf = Buffer.from(s, 'utf8');
  return buf.length <= maxBytes ? s : buf.subarray(0, maxBytes).toString('utf8');
}
