import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseLogplexBody } from '../../src/ingest/logplexFrames.js';
import { drainEvents } from '../../src/ingest/drainEvents.js';
import { LINE_API, LINE_APP, LINE_OTHER, LINE_PLATFORM, LINE_ROUTER, lineClassOf } from '../../src/ingest/lineClass.js';

const frame = (app: string, proc: string) => {
  const msg = `<40>1 2024-11-14T00:00:00.123+00:00 host ${app} ${proc} - text`;
  return `${Buffer.byteLength(msg)} ${msg}`;
};

describe('line classes', () => {
  it('the parser decides from the bytes what lineClassOf decides from the strings', () => {
    const name = fc.constantFrom('heroku', 'app', 'router', 'api', 'herokU', 'heroku2', 'ap', 'apps', 'web.1', 'heroku-postgres', 'rout', 'routers');
    fc.assert(fc.property(fc.array(fc.tuple(name, name), { minLength: 1, maxLength: 10 }), (pairs) => {
      const body = Buffer.from(pairs.map(([a, p]) => frame(a, p)).join(''));
      const events = drainEvents({ app: 'a', drainToken: 't', frameId: 'f', dedupe: true, receivedAt: 0, messages: parseLogplexBody(body).messages });
      expect(events.map((e) => e.lineClass)).toEqual(pairs.map(([a, p]) => lineClassOf(a, p)));
    }));
  });

  it('names the five classes', () => {
    expect([lineClassOf('heroku', 'router'), lineClassOf('heroku', 'web.1'), lineClassOf('app', 'api'), lineClassOf('app', 'web.1'), lineClassOf('heroku-postgres', 'x')])
      .toEqual([LINE_ROUTER, LINE_PLATFORM, LINE_API, LINE_APP, LINE_OTHER]);
  });
});
