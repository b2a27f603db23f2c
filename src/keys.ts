import { createHash } from 'node:crypto';
import { restartStableTarget } from './rules/shapes.js';

/**
 * Every Redis key mallet writes to its own Redis is built here (BullMQ's own keys excepted: it
 * builds them under `queuePrefix`). Parts that can come from a log line or a request are passed
 * through `part()`: a safe short value is kept readable, anything else is hashed, so no input can
 * choose another key or smuggle a glob, CR/LF or a huge string into one.
 *
 * Redis Cluster: a Lua script, a MULTI and an ioredis pipeline may only touch keys of one hash
 * slot, so every key carries a hash tag (`{…}`) naming what it belongs to. Everything of one app —
 * the recent frames of its drains, its target budget, the threshold keys of all its rules and targets, its storm guard, flapping
 * and rolling sets, the admission of its firings — is tagged `{app}`: a drain body is one app, so
 * its whole threshold pipeline and each admitFiring call stay in one slot, and apps spread over
 * the cluster. A job's step records share the slot of the BullMQ queue (tag of the queue prefix,
 * e.g. `{bull}`), because claimStep reads the job's BullMQ lock in the same script. The two keys
 * of a Platform API token's budget are tagged by the token hash. `prefix` must hold no `{` or `}`
 * (config rejects them), or its tag would pull every key into one slot.
 */
const SAFE_PART = /^[A-Za-z0-9._-]{1,64}$/;

export function part(value: string): string {
  return SAFE_PART.test(value) ? value : 'h~' + createHash('sha1').update(value).digest('hex');
}

export interface RedisKeys {
  /**
   * Sorted set of the frame ids a drain (app + drain token) delivered lately (score = when
   * processed), so retries are skipped; trimmed to a fixed size (src/server/recentFrames.ts).
   */
  recentFrames(app: string, drainToken: string): string;
  /**
   * The threshold state of rule+app+target: `window` sorted set of event ids (score = event
   * time), `lines` hash event id → trigger line (last 20 kept), `firedBy` hash event id → firing
   * window (a retried event that fired returns the same firing), `cooldown` present while it cools
   * down (value = the window that fired; per process type for Fir dyno names); and the history's `spell` hash (the record a burst of
   * matches in one cooldown or held/flapping spell is folded into, with its count) and `seen`
   * HyperLogLog (the event ids already counted in the current cooldown spell, so a retry adds nothing).
   */
  threshold(rule: string, app: string, target: string): ThresholdKeySet;
  /** Sorted set of the targets an app has in play (target → last seen): the per-app work budget. */
  appTargets(app: string): string;
  /** Sorted set of recent firings of an app (storm guard). */
  stormGuard(app: string): string;
  /** Sorted set of recent firings of app+target by any rule (flapping: the same target keeps firing; Fir dynos by process type). */
  flapping(app: string, target: string): string;
  /** Set of job ids holding a rolling slot for app + process type. */
  rolling(app: string, processType: string): string;
  /** Shared Heroku Platform API budget (per token hash). */
  herokuBudget(tokenHash: string): string;
  /** Steps of a job that have succeeded (hash step index → result), so retries skip them. */
  jobSteps(jobId: string): string;
  /** A webhook nonce already seen (Logentries `X-Le-Nonce`), so a replayed alert is refused. */
  alertNonce(provider: string, nonce: string): string;
  /** The mode the action layer decided for a firing id, so a retried submit neither counts twice
   * against the limits nor decides differently. */
  admission(app: string, firingId: string): string;
  /** The firing history of an app: one capped stream per app, in the app's hash slot (src/console/history.ts). */
  history(app: string): string;
  /** Firings and matches of an app per rule and outcome in one 10-minute bucket (bucket = ms / 600000). */
  stats(app: string, bucket: number): string;
  /** The apps that have a history (a set, read by the console to merge their streams). */
  historyApps(): string;
  /** Hash silence id → silence JSON; each carries its own end, the hash lives until the last one ends (src/console/silenceStore.ts). */
  silences(): string;
  /** Last `RateLimit-Remaining` the Platform API reported for a token (per token hash). */
  herokuRemaining(tokenHash: string): string;
  /**
   * The dyno observer's state of an app (src/dynos): `instances` sorted set of memory-series keys
   * by their last sample time, `meta` hash series key → instance JSON, `events` sorted set of
   * lifecycle events by their time.
   */
  dynos(app: string): { instances: string; meta: string; events: string };
  /**
   * The rules' view of an app's lifecycle (src/dynos/instanceLife.ts): `life` hash of releases and,
   * per dyno name, recent starts and instances; `index` sorted set dyno -> newest time (the bound).
   */
  dynoLife(app: string): { life: string; index: string };
  /** One instance's memory series (a string of 2-byte slots, see src/dynos/bounds.ts). */
  memorySeries(app: string, instance: string): string;
  /**
   * The jobs Sidekiq processes of an app were running when a sidekiq-stop quieted them
   * (src/dynos/SuspectStore.ts): `index` sorted set snapshot id → when, `snapshots` hash
   * snapshot id → JSON (class, queue, run time of each job; never arguments).
   */
  suspects(app: string): { index: string; snapshots: string };
  /**
   * A predict rule's state of rule+app+target (src/rules/predictScript.ts): the `points` sorted
   * set of `<instance>/<event id>\0<MB, time, instance length>` (score = sample time; at most
   * 360) and the `state` hash (the answer each sample got, each instance's running sums, and the
   * last answer, read by `mallet explain`). The keys were renamed when the fit became running
   * sums (and once before, when the value moved into the member): a series restarts once after
   * such an upgrade.
   */
  predict(rule: string, app: string, target: string): PredictKeySet;
}

export interface PredictKeySet {
  readonly points: string;
  readonly state: string;
}

export interface ThresholdKeySet {
  readonly window: string;
  readonly lines: string;
  readonly firedBy: string;
  readonly cooldown: string;
  readonly spell: string;
  readonly seen: string;
  /** HyperLogLog: event ids counted in the current grace spell (as `seen` for a cooldown spell). */
  readonly graceSeen: string;
}

/**
 * The hash tag Redis Cluster hashes a key by: the text between the first `{` and the next `}`,
 * when not empty; else the whole key.
 */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}

export function redisKeys(prefix: string, queuePrefix = 'bull'): RedisKeys {
  const k = (...parts: string[]) => {
    let key = prefix;
    for (let i = 0; i < parts.length; i++) key += `:${parts[i]!}`;
    return key;
  };
  // A drain body is one app: its keys are built many times in a row with the same tag.
  let lastTagged = '';
  let lastTag = `{${part('')}}`;
  const tag = (value: string) => {
    if (value !== lastTagged) {
      lastTag = `{${part(value)}}`;
      lastTagged = value;
    }
    return lastTag;
  };
  // A drain body's votes and predictions ask for the keys of the same few rule+app+target sets
  // body after body: built once and handed out again, the same strings each time (already flat,
  // their hash computed, which the body script's encoding needs: bodyScript.ts), not seven
  // concatenations and three part() tests per vote. Targets come from log lines: bounded.
  const thresholds = new Memo<ThresholdKeySet>();
  const predicts = new Memo<PredictKeySet>();
  const histories = new Memo<string>();
  // Not part(): the queue prefix is configuration, and the tag must be the very one BullMQ's keys hash by.
  const queueTag = `{${hashTag(queuePrefix)}}`;
  const thresholdKeys = (rule: string, app: string, target: string): ThresholdKeySet => {
    const id = [tag(app), part(rule), part(target)];
    // A Fir dyno gets a new name when restarted: its cooldown is its process type's, or the
    // restart would let the replacement fire again at once.
    const cooling = [tag(app), part(rule), part(restartStableTarget(target))];
    return Object.freeze({
      window: k('win', ...id), lines: k('winlines', ...id), firedBy: k('fired', ...id), cooldown: k('cool', ...cooling),
      spell: k('hspell', ...id), seen: k('hseen', ...id), graceSeen: k('hgrace', ...id),
    });
  };
  return Object.freeze({
    recentFrames: (app: string, token: string) => k('frames', tag(app), part(token)),
    threshold: (rule: string, app: string, target: string) => thresholds.get(rule, app, target) ?? thresholds.set(rule, app, target, thresholdKeys(rule, app, target)),
    appTargets: (app: string) => k('targets', tag(app)),
    stormGuard: (app: string) => k('storm', tag(app)),
    // Same reason: a restarted Fir dyno (new name) that keeps failing is still the same target.
    flapping: (app: string, target: string) => k('flap', tag(app), part(restartStableTarget(target))),
    rolling: (app: string, processType: string) => k('roll', tag(app), part(processType)),
    herokuBudget: (tokenHash: string) => k('heroku-budget', tag(tokenHash)),
    jobSteps: (jobId: string) => k('steps', queueTag, part(jobId)),
    alertNonce: (provider: string, nonce: string) => k('nonce', part(provider), part(nonce)),
    admission: (app: string, firingId: string) => k('admit', tag(app), part(firingId)),
    herokuRemaining: (tokenHash: string) => k('heroku-remaining', tag(tokenHash)),
    dynos: (app: string) => ({ instances: k('dyn-inst', tag(app)), meta: k('dyn-meta', tag(app)), events: k('dyn-ev', tag(app)) }),
    dynoLife: (app: string) => ({ life: k('dyn-life', tag(app)), index: k('dyn-lidx', tag(app)) }),
    memorySeries: (app: string, instance: string) => k('dyn-mem', tag(app), part(instance)),
    predict: (rule: string, app: string, target: string) => predicts.get(rule, app, target) ?? predicts.set(rule, app, target, Object.freeze({
      points: k('predser', tag(app), part(rule), part(target)),
      state: k('predfit', tag(app), part(rule), part(target)),
    })),
    suspects: (app: string) => ({ index: k('sus-idx', tag(app)), snapshots: k('sus-snap', tag(app)) }),
    history: (app: string) => histories.get('history', app, '') ?? histories.set('history', app, '', k('history', tag(app))),
    stats: (app: string, bucket: number) => {
      const b = String(Math.trunc(bucket));
      return histories.get('stats', app, b) ?? histories.set('stats', app, b, k('stats', tag(app), b));
    },
    historyApps: () => k('history-apps'),
    silences: () => k('silences'),
  });
}

/** The BullMQ queue every firing goes to (SPEC §5). */
export const ACTION_QUEUE = 'mallet-actions';

/**
 * Built keys by three of their inputs, at most MEMO_ENTRIES of them: a memo that fills up is
 * emptied and fills again (a flood of new targets only costs the building it would have cost).
 */
const MEMO_ENTRIES = 4096;

class Memo<T> {
  #byA = new Map<string, Map<string, Map<string, T>>>();
  #size = 0;

  get(a: string, b: string, c: string): T | undefined {
    return this.#byA.get(a)?.get(b)?.get(c);
  }

  set(a: string, b: string, c: string, value: T): T {
    if (this.#size >= MEMO_ENTRIES) {
      this.#byA = new Map();
      this.#size = 0;
    }
    let byB = this.#byA.get(a);
    if (byB === undefined) this.#byA.set(a, (byB = new Map()));
    let byC = byB.get(b);
    if (byC === undefined) byB.set(b, (byC = new Map()));
    byC.set(c, value);
    this.#size++;
    return value;
  }
}
