/**
 * What the dyno observer keeps, independent of where it came from: log-runtime-metrics lines
 * today, OTLP memory metrics on Fir later. A producer fills these and hands them to a DynoStore.
 */
export interface MemorySample {
  /** Dyno name (`web.1`, Fir `web-12a34b56d-e78f9`). */
  readonly dyno: string;
  /**
   * The instance: the uuid of `dyno=heroku.<app id>.<uuid>`, new on every restart or deploy; on
   * Fir the dyno name (`web-12a34b56d-e78f9`), which is new on every restart too.
   */
  readonly instance: string;
  /** Time of the sample (ms since epoch): the line's own timestamp, so replay agrees with live. */
  readonly at: number;
  /** The value trended (memory_total, MB). */
  readonly valueMb: number;
  /** The limit it is compared with (memory_quota, MB), when the sample carries one. */
  readonly limitMb?: number | undefined;
  readonly swapMb?: number | undefined;
}

/** `quota-restart`: the platform restarted the dyno at its memory limit (an `Error R15` line). */
export type LifecycleKind = 'start' | 'up' | 'crash' | 'exit' | 'cycling' | 'restart' | 'release' | 'remediation' | 'quota-restart';

export interface LifecycleEvent {
  readonly kind: LifecycleKind;
  /** Dyno name; '' for app-wide events (a release). */
  readonly dyno: string;
  readonly at: number;
  /** `v142` for a release, the exit status, `rule/action+action` for a remediation; short. */
  readonly detail: string;
}

export interface DynoBatch {
  readonly samples: readonly MemorySample[];
  readonly events: readonly LifecycleEvent[];
}
