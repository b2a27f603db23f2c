import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { withDeadline } from '../deadline.js';

/** Longer than a local PING can take; short enough for a load balancer's probe. */
const PING_TIMEOUT_MS = 1000;

/**
 * `/healthz`: the process runs. `/readyz`: Redis answers (SPEC §3). The rules are loaded before
 * the HTTP surface exists (an invalid file stops the start), so Redis is all that can be missing.
 */
export async function healthRoutes(app: FastifyInstance, opts: { redis: Redis }) {
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    let reason: string | undefined;
    try {
      const pong = await withDeadline(opts.redis.ping(), PING_TIMEOUT_MS);
      if (pong === 'timeout') reason = `redis: timeout after ${PING_TIMEOUT_MS / 1000}s`;
      else if (pong !== 'PONG') reason = `redis answered ${pong}`;
    } catch (err) {
      reason = `redis: ${(err as Error).message}`;
    }
    return reason === undefined ? { ok: true } : reply.code(503).send({ ok: false, reasons: [reason] });
  });
}
