import type { FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { requirePassword } from '../basicAuth.js';
import { DASHBOARD_CSP, DASHBOARD_LOCALE, withoutOffHostLinks } from './dashboardPage.js';

export const DASHBOARD_PATH = '/admin/queues';

/**
 * The audit trail (SPEC §3): bull-board over the action queue, read-only (nobody retries or
 * deletes a remediation from a browser by accident), behind basic auth in its own scope. Nothing
 * it loads comes from another host, and its labels are English (./dashboardPage.ts).
 */
export async function dashboardRoutes(app: FastifyInstance, opts: { queue: Queue; password: string }) {
  app.addHook('onRequest', requirePassword(opts.password, 'mallet admin'));
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('content-security-policy', DASHBOARD_CSP);
    const type = String(reply.getHeader('content-type') ?? '');
    return typeof payload === 'string' && type.startsWith('text/html') ? withoutOffHostLinks(payload) : payload;
  });
  const serverAdapter = new FastifyAdapter();
  createBullBoard({
    queues: [new BullMQAdapter(opts.queue, { readOnlyMode: true })],
    serverAdapter,
    // hideDocsLink: the header's Docs icon links to bull-board's site, not to mallet's docs.
    options: { uiConfig: { locale: { lng: DASHBOARD_LOCALE }, hideDocsLink: true } },
  });
  serverAdapter.setBasePath(DASHBOARD_PATH);
  await app.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
}
