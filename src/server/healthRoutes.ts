import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { withDeadline } from '../deadline.js';
import { NO_RULES_WARNING } from '../rules/warnings.js';

/** Longer than a local PING can take; short enough for a load balancer's probe. */
const PING_TIMEOUT_MS = 1000;

/**
 * `/healthz`: the process runs. `/readyz`: Redis answers (SPEC §3). The rules are loaded before
 * the HTTP surface exists (an invalid file stops the start), so Redis is all that can be missing.
 *
 * With no rule loaded (`rules: []`) mallet is still ready — drains are answered and lines counted,
 * and a 503 would only make a platform route logplex away or restart a process that is fine — but
 * the body says so under `warnings`, beside the warning logged at load and at every reload.
 */
export async function healthRoutes(app: FastifyInstance, opts: { redis: Redis; ruleCount?: () => number }) {
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
    const warnings = opts.ruleCount?.() === 0 ? [NO_RULES_WARNING] : undefined;
    return reason === undefined ? { ok: true, warnings } : reply.code(503).send({ ok: false, reasons: [reason], warnings });
  });
}
