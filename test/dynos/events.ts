import type { DrainEvent } from '../../src/ingest/DrainEvent.js';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { frame } from '../support/drainClient.js';

const HEROKU_LOGS = /^(\S+) ([A-Za-z0-9_.-]+)\[([^\]\s]+)\]: ?(.*)$/s;

/** `heroku logs` lines as the drain would deliver them: one logplex body, the pipeline's events. */
export function herokuLogsBody(lines: readonly string[]): Buffer {
  return frame(...lines.map((l) => {
    const m = HEROKU_LOGS.exec(l);
    if (!m) throw new Error(`not a heroku logs line: ${l}`);
    return `<134>1 ${m[1]} host ${m[2]} ${m[3]} - ${m[4]}\n`;
  }));
}

export function eventsOf(lines: readonly string[], app = 'acme-shop'): DrainEvent[] {
  return drainEvents({ app, drainToken: 'd.t', frameId: 'f', dedupe: true, receivedAt: 0, messages: parseLogplexBody(herokuLogsBody(lines)).messages });
}

export const UUID_A = '4b88c98d-6243-4194-af49-8db9b53be371';
export const UUID_B = 'cd817c77-4f8e-4e68-b42a-3dea4e04d99c';

/** A runtime-metrics memory line of `dyno` instance `uuid` at `at`. */
export function memoryLine(at: number, dyno: string, uuid: string, mb: number, quota = 512): string {
  return `${new Date(at).toISOString()} heroku[${dyno}]: source=${dyno} dyno=heroku.54241834.${uuid} sample#memory_total=${mb.toFixed(2)}MB sample#memory_rss=${mb.toFixed(2)}MB sample#memory_cache=0.00MB sample#memory_swap=0.00MB sample#memory_pgpgin=1pages sample#memory_pgpgout=1pages sample#memory_quota=${quota.toFixed(2)}MB`;
}
