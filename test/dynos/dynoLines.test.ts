import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readDynoLine, wantsDynoLine } from '../../src/dynos/dynoLines.js';
import { eventsOf } from './events.js';

/** Each fixture line, through the same drain parse as live, read as the fixture says. */
const fixtures = readFileSync(new URL('../fixtures/dyno-lines.txt', import.meta.url), 'utf8')
  .split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split('\t') as [string, string]);

function describeRead(line: string): string {
  const [e] = eventsOf([line]);
  if (!wantsDynoLine(e!)) return '-';
  const r = readDynoLine(e!);
  if (!r) return '-';
  if ('sample' in r) {
    const s = r.sample;
    return `sample ${s.dyno} ${s.instance} ${s.valueMb} ${s.limitMb ?? '-'} ${s.swapMb ?? '-'}`;
  }
  return `${r.event.kind} ${r.event.dyno} ${r.event.detail}`.trimEnd();
}

describe('dyno lines from the fixtures', () => {
  it.each(fixtures)('%s', (line, expected) => {
    expect(describeRead(line)).toBe(expected);
  });

  it('read the line timestamp, not the arrival time', () => {
    const [e] = eventsOf(['2024-11-14T09:18:44.206831+00:00 heroku[web.2]: Cycling']);
    const r = readDynoLine(e!);
    expect(r && 'event' in r ? r.event.at : 0).toBe(Date.parse('2024-11-14T09:18:44.206Z'));
  });

  it('the prefilter turns down router lines and app output without reading the message', () => {
    const [router, app] = eventsOf([
      '2024-01-01T00:00:00+00:00 heroku[router]: at=info method=GET path=/ dyno=web.1',
      '2024-01-01T00:00:00+00:00 app[web.1]: source=web.1 sample#memory_total=1MB',
    ]);
    for (const e of [router!, app!]) {
      const spy = Object.create(e, { message: { get() { throw new Error('decoded'); } } });
      expect(wantsDynoLine(spy)).toBe(false);
    }
  });
});
