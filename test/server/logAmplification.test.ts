import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { startRealDrain, type RealDrain } from '../support/realDrain.js';

/**
 * Issue #8 item 9: one body of thousands of lines with a bad dyno name wrote one warning per line.
 * Real HTTP, the real rules engine on real Redis.
 */
const PASSWORD = 'drain-secret-123';
let drain: RealDrain;
beforeAll(async () => {
  drain = await startRealDrain({
    password: PASSWORD,
    rules: `version: 1
rules:
  - name: r14
    match: { process: "*", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
`,
  });
});
afterAll(async () => { await drain.close(); });

describe('log amplification: a body of lines with a bad dyno name', () => {
  it('writes a few warnings and a count of the rest, not one warning per line', async () => {
    const lines = Array.from({ length: 10_000 }, () => drainLine('heroku', 'web.1/x', 'Error R14 (Memory quota exceeded)'));
    const body = frame(...lines);
    expect(body.length).toBeLessThan(1024 * 1024);
    const res = await postDrain(drain.url, 'my-app', body, { password: PASSWORD, headers: { 'Logplex-Frame-Id': 'AMPLIFY1' } });
    expect(res.status).toBe(204);
    drain.log.flush();
    const rejected = drain.logs.filter((l) => String(l.msg).includes('firing rejected'));
    expect(rejected.length).toBeLessThanOrEqual(6);
    // Nothing vanishes: written + suppressed = every rejected line.
    const written = rejected.filter((l) => l.suppressed === undefined).length;
    const suppressed = rejected.reduce((n, l) => n + Number(l.suppressed ?? 0), 0);
    expect(written + suppressed).toBe(10_000);
    expect(rejected[0]).toMatchObject({ reason: 'firing-rejected', app: 'my-app', rule: 'r14' });
    expect(drain.submitted).toHaveLength(0);
  });
});
