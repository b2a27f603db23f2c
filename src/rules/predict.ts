import { parseDuration } from './duration.js';
import { readQuantity } from './fieldCondition.js';
import type { YamlPath } from './yamlPositions.js';
import type { Report } from './compile.js';

/**
 * `predict:` — a rule condition that fires before the limit is reached: the least-squares line
 * through one dyno instance's samples of `value` over the last `over` reaches `reaches` within
 * `within`. `reaches` is either a percentage of another field of the same line
 * (`100% sample#memory_quota`: the quota the platform reports with each sample) or an absolute
 * memory size (`512MB`, `1GB`). Only memory quantities are predicted: that is what R14 is about,
 * and the firing's text says MB and MB/h.
 */
export interface PredictCondition {
  /** The logfmt field whose samples are fitted, e.g. `sample#memory_total`. */
  readonly value: string;
  /** The limit: `percent` of field `of` in the same line, or an absolute number of MB. */
  readonly reaches: { readonly kind: 'percent'; readonly percent: number; readonly of: string } | { readonly kind: 'absolute'; readonly mb: number };
  readonly withinMs: number;
  readonly overMs: number;
  readonly minSamples: number;
}

export const PREDICT_DEFAULTS = Object.freeze({ minSamples: 10 });

/**
 * What one instance's series may hold and cost: at most `maxPoints` samples (the newest within
 * `over`), so the state is bounded and one sample's fit is bounded work whatever the rate.
 */
export const PREDICT_BOUNDS = Object.freeze({
  maxPoints: 360,
  minSamples: 3,
  maxOverMs: 6 * 3_600_000,
  minOverMs: 60_000,
  maxWithinMs: 7 * 86_400_000,
  minWithinMs: 1000,
  /**
   * Slower is flat: Heroku reports memory to 0.01 MB, and 0.1 MB/h is 17 MB in the longest
   * `within` (7d). Without it, rounding in the fit of a series flat at the quota could "rise".
   */
  minSlopeMbPerHour: 0.1,
  /**
   * The fit's running sums carry rounding from their additions and subtractions, so samples
   * whose times are all equal need not leave a spread of exactly 0: below this share of n·Σx²
   * the spread is taken as none (no slope). Real series, 20 s apart in a window of minutes,
   * are many orders of magnitude above it.
   */
  spreadFloor: 1e-9,
});

export interface RawPredict {
  readonly value: string;
  readonly reaches: string;
  readonly within: string;
  readonly over: string;
  readonly min_samples?: number | undefined;
}

const FIELD = /^[A-Za-z0-9_#.-]{1,100}$/;
const PERCENT = /^(\d{1,4}(?:\.\d{1,4})?)%\s+([A-Za-z0-9_#.-]{1,100})$/;
const ABSOLUTE = /^(\d{1,9}(?:\.\d{1,6})?)\s*(MB|GB)$/;

export const REACHES_HELP = 'expected a percentage of a field of the same line ("100% sample#memory_quota") or a memory size ("512MB", "1.5GB")';

/** Checks `predict:` beyond its shape (durations and types are the schema's); reports at each key. */
export function compilePredict(raw: Partial<RawPredict>, at: YamlPath, bad: Report): PredictCondition | undefined {
  // A part the schema refused is absent here and already reported: the rest is still checked.
  let ok = raw.value !== undefined && raw.reaches !== undefined && raw.within !== undefined && raw.over !== undefined;
  const fail = (key: string, message: string) => { ok = false; bad([...at, key], message); };
  if (raw.value !== undefined && !FIELD.test(raw.value)) fail('value', 'value: expected a logfmt field name like sample#memory_total');
  let reaches: PredictCondition['reaches'] | undefined;
  const text = (raw.reaches ?? '').trim();
  const pct = PERCENT.exec(text);
  const abs = ABSOLUTE.exec(text);
  if (pct) {
    const percent = Number(pct[1]);
    if (percent <= 0 || percent > 1000) fail('reaches', 'reaches: the percentage must be above 0% and at most 1000%');
    else if (pct[2] === raw.value) fail('reaches', `reaches: a percentage of ${raw.value} itself is never reached by growing; name the limit's field (e.g. sample#memory_quota)`);
    else reaches = { kind: 'percent', percent, of: pct[2]! };
  } else if (abs) {
    const mb = Number(abs[1]) * (abs[2] === 'GB' ? 1024 : 1);
    if (mb <= 0) fail('reaches', 'reaches: the size must be above 0MB');
    else reaches = { kind: 'absolute', mb };
  } else if (raw.reaches !== undefined) {
    fail('reaches', `bad reaches ${JSON.stringify(raw.reaches)}: ${REACHES_HELP}`);
  }
  const withinMs = parseDuration(raw.within ?? '') ?? 0;
  const overMs = parseDuration(raw.over ?? '') ?? 0;
  const B = PREDICT_BOUNDS;
  if (raw.within !== undefined && (withinMs < B.minWithinMs || withinMs > B.maxWithinMs)) fail('within', 'within must be between 1s and 7d');
  if (raw.over !== undefined && (overMs < B.minOverMs || overMs > B.maxOverMs)) fail('over', 'over must be between 1m and 6h (the samples the line is fitted to)');
  const minSamples = raw.min_samples ?? PREDICT_DEFAULTS.minSamples;
  if (minSamples < B.minSamples || minSamples > B.maxPoints) fail('min_samples', `min_samples must be between ${B.minSamples} and ${B.maxPoints} (a line through two points always fits)`);
  if (!ok || !reaches) return undefined;
  return Object.freeze({ value: raw.value!, reaches: Object.freeze(reaches), withinMs, overMs, minSamples });
}

/** The sample and the limit a matched line gives, in MB; undefined when the line lacks either. */
export function readSample(p: PredictCondition, fields: ReadonlyMap<string, string>): { value: number; limit: number } | undefined {
  const v = fields.get(p.value);
  const q = v === undefined ? undefined : readQuantity(v);
  if (q?.dim !== 'memory' || !Number.isFinite(q.n)) return undefined;
  if (p.reaches.kind === 'absolute') return { value: q.n, limit: p.reaches.mb };
  const o = fields.get(p.reaches.of);
  const lim = o === undefined ? undefined : readQuantity(o);
  if (lim?.dim !== 'memory' || !(lim.n > 0)) return undefined;
  return { value: q.n, limit: (lim.n * p.reaches.percent) / 100 };
}

function mb(n: number): string {
  return n >= 100 ? `${Math.round(n)} MB` : `${Math.round(n * 10) / 10} MB`;
}

/** "web.1 reaches 512 MB in ~12 min at 41 MB/h": the sentence a predictive firing carries. */
export function predictionText(dyno: string, limitMb: number, etaMs: number, slopeMbPerHour: number): string {
  const min = Math.round(etaMs / 60_000);
  const when = etaMs <= 0 ? 'now' : min < 1 ? 'in <1 min' : min < 120 ? `in ~${min} min` : `in ~${Math.round(min / 6) / 10} h`;
  const rate = slopeMbPerHour >= 10 ? Math.round(slopeMbPerHour) : Math.round(slopeMbPerHour * 10) / 10;
  return `${dyno} reaches ${mb(limitMb)} ${when} at ${rate} MB/h`;
}
