import { createHash } from 'node:crypto';

/**
 * Every Redis key mallet writes to its own Redis is built here (BullMQ's own keys excepted: it
 * builds them under `queuePrefix`). Parts that can come from a log line or a request are passed
 * through `part()`: a safe short value is kept readable, anything else is hashed, so no input can
 * choose another key or smuggle a glob, CR/LF or a huge string into one.
 */
const SAFE_PART = /^[A-Za-z0-9._-]{1,64}$/;

export function part(value: string): string {
  return SAFE_PART.test(value) ? value : 'h~' + createHash('sha1').update(value).digest('hex');
}

export interface RedisKeys {
  /** Set once a delivery (app, drain token, frame id) has been processed; retries are skipped. */
  frameDone(app: string, drainToken: string, frameId: string): string;
  /**
   * The threshold state of rule+app+target: `window` sorted set of event ids (score = event
   * time), `lines` hash event id → trigger line (last 20 kept), `firedBy` hash event id → firing
   * window (a retried event that fired returns the same firing), `cooldown` present while it cools
   * down (value = the window that fired).
   */
  threshold(rule: string, app: string, target: string): { window: string; lines: string; firedBy: string; cooldown: string };
  /** Sorted set of recent firings of an app (storm guard). */
  stormGuard(app: string): string;
  /** Sorted set of recent firings of app+target by any rule (flapping: the same target keeps firing). */
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
  admission(firingId: string): string;
  /** Last `RateLimit-Remaining` the Platform API reported for a token (per token hash). */
  herokuRemaining(tokenHash: string): string;
  /**
   * The dyno observer's state of an app (src/dynos): `instances` sorted set of memory-series keys
   * by their last sample time, `meta` hash series key → instance JSON, `events` sorted set of
   * lifecycle events by their time.
   */
  dynos(app: string): { instances: string; meta: string; events: string };
  /** One instance's memory series (a string of 2-byte slots, see src/dynos/bounds.ts). */
  memorySeries(app: string, instance: string): string;
}

export function redisKeys(prefix: string): RedisKeys {
  const k = (...parts: string[]) => [prefix, ...parts].join(':');
  return Object.freeze({
    frameDone: (app: string, token: string, frameId: string) => k('frame', part(app), part(token), part(frameId)),
    threshold: (rule: string, app: string, target: string) => {
      const id = [part(rule), part(app), part(target)];
      return { window: k('win', ...id), lines: k('winlines', ...id), firedBy: k('fired', ...id), cooldown: k('cool', ...id) };
    },
    stormGuard: (app: string) => k('storm', part(app)),
    flapping: (app: string, target: string) => k('flap', part(app), part(target)),
    rolling: (app: string, processType: string) => k('roll', part(app), part(processType)),
    herokuBudget: (tokenHash: string) => k('heroku-budget', part(tokenHash)),
    jobSteps: (jobId: string) => k('steps', part(jobId)),
    alertNonce: (provider: string, nonce: string) => k('nonce', part(provider), part(nonce)),
    admission: (firingId: string) => k('admit', part(firingId)),
    herokuRemaining: (tokenHash: string) => k('heroku-remaining', part(tokenHash)),
    dynos: (app: string) => ({ instances: k('dyn-inst', part(app)), meta: k('dyn-meta', part(app)), events: k('dyn-ev', part(app)) }),
    memorySeries: (app: string, instance: string) => k('dyn-mem', part(app), part(instance)),
  });
}

/** The BullMQ queue every firing goes to (SPEC §5). */
export const ACTION_QUEUE = 'mallet-actions';
