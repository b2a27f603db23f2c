import { describe, expect, it } from 'vitest';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';

const body = (lines: string[]) => Buffer.from(lines.map((l) => `${Buffer.byteLength(l)} ${l}`).join(''));

describe('drainEvents', () => {
  const { messages } = parseLogplexBody(body([
    '<45>1 2024-01-01T00:00:00+00:00 host heroku web.1 - Error R14 (Memory quota exceeded)',
    '<190>1 2024-01-01T00:00:01.5+00:00 host app worker.2 - hello',
  ]));

  it('gives each line the batch fields, the header fields and byte tests', () => {
    const [a, b] = drainEvents({ app: 'shop', drainToken: 'd.t', frameId: 'f1', dedupe: true, receivedAt: 42, messages });
    expect([a!.app, a!.id, a!.receivedAt, a!.source, a!.process, a!.message]).toEqual(['shop', 'd.t:f1:1', 42, 'heroku', 'web.1', 'Error R14 (Memory quota exceeded)']);
    expect([b!.id, b!.source, b!.process, b!.timestamp]).toEqual(['d.t:f1:0', 'app', 'worker.2', '2024-01-01T00:00:01.5+00:00']);
    expect(a!.messageStartsWith!(Buffer.from('Error R14'))).toBe(true);
    expect(a!.messageIncludes!(Buffer.from('quota'))).toBe(true);
    expect(b!.messageIncludes!(Buffer.from('quota'))).toBe(false);
  });

  it('the same messages in a second batch are that batch\'s events; the first batch\'s keep theirs', () => {
    const first = drainEvents({ app: 'shop', drainToken: 'd.t', frameId: 'f1', dedupe: true, receivedAt: 1, messages });
    const second = drainEvents({ app: 'other', drainToken: 'd.u', frameId: 'f2', dedupe: true, receivedAt: 2, messages });
    expect(first.map((e) => [e.app, e.id, e.receivedAt])).toEqual([['shop', 'd.t:f1:1', 1], ['shop', 'd.t:f1:0', 1]]);
    expect(second.map((e) => [e.app, e.id, e.receivedAt])).toEqual([['other', 'd.u:f2:1', 2], ['other', 'd.u:f2:0', 2]]);
  });
});
