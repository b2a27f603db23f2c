import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';

/** Longer than a local PING can take; short enough for a load balancer's probe. */
const PING_TIMEOUT_MS = 1000;

/**
 * `/healthz`: the process runs. `/readyz`: Redis answers (SPEC §3). The rules are loaded before
 * the HTTP surface exists (an invalid file stops the start), so Redis is all that can be missing.
 */
export async function healthRoutes(app: FastifyInstance, opts: { redis: Redis }) {
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const pong = await Promise.race([
        opts.redis.ping(),
        new Promise<string>((_, reject) => { timer = setTimeout(() => reject(new Error(`timeout after ${PING_TIMEOUT_MS / 1000}s`)), PING_TIMEOUT_MS); }),
      ]);
      if (pong !== 'PONG') return reply.code(503).send({ ok: false, reasons: [`redis answered ${pong}`] });
    } catch (err) {
      return reply.code(503).send({ ok: false, reasons: [`redis: ${(err as Error).message}`] });
    } finally {
      clearTimeout(timer);
    }
    return { ok: true };
  });
}
