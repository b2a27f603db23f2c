import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../logger.js';

/**
 * How many connections may be open that no drain credential has been shown on. Anyone can open
 * them; logplex opens a few per drain and authenticates on its first request.
 */
export const MAX_UNAUTHENTICATED_CONNECTIONS = 256;

export interface ConnectionGuard {
  /** A request on this connection passed a drain's authentication: it no longer counts. */
  trust(socket: Socket): void;
}

/**
 * Bounds the connections of `server` on which no request has authenticated yet. At the bound the
 * oldest of them is closed for the newcomer, so a flood of partial requests cannot shut out a new
 * connection (a probe of /healthz, logplex's next one), and never costs an authenticated one.
 * Node's `server.maxConnections` would refuse the newcomer instead, whoever it is.
 */
export function guardConnections(server: Server, logger: Logger, max = MAX_UNAUTHENTICATED_CONNECTIONS): ConnectionGuard {
  // Insertion order is age order: the first is the oldest.
  const unauthenticated = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (unauthenticated.size >= max) {
      const [oldest] = unauthenticated;
      unauthenticated.delete(oldest!);
      oldest!.destroy();
      logger.debug({ max }, 'too many unauthenticated connections: closed the oldest');
    }
    unauthenticated.add(socket);
    socket.once('close', () => unauthenticated.delete(socket));
  });
  return { trust: (socket) => { unauthenticated.delete(socket); } };
}
