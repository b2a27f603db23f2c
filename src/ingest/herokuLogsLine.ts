import type { DrainEvent } from './DrainEvent.js';

/** `TIMESTAMP source[process]: message`, as `heroku logs` prints it (and mallet's trigger lines). */
const HEROKU_LOGS = /^(\S+) ([A-Za-z0-9_.-]+)\[([^\]\s]+)\]: ?(.*)$/s;

/**
 * One `heroku logs` line as the event the drain would have made of it (`mallet replay`, and
 * `mallet explain --line`); received at the line's own time. undefined: not such a line.
 */
export function fromHerokuLogsLine(line: string, app: string, id: string): DrainEvent | undefined {
  const m = HEROKU_LOGS.exec(line.endsWith('\r') ? line.slice(0, -1) : line);
  if (!m) return undefined;
  const at = Date.parse(m[1]!);
  return { app, id, receivedAt: Number.isFinite(at) ? at : 0, timestamp: m[1]!, source: m[2]!, process: m[3]!, message: m[4]! };
}
