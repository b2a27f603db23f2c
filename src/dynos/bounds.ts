/**
 * How much the dyno observer keeps per app: a hard bound, whatever the drain sends.
 *
 * Each instance's memory_total is a string of 2-byte slots (MB + 1, 0 = no sample): one slot a
 * minute for the instance's first 48 h, then one per 10 minutes up to 14 days of life (Heroku
 * cycles dynos daily, so the coarse tier is rarely used). The first sample of a slot wins, so a
 * retried line rewrites nothing. At most MAX_INSTANCES instances per app (the least recently
 * sampled go first) and none whose last sample is RETENTION older than the app's newest; at most
 * MAX_EVENTS lifecycle events over the same RETENTION.
 *
 * Worst case per app: 1000 × (4608 × 2 B + ~200 B meta) + 20000 × ~100 B ≈ 11.5 MB; README and
 * test/dynos/trendBound.test.ts state and measure it.
 */
export interface DynoBounds {
  readonly maxInstances: number;
  readonly fineSlots: number;
  readonly coarseStepMinutes: number;
  readonly coarseSlots: number;
  readonly retentionMs: number;
  readonly maxEvents: number;
  readonly maxMb: number;
}

export const DYNO_BOUNDS: DynoBounds = Object.freeze({
  maxInstances: 1000,
  fineSlots: 48 * 60,
  coarseStepMinutes: 10,
  coarseSlots: 12 * 24 * 6,
  retentionMs: 14 * 24 * 60 * 60 * 1000,
  maxEvents: 20_000,
  /** Largest value a slot holds (MB); bigger samples are clipped. */
  maxMb: 65_534,
});

/** The slot of a minute counted from the instance's first minute, or -1 past the last slot. */
export function slotOf(minute: number, base: number, b: DynoBounds = DYNO_BOUNDS): number {
  const m = minute - base;
  if (m < 0) return -1;
  if (m < b.fineSlots) return m;
  const s = b.fineSlots + Math.floor((m - b.fineSlots) / b.coarseStepMinutes);
  return s < b.fineSlots + b.coarseSlots ? s : -1;
}

/** The minute a slot stands for (the first of its span). */
export function minuteOfSlot(slot: number, base: number, b: DynoBounds = DYNO_BOUNDS): number {
  return slot < b.fineSlots ? base + slot : base + b.fineSlots + (slot - b.fineSlots) * b.coarseStepMinutes;
}

export const MINUTE_MS = 60_000;
