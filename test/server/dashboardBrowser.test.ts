import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { createMetrics } from '../../src/metrics.js';
import { ACTION_QUEUE } from '../../src/keys.js';
import { basic } from '../support/drainClient.js';
import { createHarness, makeFiring, settled, type Harness } from '../actions/harness.js';
import type { ActionQueue } from '../../src/actions/queue.js';

/**
 * bull-board as an operator opens it (issue 10 item 5): headless Chromium with the admin
 * password in an Authorization header finds a job by its name `rule app target`, and its data
 * starts with the fired time as text, the trigger line and the step results. The browser is a
 * German one and every request it makes is recorded: the labels are English all the same, none is
 * a raw translation key, and nothing is fetched from another host (bull-board's page linked Google
 * Fonts), nor refused by the page's Content-Security-Policy.
 */
const OUT = join('.ci', 'out', 'dashboard');
let h: Harness;
let queue: ActionQueue;
let app: FastifyInstance;
let url: string;
let browser: Browser;
/** A raw i18n key such as `QUEUE.STATUS.COMPLETED` or `JOB.ADDED_AT`, as a page would show an untranslated label. */
const RAW_KEY = /\b[A-Z][A-Z0-9_-]*(\.[A-Z0-9_-]+)+\b/;

/** The page's text and the labels people only see on hover or hear read out. */
async function visibleText(page: import('playwright-core').Page): Promise<string> {
  return page.evaluate(() => {
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text, as an operator reads it (textContent has <style> too)
    const bits = [document.body.innerText, document.title];
    for (const el of Array.from(document.querySelectorAll('[title], [aria-label], [placeholder], [alt]'))) {
      for (const a of ['title', 'aria-label', 'placeholder', 'alt']) bits.push(el.getAttribute(a) ?? '');
    }
    return bits.join('\n');
  });
}

beforeAll(async () => {
  h = createHarness('board');
  queue = h.queue({ attempts: 1 });
  h.worker();
  app = await buildApp({
    logger: pino({ level: 'silent' }), metrics: createMetrics(undefined, { defaults: false }), redis: h.redis,
    drainPassword: 'drain-password-1', adminPassword: 'admin-password-1',
    getApps: () => undefined, ingest: async () => ({ duplicate: false, lines: 0, firings: 0 }), queue: queue.queue,
  });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  mkdirSync(OUT, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await app?.close();
  await h?.close();
});

describe('bull-board at a glance', () => {
  it('lists a job by `rule app target`, with its fired time, trigger line and step results on top, and a failed reason without a stack', async () => {
    const done = makeFiring({ rule: 'web-memory-quota', target: 'web.3', actions: [h.stopAction('web.3')] });
    const failed = makeFiring({ rule: 'web-memory-quota', target: 'web.4', actions: [{ type: 'redis-stop-key', key: `${h.prefix}:nobody::stop::web.4`, value: '1', ttlMs: 600 }] });
    await queue.submit([done, failed]);
    expect((await settled(queue, done.id)).state).toBe('completed');
    const f = await settled(queue, failed.id);
    expect(f.state).toBe('failed');
    expect(f.job.stacktrace ?? []).toEqual([]);

    const d = (await queue.queue.getJob(done.id))!;
    expect(d.name).toBe('web-memory-quota my-app web.3');
    expect(Object.keys(d.data).slice(0, 3)).toEqual(['fired', 'trigger', 'results']);
    expect(d.data.fired).toBe(new Date(done.firedAt).toISOString());
    expect(d.data.trigger).toBe(done.triggerLines[0]);
    expect(d.data.results).toEqual([expect.stringMatching(/^done: SET .*puma::stop::web\.3 PX 60000; consumed after/)]);

    const context = await browser.newContext({ locale: 'de-DE', extraHTTPHeaders: { Authorization: basic('admin-password-1') }, viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const requested: string[] = [];
    const refused: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text()); });
    await page.goto(`${url}/admin/queues`);
    await page.getByText('COMPLETED').first().waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(OUT, 'overview.png'), fullPage: true });
    const overview = await visibleText(page);
    expect(overview).not.toMatch(RAW_KEY);
    expect(overview).toContain('QUEUES');
    expect(overview).not.toContain('WARTESCHLANGEN');
    await page.goto(`${url}/admin/queues/queue/${ACTION_QUEUE}?status=completed`);
    await page.getByText('web-memory-quota my-app web.3').first().waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(OUT, 'completed.png'), fullPage: true });
    // English (not the browser's German), and no raw i18n key like "QUEUE.STATUS.COMPLETED".
    const completed = await visibleText(page);
    expect(completed).not.toMatch(RAW_KEY);
    expect(completed).toContain('Added at');
    expect(completed).not.toContain('Hinzugefügt');

    await page.goto(`${url}/admin/queues/queue/${ACTION_QUEUE}?status=failed`);
    await page.getByText('web-memory-quota my-app web.4').first().waitFor({ timeout: 20_000 });
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText is the rendered text a person reads; textContent would add the page's script source
    const text = await page.locator('body').innerText();
    expect(text).toContain('not consumed: nobody took');
    expect(text).not.toMatch(/at (async )?\S+ \(.*:\d+:\d+\)/);
    expect(await visibleText(page)).not.toMatch(RAW_KEY);
    await page.screenshot({ path: join(OUT, 'failed.png'), fullPage: true });

    // Every request went to this host: no font, stylesheet or script from anywhere else.
    const origin = new URL(url).origin;
    expect(requested.length).toBeGreaterThan(10);
    expect(requested.filter((u) => !u.startsWith('data:') && new URL(u).origin !== origin)).toEqual([]);
    expect(refused).toEqual([]);
    await context.close();
  });

  it('serves its page without links to other hosts, with a policy allowing only this one', async () => {
    const res = await fetch(`${url}/admin/queues`, { headers: { Authorization: basic('admin-password-1') } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('static/js/main.');
    expect(html).not.toMatch(/(href|src)="(https?:)?\/\//);
    expect(html).not.toContain('fonts.googleapis.com');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(JSON.parse(/<script id="__UI_CONFIG__" type="application\/json">(.*?)<\/script>/s.exec(html)![1]!).locale).toEqual({ lng: 'en-US' });
  });
});
