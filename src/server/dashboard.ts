import type { FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { requirePassword } from '../basicAuth.js';

export const DASHBOARD_PATH = '/admin/queues';

/**
 * The audit trail (SPEC §3): bull-board over the action queue, read-only (nobody retries or
 * deletes a remediation from a browser by accident), behind basic auth in its own scope.
 */
export async function dashboardRoutes(app: FastifyInstance, opts: { queue: Queue; password: string }) {
  app.addHook('onRequest', requirePassword(opts.password, 'mallet admin'));
  const serverAdapter = new FastifyAdapter();
  createBullBoard({ queues: [new BullMQAdapter(opts.queue, { readOnlyMode: true })], serverAdapter });
  serverAdapter.setBasePath(DASHBOARD_PATH);
  await app.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
}
