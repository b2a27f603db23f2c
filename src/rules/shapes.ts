import { HEROKU_APP_NAME } from '../herokuAppName.js';

/**
 * Shapes a rendered value must have before it is used as a Redis key, a dyno name or a URL path
 * segment (SPEC §4). Values come from attacker-controlled log lines; anything else is rejected.
 */
export const SHAPES = Object.freeze({
  redisKey: /^[A-Za-z0-9:._-]{1,200}$/,
  dyno: /^[a-z][a-z0-9_]*\.[0-9]+$/,
  processType: /^[a-z][a-z0-9_]*$/,
  /** A Heroku app name as it appears in a Platform API path. */
  appName: HEROKU_APP_NAME,
  /** Rule names double as metric labels and key parts. */
  ruleName: /^[a-z0-9-]+$/,
});

export type ShapeName = keyof typeof SHAPES;

export function hasShape(shape: ShapeName, value: string): boolean {
  return SHAPES[shape].test(value);
}

/** The part of a dyno name before the first `.` (`web` for `web.1`). */
export function processTypeOf(target: string): string {
  const dot = target.indexOf('.');
  return dot === -1 ? target : target.slice(0, dot);
}

/** A rejected value for a log line: JSON-escaped and cut, so it cannot forge log records. */
export function describeValue(value: string, max = 80): string {
  const cut = value.length > max ? value.slice(0, max) + `…(${value.length} chars)` : value;
  return JSON.stringify(cut);
}
