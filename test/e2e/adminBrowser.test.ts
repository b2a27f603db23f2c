import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { REPO, spawnMallet } from '../support/malletProcess.js';
import { cleanupPrefix, testRedis, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { postDrain, sampleBody } from '../support/drainClient.js';
import { ADMIN, DRAIN, consoleService, post } from '../console/consoleService.js';

/**
 * The status page in a real browser (issue #9): headless Chromium (Debian's `chromium`, driven by
 * playwright-core) logs in to /admin, sees a posted R14 firing with its outcome, follows its link
 * to the job in bull-board, and sees a silence added from the CLI. Screenshots at laptop and
 * phone widths go to .ci/out/browser. The browser is a German one and every request it makes is
 * recorded: none goes to another host, and bull-board's job page is in English with no raw
 * translation key.
 */
const OUT = join(REPO, '.ci/out/browser');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const redis = testRedis();
let browser: Browser;
let s: Awaited<ReturnType<typeof consoleService>>;

const RULES = `version: 1
apps:
  my-app: {}
  billing: {}
rules:
  - name: web-memory-quota
    description: Stop Puma gracefully when a web dyno goes over its memory quota twice
    match: { source: heroku, process: "web.*", message: '^Error R1[45] ' }
    cooldown: 10m
    actions: [ { type: redis-stop-key, key: "mtest-browser-stop:{{app}}:{{target}}" } ]
  - name: worker-memory
    match: { source: heroku, process: "worker.*", message: '^Error R14 ' }
    actions: [ { type: redis-stop-key, key: "mtest-browser-stop:{{app}}:{{target}}" } ]
    dry_run: true
  - name: router-timeouts
    match: { source: heroku, process: router, fields: { code: H12 } }
    target: "{{fields.dyno}}"
    threshold: { count: 5, within: 1m }
    actions: [ { type: redis-stop-key, key: "mtest-browser-stop:{{app}}:{{target}}" } ]
limits:
  per_app: { max_firings: 2, within: 10m }
`;

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  // The rules file inside the tree, so the page (and the README's screenshot) shows a relative path.
  const dir = join(OUT, 'config');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'rules.yml'), RULES);
  s = await consoleService(RULES, { prefix: uniquePrefix('brw'), queuePrefix: uniquePrefix('brwq'), dir, file: join(dir, 'rules.yml') });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});

afterAll(async () => {
  await browser?.close();
  await s?.service.close();
  if (s) await cleanupPrefix(redis, s.prefix, s.queuePrefix, 'mtest-browser-stop');
  redis.disconnect();
});

describe('the status page in a browser', () => {
  it('shows a posted R14 firing with its outcome, links to its job, and lists a silence added from the CLI', async () => {
    const context = await browser.newContext({ locale: 'de-DE', httpCredentials: { username: 'mallet', password: ADMIN }, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    const refused: string[] = [];
    page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text()); });
    expect((await page.goto(`${s.url}/admin`))?.status()).toBe(200);
    expect(await page.locator('#decisions').textContent()).toContain('No firing decision recorded yet');
    const { body, headers } = sampleBody('r14-web');
    expect((await postDrain(s.url, 'my-app', body, { password: DRAIN, headers })).status).toBe(204);
    await page.reload();
    const fired = page.locator('#decisions li.decision');
    expect(await fired.count()).toBe(1);
    expect(await fired.locator('.badge').textContent()).toBe('enqueued');
    expect(await fired.textContent()).toContain('web-memory-quota');
    expect(await fired.textContent()).toContain('web.1');

    // A little more history, so the page shows what an operator would see: cooldown lines, a
    // held firing, a dry run, a rejected line.
    const R14 = 'Error R14 (Memory quota exceeded)';
    for (let i = 0; i < 3; i++) expect(await post(s.url, 'my-app', [['web.1', R14]])).toBe(204);
    expect(await post(s.url, 'my-app', [['web.2', R14], ['web.3', R14]])).toBe(204);
    expect(await post(s.url, 'my-app', [['web.2', R14], ['web.3', R14]])).toBe(204);
    expect(await post(s.url, 'my-app', [['worker.1', R14]])).toBe(204);
    expect(await post(s.url, 'my-app', [['router', 'at=error code=H12 desc="Request timeout" dyno=web.1;rm service=30000ms']])).toBe(204);

    await page.reload();
    const first = page.locator('#decisions li.decision[data-outcome="enqueued"]').last();
    await expect.poll(() => first.textContent()).toContain('web-memory-quota');
    expect(await first.locator('.badge').textContent()).toBe('enqueued');
    expect(await page.locator('#decisions li.decision[data-outcome="held"]').count()).toBe(1);
    expect(await page.locator('#chart svg rect').count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(OUT, 'admin-laptop.png'), fullPage: true });

    // Its link goes to the job in bull-board.
    const href = await first.locator('a', { hasText: 'job' }).getAttribute('href');
    expect(href).toMatch(/^\/admin\/queues\/queue\/mallet-actions\/f[0-9a-f]{40}$/);
    await first.locator('a', { hasText: 'job' }).click();
    await page.waitForURL(/\/admin\/queues\/queue\/mallet-actions\/f[0-9a-f]{40}$/);
    await expect.poll(() => page.locator('body').textContent(), { timeout: 15_000 }).toContain('web-memory-quota');
    await page.screenshot({ path: join(OUT, 'job.png') });
    // bull-board in English in a German browser, every label translated (no `JOB.ADDED_AT`).
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's rendered text, not the DOM property
    const jobText = await page.locator('body').innerText();
    expect(jobText).toContain('Added at');
    expect(jobText).not.toMatch(/\b[A-Z][A-Z0-9_-]*(\.[A-Z0-9_-]+)+\b/);
    // Status page and dashboard alike: nothing from another host (bull-board's page linked Google Fonts).
    const origin = new URL(s.url).origin;
    expect(requested.some((u) => u.includes('/admin/queues/static/'))).toBe(true);
    expect(requested.filter((u) => !u.startsWith('data:') && new URL(u).origin !== origin)).toEqual([]);

    // A silence from the CLI (a real `mallet silence add` process against the same Redis).
    const cli = spawnMallet(['silence', 'add', '--app', 'my-app', '--target', 'web.*', '--for', '2h', '--comment', 'deploying the fix for the image-cache leak', '--by', 'ana'], {
      env: { ...process.env, REDIS_URL: testRedisUrl(), MALLET_KEY_PREFIX: s.prefix, MALLET_RULES: s.file, LOG_LEVEL: 'silent' },
    });
    expect((await cli.exited).code, cli.output()).toBe(0);
    const id = cli.output().trim().split('\n')[0]!;
    await page.goto(`${s.url}/admin`);
    const silence = page.locator('#silences li');
    expect(await silence.count()).toBe(1);
    expect(await silence.textContent()).toContain(id);
    expect(await silence.textContent()).toContain('deploying the fix for the image-cache leak');
    await page.screenshot({ path: join(OUT, 'admin-laptop-silenced.png'), fullPage: true });

    // Readable on a phone: nothing wider than the screen but the table's own scroller.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.screenshot({ path: join(OUT, 'admin-phone.png'), fullPage: true });

    // A refused reload: the page says so, with the error, and that the last good rules stay.
    writeFileSync(s.file, RULES.replace('cooldown: 10m', 'cooldown: soon'));
    expect(await s.service.reloadRules()).toBe(false);
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.reload();
    const alert = page.locator('#rules .alert');
    expect(await alert.textContent()).toContain('The last reload was refused');
    expect(await alert.textContent()).toContain('stay in force');
    expect(await alert.textContent()).toContain('bad duration');
    await page.screenshot({ path: join(OUT, 'admin-refused-reload.png') });
    expect(requested.filter((u) => !u.startsWith('data:') && new URL(u).origin !== origin)).toEqual([]);
    // bull-board's policy (this host only) refused nothing it needs, on the job page either.
    expect(refused).toEqual([]);
    await context.close();
  });

  it('asks for the password without it', async () => {
    const context = await browser.newContext();
    const res = await context.request.get(`${s.url}/admin`);
    expect(res.status()).toBe(401);
    expect(res.headers()['www-authenticate']).toContain('Basic');
    await context.close();
  });
});
