import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ThrottledLog } from '../src/throttledLog.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } });
  return { lines, logger };
}

describe('ThrottledLog', () => {
  it('writes the first lines of a window per reason and app, and counts the rest', () => {
    let now = 1_000;
    const { lines, logger } = capture();
    const log = new ThrottledLog(logger, { windowMs: 60_000, linesPerWindow: 3, now: () => now });
    for (let i = 0; i < 100; i++) log.warn('bad-dyno', 'app-a', { i }, 'bad dyno');
    for (let i = 0; i < 2; i++) log.warn('bad-dyno', 'app-b', { i }, 'bad dyno');
    log.warn('other-reason', 'app-a', {}, 'other');
    expect(lines.map((l) => `${l.reason}/${l.app}`)).toEqual([
      'bad-dyno/app-a', 'bad-dyno/app-a', 'bad-dyno/app-a', 'bad-dyno/app-b', 'bad-dyno/app-b', 'other-reason/app-a',
    ]);
    // The next window's first line carries the count of the last one.
    now += 60_000;
    log.warn('bad-dyno', 'app-a', { i: 100 }, 'bad dyno');
    expect(lines.at(-1)).toMatchObject({ reason: 'bad-dyno', app: 'app-a', i: 100, suppressed: 97 });
    log.flush();
  });

  it('writes the count in a summary line when the window ends with nothing after it', async () => {
    const { lines, logger } = capture();
    const log = new ThrottledLog(logger, { windowMs: 50, linesPerWindow: 1 });
    for (let i = 0; i < 10; i++) log.warn('refused', 'app-a', {}, 'drain refused');
    expect(lines).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 120));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ reason: 'refused', app: 'app-a', suppressed: 9, level: 40 });
    expect(String(lines[1]!.msg)).toContain('9 more like this suppressed: drain refused');
  });

  it('tracks a bounded number of apps: further apps share one count per reason', () => {
    const now = 0;
    const { lines, logger } = capture();
    const log = new ThrottledLog(logger, { windowMs: 60_000, linesPerWindow: 1, maxKeys: 10, now: () => now });
    for (let i = 0; i < 1000; i++) log.warn('refused', `app-${i}`, {}, 'drain refused');
    // Ten apps of their own, then one line for all the others; the rest is counted.
    expect(lines).toHaveLength(11);
    expect(lines.at(-1)).toMatchObject({ app: '*' });
    log.flush();
    expect(lines.at(-1)).toMatchObject({ app: '*', suppressed: 989 });
  });
});
