import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { systemClock, type Clock } from '../clock.js';

/**
 * Logplex keeps one connection per drain open for hours, so behind a load balancer a drain stays
 * pinned to the replica it first reached and new replicas get no traffic. A response on a
 * connection older than `maxAgeMs` says `Connection: close`: Node closes the socket once the
 * response is written, and logplex reconnects, through the balancer, for its next batch. The
 * request count bound is Node's own `maxRequestsPerSocket` (set on the server in app.ts).
 */
export function closeAgedConnections(app: FastifyInstance, maxAgeMs: number, clock: Clock = systemClock): void {
  if (maxAgeMs <= 0) return;
  const firstSeen = new WeakMap<Socket, number>();
  app.addHook('onRequest', async (request, reply) => {
    const socket = request.raw.socket;
    const now = clock();
    const born = firstSeen.get(socket);
    if (born === undefined) firstSeen.set(socket, now);
    else if (now - born >= maxAgeMs) reply.header('connection', 'close');
  });
}
