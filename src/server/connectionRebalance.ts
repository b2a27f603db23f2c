import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { systemClock, type Clock } from '../clock.js';

/**
 * Logplex keeps one connection per drain open for hours, so behind a load balancer a drain stays
 * pinned to the replica it first reached and new replicas get no traffic. The response to the
 * `maxRequests`th request of a connection, or to the first request once the connection is
 * `maxAgeMs` old, says `Connection: close`: Node closes the socket once that response is written,
 * and logplex reconnects, through the balancer, for its next batch.
 *
 * Not Node's `maxRequestsPerSocket`: past its limit it keeps the socket open and answers every
 * further request 503, so a client that does not honour the close (autocannon did not) gets only
 * 503s from then on; closing the socket makes any client reconnect.
 */
export function closeAfter(app: FastifyInstance, limits: { maxRequests: number; maxAgeMs: number }, clock: Clock = systemClock): void {
  const { maxRequests, maxAgeMs } = limits;
  if (maxRequests <= 0 && maxAgeMs <= 0) return;
  const seen = new WeakMap<Socket, { born: number; requests: number }>();
  app.addHook('onRequest', (request, reply, done) => {
    const socket = request.raw.socket;
    const now = clock();
    let s = seen.get(socket);
    if (s === undefined) {
      s = { born: now, requests: 0 };
      seen.set(socket, s);
    }
    s.requests++;
    if ((maxRequests > 0 && s.requests >= maxRequests) || (maxAgeMs > 0 && now - s.born >= maxAgeMs)) reply.header('connection', 'close');
    done();
  });
}
