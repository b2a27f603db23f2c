import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, testRedis } from '../support/redis.js';
import { adminGet, consoleService } from './consoleService.js';

/** The /admin status page over real HTTP (the browser test in test/e2e drives it in Chromium). */
const redis = testRedis();
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  redis.disconnect();
});

const RULES = `version: 1
rules:
  - name: app-says
    match: { source: app, process: "web.*", message: 'LEAK' }
    actions: [ { type: redis-stop-key, key: "mtest-page-stop:{{target}}" } ]
    dry_run: true
`;

describe('the /admin status page', () => {
  it('needs the admin password; shows the rules, a decision with its outcome, and escapes what came from the line', async () => {
    const s = await consoleService(RULES);
    cleanups.push(async () => { await s.service.close(); await cleanupPrefix(redis, s.prefix, s.queuePrefix, 'mtest-page-stop'); });
    expect((await fetch(`${s.url}/admin`)).status).toBe(401);
    expect((await fetch(`${s.url}/admin/api/firings`)).status).toBe(401);
    const { drainLine, frame, postDrain } = await import('../support/drainClient.js');
    const { DRAIN } = await import('./consoleService.js');
    const body = frame(drainLine('app', 'web.1', 'LEAK <script>alert(1)</script>'));
    expect((await postDrain(s.url, 'shop', body, { password: DRAIN })).status).toBe(204);
    const page = await adminGet(s.url, '/admin');
    expect(page.status).toBe(200);
    expect(page.text).toContain(s.file);
    expect(page.text).toMatch(/<span class="badge"[^>]*>dry run<\/span>/);
    expect(page.text).toContain('LEAK &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.text).not.toContain('<script>');
    expect(page.text).toContain('<svg');
    expect(page.text).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)/);
  });

  it('says when a reload was refused, with its errors, and that the last good rules stay in force', async () => {
    const s = await consoleService(RULES);
    cleanups.push(async () => { await s.service.close(); await cleanupPrefix(redis, s.prefix, s.queuePrefix); });
    writeFileSync(s.file, RULES.replace('dry_run: true', 'dry_run: maybe'));
    expect(await s.service.reloadRules()).toBe(false);
    const page = await adminGet(s.url, '/admin');
    expect(page.text).toContain('The last reload was refused');
    expect(page.text).toContain('stay in force until the file is fixed');
    expect(page.text).toMatch(/rules\.yml:\d+:\d+: /);
    expect(s.service.ruleSet().rules.map((r) => r.name)).toEqual(['app-says']);
  });
});
