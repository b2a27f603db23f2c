import type { BodyPart } from '../bodyPart.js';

/** What the rules engine hands to the action layer when a rule fires. */
export interface Firing {
  /** Job id derived from (rule, app, target, window): equal for the same firing however often it is computed. */
  readonly id: string;
  readonly rule: string;
  readonly app: string;
  /** The resolved `target` template (default: the PROCID), e.g. `web.1`. */
  readonly target: string;
  /** The process type of the target (`web` for `web.1`), for rolling limits. */
  readonly processType: string;
  /** Identifies the threshold window that fired (ms timestamp of the firing as stored in Redis). */
  readonly window: string;
  /** When it fired (engine clock, ms since epoch). */
  readonly firedAt: number;
  /** Earliest `receivedAt` among the trigger lines, for the trigger-latency metric. */
  readonly receivedAt: number;
  /** The lines that made up the window, verbatim as `TIMESTAMP source[process]: message`, at most 20. */
  readonly triggerLines: readonly string[];
  /** The rule's actions with templates resolved and shapes validated; secrets only as `${VAR}` references. */
  readonly actions: readonly ResolvedAction[];
  /** The rule's `on_failure` escalation: run once when a step has failed for good. */
  readonly onFailure?: readonly ResolvedAction[];
  /** A predict rule's forecast: "web.1 reaches 512 MB in ~12 min at 41 MB/h". */
  readonly prediction?: string;
  /** Rule-level `dry_run: true` (the global `MALLET_DRY_RUN` is applied by the action layer). */
  readonly dryRun: boolean;
}

/**
 * Secrets never enter job data: a value the rules file wrote as `${NAME}` (webhook URLs, Redis
 * URLs, API tokens) is kept as that reference and expanded from the environment by the worker
 * when the step runs (see `expandEnv` in src/rules/env.ts).
 */
export type ResolvedAction =
  | StopKeyActionSpec
  | SidekiqStopActionSpec
  | HerokuRestartActionSpec
  | NotifyActionSpec;

export interface StopKeyActionSpec {
  readonly type: 'redis-stop-key';
  /** Validated against ^[A-Za-z0-9:._-]{1,200}$. */
  readonly key: string;
  readonly value: string;
  readonly ttlMs: number;
  /** `${VAR}` reference or literal URL of the app's Redis; undefined → mallet's own REDIS_URL. */
  readonly redisUrlRef?: string;
  /**
   * The dyno instance the stop is for (the uuid of `dyno=heroku.<app id>.<uuid>`), when the
   * firing line names it: written as ` instance=<uuid>` after the value, and a consumer that
   * knows its own id (HEROKU_DYNO_ID) leaves a key for another instance alone (src/rules/instance.ts).
   */
  readonly instance?: string;
  /** false: done once written (`watch: false`, a consumer that does not delete the key). */
  readonly watch?: false;
}

export interface SidekiqStopActionSpec {
  readonly type: 'sidekiq-stop';
  /** Sidekiq `info.hostname` to match (on Heroku `$DYNO`); validated as a dyno name. */
  readonly hostname: string;
  readonly tag?: string;
  /** redis-namespace prefix (Sidekiq 6), without the trailing `:`. */
  readonly namespace?: string;
  readonly quietTimeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly redisUrlRef?: string;
}

export interface HerokuRestartActionSpec {
  readonly type: 'heroku-restart';
  readonly app: string;
  readonly scope: 'dyno' | 'process-type';
  /** `web.1` or Fir `web-12a34b56d-e78f9` for scope dyno (SHAPES.dyno), `web` for process-type. */
  readonly dyno: string;
  /** `${VAR}` reference for the Platform API token; undefined → HEROKU_API_TOKEN. */
  readonly tokenRef?: string;
}

export interface NotifyActionSpec {
  readonly type: 'notify';
  /** `${VAR}` reference or literal URL. */
  readonly urlRef: string;
  /** Slack-compatible `text`, already rendered. */
  readonly text: string;
}

/** Why a match did or did not become a job (SPEC §7 `mallet_firings_total{outcome}`). */
export type FiringOutcome = 'enqueued' | 'cooldown' | 'grace' | 'held' | 'flapping' | 'rejected' | 'dry_run' | 'duplicate' | 'silenced';

/** Every outcome, in the order the console shows them. */
export const FIRING_OUTCOMES: readonly FiringOutcome[] = ['enqueued', 'held', 'flapping', 'silenced', 'dry_run', 'cooldown', 'grace', 'duplicate', 'rejected'];

/**
 * A body's firings admitted in its body script's round trip (src/actions/bodyAdmission.ts): for
 * each firing its votes may make (rule, app, target and a vote's own line's time as the window),
 * the part that admits it if a vote fires it, and `read` told that part's reply.
 */
export interface FiringAdmission {
  part(firing: { readonly rule: string; readonly app: string; readonly target: string; readonly window: number; readonly dryRun: boolean }): { readonly part: BodyPart; read(reply: unknown): void };
}

/** The one interface between rules and actions. Resolves once every firing is durably stored. */
export interface FiringSink {
  /** `admission`: the body's, from admission() (firings it admitted are not admitted again). */
  submit(firings: readonly Firing[], admission?: FiringAdmission): Promise<readonly FiringOutcome[]>;
  /**
   * A body's admission, asked before its script; undefined when the sink cannot decide it there
   * (then submit admits every firing itself).
   */
  admission?(): FiringAdmission | undefined;
}
