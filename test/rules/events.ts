import type { DrainEvent } from '../../src/ingest/DrainEvent.js';

let seq = 0;

/** A drain event built from `heroku logs` parts; ids unique unless given. */
export function event(source: string, process: string, message: string, opts: { app?: string; id?: string; at?: number } = {}): DrainEvent {
  const at = opts.at ?? 1_700_000_000_000;
  return {
    app: opts.app ?? 'acme-shop',
    id: opts.id ?? `d.test:frame:${++seq}`,
    receivedAt: at,
    timestamp: new Date(at).toISOString().replace('Z', '+00:00'),
    source,
    process,
    message,
  };
}

/** Parses a line of the vendored samples (`<PRI>1 TS host APP PROC - TEXT`) into an event. */
export function eventFromSample(line: string, app = 'acme-shop'): DrainEvent {
  const m = /^<\d+>1 (\S+) \S+ (\S+) (\S+) - ?(.*)$/s.exec(line);
  if (!m) throw new Error(`not a sample line: ${line.slice(0, 80)}`);
  return { ...event(m[2]!, m[3]!, m[4]!, { app }), timestamp: m[1]! };
}
