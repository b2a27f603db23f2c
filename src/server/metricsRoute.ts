import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics.js';
import { requirePassword } from '../basicAuth.js';

/** `/metrics` in Prometheus text format, behind basic auth when MALLET_METRICS_PASSWORD is set. */
export async function metricsRoute(app: FastifyInstance, opts: { metrics: Metrics; password: string | undefined }) {
  if (opts.password) app.addHook('onRequest', requirePassword(opts.password, 'mallet metrics'));
  app.get('/metrics', async (_req, reply) => {
    const body = await opts.metrics.registry.metrics();
    return reply.type(opts.metrics.registry.contentType).send(body);
  });
}
