import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { startRealDrain, type RealDrain } from '../support/realDrain.js';

/**
 * Issue #10: drain refusals (401, 404, 413, 415) were not logged at all, although logplex drops a
 * refused batch for good. Logged with reason and app, rate-limited per app and reason.
 */
const PASSWORD = 'drain-secret-123';
let drain: RealDrain;
beforeAll(async () => {
  drain = await startRealDrain({
    password: PASSWORD,
    rules: `version: 1
apps:
  listed-app:
    drain_tokens: [d.9173ea1f-6f14-4976-9cf0-7cd0dafdcdbc]
rules:
  - name: r14
    match: { message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
`,
  });
});
afterAll(async () => { await drain.close(); });

const refusals = () => drain.logs.filter((l) => String(l.msg).startsWith('drain request refused'));

describe('drain refusals are logged with reason and app', () => {
  it('401, 404 (each reason), 413 and 415 each leave a warning naming the app and the reason', async () => {
    const body = frame(drainLine('heroku', 'web.1', 'x'));
    expect((await postDrain(drain.url, 'listed-app', body, { password: 'wrong-password' })).status).toBe(401);
    expect((await postDrain(drain.url, 'other-app', body, { password: PASSWORD })).status).toBe(404);
    expect((await postDrain(drain.url, 'listed-app', body, { password: PASSWORD, headers: { 'Logplex-Drain-Token': 'd.00000000-0000-0000-0000-000000000000' } })).status).toBe(404);
    expect((await postDrain(drain.url, 'listed-app', body, { password: PASSWORD, contentType: 'text/plain' })).status).toBe(415);
    expect((await postDrain(drain.url, 'listed-app', Buffer.alloc(1024 * 1024 + 1, 'a'), { password: PASSWORD })).status).toBe(413);
    const got = refusals().map((l) => ({ status: l.status, reason: l.reason, app: l.app, why: l.why }));
    expect(got).toEqual([
      { status: 401, reason: 'drain-bad-credentials', app: 'listed-app', why: undefined },
      { status: 404, reason: 'drain-not-found', app: 'other-app', why: 'app other-app is not listed in the rules file' },
      { status: 404, reason: 'drain-not-found', app: 'listed-app', why: 'drain token is not the one pinned for this app' },
      { status: 415, reason: 'drain-content-type', app: 'listed-app', why: undefined },
      { status: 413, reason: 'drain-body-too-large', app: 'listed-app', why: undefined },
    ]);
    // The password tried is never logged.
    expect(JSON.stringify(drain.logs)).not.toContain('wrong-password');
  });

  it('a flood of refusals for one app and reason writes a few lines and a count', async () => {
    const before = refusals().length;
    const body = frame(drainLine('heroku', 'web.1', 'x'));
    for (let i = 0; i < 40; i++) expect((await postDrain(drain.url, 'flood-app', body, { password: 'wrong-password' })).status).toBe(401);
    drain.log.flush();
    const flood = refusals().slice(before).filter((l) => l.app === 'flood-app');
    expect(flood.length).toBeLessThanOrEqual(5);
    const summary = drain.logs.filter((l) => l.app === 'flood-app' && l.suppressed !== undefined);
    expect(flood.length + summary.reduce((n, l) => n + Number(l.suppressed), 0)).toBe(40);
  });
});
