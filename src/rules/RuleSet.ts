/**
 * The compiled, frozen rules file as the rest of mallet sees it. The rules module builds it
 * (src/rules/load.ts); the drain reads `apps`, the action layer reads `limits` and `apps`.
 */
export interface AppEntry {
  readonly name: string;
  /** Drain tokens (`d.<uuid>`): pinned for HTTPS drains when non-empty, the map for syslog drains. */
  readonly drainTokens: readonly string[];
  /**
   * SHA-256 of the app's own drain password (`drain_password`), when it has one: then only that
   * password opens its drain, and `MALLET_DRAIN_PASSWORD` does not. The password itself is not kept.
   */
  readonly drainPasswordDigest?: Buffer;
  /** `${VAR}` reference (or literal) of the app's own Redis: stop keys and Sidekiq control. */
  readonly redisUrlRef?: string;
  /** `${VAR}` reference (or literal) of the app's Platform API token. */
  readonly herokuTokenRef?: string;
}

export interface Limits {
  readonly perApp: { readonly maxFirings: number; readonly withinMs: number };
  readonly perProcessType: { readonly concurrency: number };
  readonly flapping: { readonly maxFirings: number; readonly withinMs: number };
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  perApp: Object.freeze({ maxFirings: 6, withinMs: 10 * 60_000 }),
  perProcessType: Object.freeze({ concurrency: 1 }),
  flapping: Object.freeze({ maxFirings: 3, withinMs: 60 * 60_000 }),
});
