/**
 * A line's RFC 3339 TIMESTAMP (`YYYY-MM-DDTHH:MM:SS`, 0–6 fraction digits, `Z` or `±HH:MM`) as
 * ms since the epoch, NaN when it is not one. Date.parse takes ~3 µs on logplex's 6-digit
 * fractions; the observers read a timestamp for every runtime-metrics line, so the fixed layout
 * is read by hand, with the day's start cached (lines of one body share their day) and compared
 * in place.
 */
let lastDay = '';
let lastDayMs = 0;

const d2 = (s: string, i: number) => {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : NaN;
};

/** Whether ts starts with lastDay, compared in place (no slice per call). */
function sameDay(ts: string): boolean {
  for (let i = 0; i < 10; i++) if (ts.charCodeAt(i) !== lastDay.charCodeAt(i)) return false;
  return lastDay.length === 10;
}

/** headBytesMs' own day cache: the day as the number YYYYMMDD, and its start (Date.UTC's). */
let lastDayKey = Number.NaN;
let lastDayKeyMs = 0;
/** The zone string headBytesMs last read (the parser shares it between lines) and its offset. */
let lastOffsetZone = 'Z';
let lastOffsetMs = 0;

const b2 = (b: Buffer, i: number) => {
  const x = b[i]! - 48;
  const y = b[i + 1]! - 48;
  return x >= 0 && x <= 9 && y >= 0 && y <= 9 ? x * 10 + y : NaN;
};

/**
 * timestampMs(head + zone) where `head` is the 19 bytes of buf at `at` (how a parsed line keeps its
 * timestamp: syslogTimestamp.ts), read from those bytes. The dyno observer reads the time of each
 * memory sample, whose heads differ second by second, so the one-head cache of timeMs misses on
 * most of them: character reads and a ten-character day compare cost ~1 200 instructions a
 * line (callgrind), byte reads and one number compare a tenth of that. The same checks in the
 * same order, and Date.UTC for a new day, so the same result, NaN included.
 */
export function headBytesMs(buf: Buffer, at: number, zone: string): number {
  if (buf[at + 4] !== 45 || buf[at + 7] !== 45 || buf[at + 10] !== 84 || buf[at + 13] !== 58 || buf[at + 16] !== 58) return NaN;
  const y = b2(buf, at) * 100 + b2(buf, at + 2);
  const mo = b2(buf, at + 5);
  const d = b2(buf, at + 8);
  if (!(mo >= 1 && mo <= 12 && d >= 1 && d <= 31)) return NaN;
  const key = y * 10_000 + mo * 100 + d;
  if (key !== lastDayKey) {
    lastDayKeyMs = Date.UTC(y, mo - 1, d);
    lastDayKey = key;
  }
  const h = b2(buf, at + 11);
  const mi = b2(buf, at + 14);
  const s = b2(buf, at + 17);
  if (!(h <= 23 && mi <= 59 && s <= 60)) return NaN;
  if (zone !== lastOffsetZone) {
    lastOffsetMs = zoneOffset(zone, 0, zone.length);
    lastOffsetZone = zone;
  }
  return lastDayKeyMs + ((h * 60 + mi) * 60 + s) * 1000 - lastOffsetMs;
}

/** Reads the day of ts (valid month and day) into lastDay/lastDayMs; false when it is not one. */
function newDay(ts: string): boolean {
  const y = d2(ts, 0) * 100 + d2(ts, 2);
  const mo = d2(ts, 5);
  const d = d2(ts, 8);
  if (!(mo >= 1 && mo <= 12 && d >= 1 && d <= 31)) return false;
  lastDayMs = Date.UTC(y, mo - 1, d);
  lastDay = ts.slice(0, 10);
  return true;
}

/** The offset in ms of the zone at ts[i, n) (`Z` or `±HH:MM`, nothing after it), NaN when it is not one. */
function zoneOffset(ts: string, i: number, n: number): number {
  const z = ts.charCodeAt(i);
  if (z === 90 && i + 1 === n) return 0;
  if ((z === 43 || z === 45) && i + 6 === n && ts.charCodeAt(i + 3) === 58) {
    const oh = d2(ts, i + 1);
    const om = d2(ts, i + 4);
    if (!(oh <= 23 && om <= 59)) return NaN;
    return (z === 43 ? 1 : -1) * (oh * 60 + om) * 60_000;
  }
  return NaN;
}

export function timestampMs(ts: string): number {
  const n = ts.length;
  if (n < 20 || ts.charCodeAt(4) !== 45 || ts.charCodeAt(7) !== 45 || ts.charCodeAt(10) !== 84 || ts.charCodeAt(13) !== 58 || ts.charCodeAt(16) !== 58) return NaN;
  if (!sameDay(ts) && !newDay(ts)) return NaN;
  const h = d2(ts, 11);
  const mi = d2(ts, 14);
  const s = d2(ts, 17);
  if (!(h <= 23 && mi <= 59 && s <= 60)) return NaN;
  let i = 19;
  let ms = 0;
  if (ts.charCodeAt(i) === 46) {
    let scale = 100;
    const f = ++i;
    while (i < n) {
      const c = ts.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      ms += c * scale;
      scale /= 10;
      i++;
    }
    if (i === f || i - f > 6) return NaN;
    ms = Math.floor(ms);
  }
  const offset = zoneOffset(ts, i, n);
  return lastDayMs + ((h * 60 + mi) * 60 + s) * 1000 + ms - offset;
}

/**
 * An event's time in ms: the producer's own reading when it has one (DrainEvent.timeMs, the
 * same number without making the timestamp's text), else timestampMs of its timestamp.
 */
export function eventTimeMs(e: { readonly timeMs?: number; readonly timestamp: string }): number {
  return e.timeMs ?? timestampMs(e.timestamp);
}
