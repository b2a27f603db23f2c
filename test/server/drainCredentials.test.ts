import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainLine, frame, postDrain } from '../support/drainClient.js';
import { startRealDrain, type RealDrain } from '../support/realDrain.js';

/**
 * Issue #8 item 2: the drain password was shared by every app, so one app's drain URL could feed
 * another app's rules. An app with `drain_password` is opened by that password alone.
 */
const SHARED = 'shared-drain-password';
const env = { ALPHA_DRAIN_PASSWORD: 'alpha-only-password', BETA_DRAIN_PASSWORD: 'beta-only-password' };
let drain: RealDrain;
beforeAll(async () => {
  drain = await startRealDrain({
    password: SHARED,
    env,
    rules: `version: 1
apps:
  alpha-app:
    drain_password: \${ALPHA_DRAIN_PASSWORD}
  beta-app:
    drain_password: \${BETA_DRAIN_PASSWORD}
  open-app:
rules:
  - name: r14
    match: { message: '^Error R14 ' }
    actions: [ { type: redis-stop-key } ]
`,
  });
});
afterAll(async () => { await drain.close(); });

describe('per-app drain credentials', () => {
  it("one app's drain password cannot feed another app, nor the shared one an app with its own", async () => {
    const r14 = (id: string) => ({ body: frame(drainLine('heroku', 'web.1', 'Error R14 (Memory quota exceeded)')), headers: { 'Logplex-Frame-Id': id } });
    const post = (app: string, password: string, id: string) => {
      const { body, headers } = r14(id);
      return postDrain(drain.url, app, body, { password, headers }).then((r) => r.status);
    };
    expect(await post('beta-app', env.ALPHA_DRAIN_PASSWORD, 'CRED1')).toBe(401);
    expect(await post('alpha-app', env.BETA_DRAIN_PASSWORD, 'CRED2')).toBe(401);
    expect(await post('alpha-app', SHARED, 'CRED3')).toBe(401);
    expect(await post('open-app', env.ALPHA_DRAIN_PASSWORD, 'CRED4')).toBe(401);
    expect(drain.submitted).toHaveLength(0);
    // Each app's own password, and the shared one for an app that sets none.
    expect(await post('alpha-app', env.ALPHA_DRAIN_PASSWORD, 'CRED5')).toBe(204);
    expect(await post('beta-app', env.BETA_DRAIN_PASSWORD, 'CRED6')).toBe(204);
    expect(await post('open-app', SHARED, 'CRED7')).toBe(204);
    expect(drain.submitted.map((f) => f.app).sort()).toEqual(['alpha-app', 'beta-app', 'open-app']);
    // No password reaches the logs.
    const logged = JSON.stringify(drain.logs);
    for (const secret of [SHARED, ...Object.values(env)]) expect(logged).not.toContain(secret);
  });
});
