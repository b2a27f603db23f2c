import { HEROKU_APP_NAME } from '../herokuAppName.js';

/**
 * Shapes a rendered value must have before it is used as a Redis key, a dyno name or a URL path
 * segment (SPEC §4). Values come from attacker-controlled log lines; anything else is rejected.
 */
export const SHAPES = Object.freeze({
  redisKey: /^[A-Za-z0-9:._-]{1,200}$/,
  /**
   * Cedar `web.1`; Fir `web-12a34b56d-e78f9` (a Kubernetes pod name: process type, replica-set
   * hash, 5 characters) and the dot form `web.4ed720fa31-ur8z1` seen in Heroku's CLI fixtures
   * (../shared/docs/heroku-fir-telemetry.md §3). A Fir process type may itself contain `-`.
   */
  dyno: /^(?:[a-z][a-z0-9_]*\.[0-9]+|[a-z][a-z0-9_-]{0,62}-[0-9a-z]{1,20}-[0-9a-z]{5}|[a-z][a-z0-9_-]{0,62}\.[0-9a-z]{1,20}-[0-9a-z]{5})$/,
  processType: /^[a-z](?:[a-z0-9_-]{0,62}[a-z0-9_])?$/,
  /** A Heroku app name as it appears in a Platform API path. */
  appName: HEROKU_APP_NAME,
  /** Rule names double as metric labels and key parts. */
  ruleName: /^[a-z0-9-]+$/,
});

export type ShapeName = keyof typeof SHAPES;

export function hasShape(shape: ShapeName, value: string): boolean {
  return SHAPES[shape].test(value);
}

const FIR_DYNO = /^([a-z][a-z0-9_-]{0,62})-[0-9a-z]{1,20}-[0-9a-z]{5}$/;

/**
 * The process type of a dyno name: the part before the first `.` (`web` for `web.1` and for the
 * dot form `web.4ed720fa31-ur8z1`), or a Fir name without its last two `-` parts (`web` for
 * `web-12a34b56d-e78f9`, `node-worker` for `node-worker-5d9c8b7f6-q2x4z`). Anything else is
 * returned as is (a target that is already a process type).
 */
export function processTypeOf(target: string): string {
  const dot = target.indexOf('.');
  if (dot !== -1) return target.slice(0, dot);
  const fir = FIR_DYNO.exec(target);
  return fir ? fir[1]! : target;
}

/**
 * Whether a dyno name changes on restart (Fir: a new pod name), so state that must outlive a
 * restart (cooldowns, flapping) is keyed by app + process type instead of the name.
 */
export function isFirDyno(target: string): boolean {
  return FIR_DYNO.test(target) || /^[a-z][a-z0-9_-]{0,62}\.[0-9a-z]{1,20}-[0-9a-z]{5}$/.test(target);
}

/** The part of a target that outlives a restart: Fir dynos by process type, the rest as is. */
export function restartStableTarget(target: string): string {
  return isFirDyno(target) ? `type~${processTypeOf(target)}` : target;
}

/** A rejected value for a log line: JSON-escaped and cut, so it cannot forge log records. */
export function describeValue(value: string, max = 80): string {
  const cut = value.length > max ? value.slice(0, max) + `…(${value.length} chars)` : value;
  return JSON.stringify(cut);
}
