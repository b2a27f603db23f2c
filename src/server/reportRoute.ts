import type { FastifyInstance } from 'fastify';
import { requirePassword } from '../basicAuth.js';
import { HEROKU_APP_NAME } from '../herokuAppName.js';
import type { DynoStore } from '../dynos/DynoStore.js';
import type { SuspectStore } from '../dynos/SuspectStore.js';
import { DEFAULT_SINCE, leakReport, sinceMs } from '../dynos/reportIo.js';

export const REPORT_PATH = '/admin/api/report';

/**
 * `GET /admin/api/report?app=A[&since=7d]`: the leak report as JSON (the same object as
 * `mallet report --json`), behind the admin password like the queue dashboard.
 */
export async function reportRoutes(app: FastifyInstance, opts: { store: DynoStore; password: string; suspects?: SuspectStore | undefined }) {
  app.addHook('onRequest', requirePassword(opts.password, 'mallet admin'));
  app.get(REPORT_PATH, async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const name = typeof q.app === 'string' ? q.app : '';
    if (!HEROKU_APP_NAME.test(name)) return reply.code(400).send({ error: 'app: expected a Heroku app name' });
    const since = sinceMs(typeof q.since === 'string' ? q.since : DEFAULT_SINCE);
    if (since === undefined) return reply.code(400).send({ error: 'since: expected a duration like 7d or 12h' });
    return leakReport(opts.store, name, since, opts.suspects);
  });
}
