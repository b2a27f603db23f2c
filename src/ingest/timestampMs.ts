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

/**
 * timestampMs(head + zone) without making that text: `head` is `YYYY-MM-DDTHH:MM:SS`, `zone` `Z`
 * or `±HH:MM` (how the byte parser keeps them, syslogTimestamp.ts).
 */
export function headZoneMs(head: string, zone: string): number {
  if (head.length !== 19 || head.charCodeAt(4) !== 45 || head.charCodeAt(7) !== 45 || head.charCodeAt(10) !== 84 || head.charCodeAt(13) !== 58 || head.charCodeAt(16) !== 58) return NaN;
  if (!sameDay(head) && !newDay(head)) return NaN;
  const h = d2(head, 11);
  const mi = d2(head, 14);
  const s = d2(head, 17);
  if (!(h <= 23 && mi <= 59 && s <= 60)) return NaN;
  const offset = zoneOffset(zone, 0, zone.length);
  return lastDayMs + ((h * 60 + mi) * 60 + s) * 1000 - offset;
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
