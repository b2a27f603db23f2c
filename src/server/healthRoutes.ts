import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { withDeadline } from '../deadline.js';
import { NO_RULES_WARNING } from '../rules/warnings.js';

/** Longer than a local PING can take; short enough for a load balancer's probe. */
const PING_TIMEOUT_MS = 1000;

/**
 * `/healthz`: the process runs. `/readyz`: Redis answers (SPEC §3) on every connection a drain
 * request needs: the drain's own and the action queue's, which reconnect on their own after a
 * Redis restart (a firing stored through a queue connection still reconnecting answers 503). The rules are loaded before
 * the HTTP surface exists (an invalid file stops the start), so Redis is all that can be missing.
 *
 * With no rule loaded (`rules: []`) mallet is still ready — drains are answered and lines counted,
 * and a 503 would only make a platform route logplex away or restart a process that is fine — but
 * the body says so under `warnings`, beside the warning logged at load and at every reload.
 */
export async function healthRoutes(app: FastifyInstance, opts: { redis: Redis; queuePing?: () => Promise<string>; ruleCount?: () => number }) {
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    const reasons = (await Promise.all([
      pingReason('redis', () => opts.redis.ping()),
      ...(opts.queuePing ? [pingReason('redis (action queue)', opts.queuePing)] : []),
    ])).filter((r) => r !== undefined);
    const warnings = opts.ruleCount?.() === 0 ? [NO_RULES_WARNING] : undefined;
    return reasons.length === 0 ? { ok: true, warnings } : reply.code(503).send({ ok: false, reasons, warnings });
  });
}

/** Why the connection is not ready (undefined: it answered PONG in time). */
async function pingReason(name: string, ping: () => Promise<string>): Promise<string | undefined> {
  try {
    const pong = await withDeadline(ping(), PING_TIMEOUT_MS);
    if (pong === 'timeout') return `${name}: timeout after ${PING_TIMEOUT_MS / 1000}s`;
    if (pong !== 'PONG') return `${name} answered ${pong}`;
    return undefined;
  } catch (err) {
    return `${name}: ${(err as Error).message}`;
  }
}
