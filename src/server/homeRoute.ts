import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { DASHBOARD_PATH } from './dashboard.js';

const README = new URL('../../README.md', import.meta.url);

/**
 * `GET /`: what this is and where to go (a person opening the app's URL after deploying it), as
 * a short page for browsers and JSON otherwise; `GET /docs`: the README that came with it.
 * Nothing here is secret: the drain and dashboard paths are public knowledge, their passwords are not.
 */
export async function homeRoutes(app: FastifyInstance, opts: { dashboard: boolean }) {
  const links = {
    service: 'mallet: a Heroku log drain that remediates memory leaks gracefully',
    drain: 'POST /drains/<app> (basic auth: MALLET_DRAIN_PASSWORD, Content-Type: application/logplex-1)',
    status: opts.dashboard ? '/admin' : '/admin (off: set MALLET_ADMIN_PASSWORD)',
    dashboard: opts.dashboard ? DASHBOARD_PATH : `${DASHBOARD_PATH} (off: set MALLET_ADMIN_PASSWORD)`,
    docs: '/docs',
    health: '/healthz',
    ready: '/readyz',
    metrics: '/metrics',
  };
  app.get('/', async (req, reply) => {
    if (!/\btext\/html\b/.test(req.headers.accept ?? '')) return links;
    const dash = opts.dashboard
      ? `<a href="/admin">/admin</a>: the status page (firings, why, silences, leak report) and <a href="${DASHBOARD_PATH}">${DASHBOARD_PATH}</a>: the action jobs (basic auth: MALLET_ADMIN_PASSWORD)`
      : `/admin and ${DASHBOARD_PATH} are off: set MALLET_ADMIN_PASSWORD to turn them on`;
    return reply.type('text/html; charset=utf-8').send(`<!doctype html>
<html><head><meta charset="utf-8"><title>mallet</title></head><body style="font-family:sans-serif;max-width:40em;margin:2em auto">
<h1>mallet</h1>
<p>A Heroku log drain that turns memory-leak log lines into graceful, audited remediation.</p>
<ul>
<li>Drain: <code>heroku drains:add "https://mallet:PASSWORD@${escapeHtml(req.host)}/drains/APP" -a APP</code></li>
<li>${dash}</li>
<li><a href="/docs">/docs</a>: the README (setup, rules, actions, limits)</li>
<li><a href="/healthz">/healthz</a>, <a href="/readyz">/readyz</a>, <a href="/metrics">/metrics</a></li>
</ul></body></html>
`);
  });
  app.get('/docs', async (_req, reply) => {
    try {
      return reply.type('text/markdown; charset=utf-8').send(await readFile(README, 'utf8'));
    } catch {
      return reply.code(404).send({ error: 'README.md is not installed with this build' });
    }
  });
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
