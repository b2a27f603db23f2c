import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';

/** `/healthz`: the process runs. `/readyz`: Redis answers and rules are loaded (SPEC §3). */
export async function healthRoutes(app: FastifyInstance, opts: { redis: Redis; rulesLoaded: () => boolean }) {
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    const reasons: string[] = [];
    if (!opts.rulesLoaded()) reasons.push('rules not loaded');
    try {
      const pong = await Promise.race([
        opts.redis.ping(),
        new Promise<string>((_, reject) => setTimeout(() => reject(new Error('timeout after 1s')), 1000).unref()),
      ]);
      if (pong !== 'PONG') reasons.push(`redis answered ${pong}`);
    } catch (err) {
      reasons.push(`redis: ${(err as Error).message}`);
    }
    if (reasons.length) return reply.code(503).send({ ok: false, reasons });
    return { ok: true };
  });
}
