import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Silence } from './Silence.js';
import { logRedisErrors } from '../redisClient.js';

const INVALIDATE = '__redis__:invalidate';

/**
 * The silences in force, kept in memory between firings and dropped the moment Redis says the
 * hash changed: Redis's own client-side-caching invalidation (`CLIENT TRACKING … BCAST PREFIX`,
 * pushed on `__redis__:invalidate`), so a silence added or ended by any replica, or the hash
 * expiring, empties every replica's copy. A firing then costs no round trip for its silences.
 *
 * Redis sends the invalidation while it runs the write, before it answers the writer: once a
 * silence is reported created, every replica's copy is gone except for the invalidation still
 * on its way over a socket, the same window as a firing whose silences were read just before
 * the write. While the invalidation connection is not subscribed (connecting, reconnecting,
 * a Redis Cluster, an ACL without CLIENT TRACKING) every call reads Redis, as before.
 */
export class SilenceCache {
  #cached: readonly Silence[] | undefined;
  /** Bumped by every invalidation and every loss of the connection: a read that raced one is not kept. */
  #generation = 0;
  #live = false;
  /** Bumped by every new connection and every loss of one (see the constructor). */
  #epoch = 0;
  readonly #sub: Redis | undefined;

  constructor(
    private readonly read: () => Promise<Silence[]>,
    opts: { redis: Redis; key: string; clock: Clock; logger: Logger; connectionName?: string },
  ) {
    this.clock = opts.clock;
    if (opts.redis.isCluster) return;
    // Its own connection, on RESP2: there the invalidations arrive as pub/sub messages (RESP3
    // pushes them as a type ioredis does not surface), and a subscribed connection runs nothing
    // else. Resubscribed by hand: tracking must be switched on again, before SUBSCRIBE, on every
    // new connection.
    const sub = logRedisErrors(opts.redis.duplicate({ protocol: 2, autoResubscribe: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: null, connectionName: opts.connectionName ?? 'mallet-silences' }), opts.logger, 'silences');
    this.#sub = sub;
    // Each connection its own epoch: a setup begun on a connection since lost (its SUBSCRIBE
    // resent by ioredis onto the next one, where tracking was never switched on) must not
    // switch the copy on.
    const lost = () => { this.#epoch++; this.#live = false; this.#drop(); };
    sub.on('close', lost);
    sub.on('error', lost);
    sub.on('message', (channel: string) => { if (channel === INVALIDATE) this.#drop(); });
    sub.on('ready', () => {
      const epoch = ++this.#epoch;
      void (async () => {
        const id = await sub.client('ID');
        await sub.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', 'PREFIX', opts.key);
        await sub.subscribe(INVALIDATE);
        if (epoch !== this.#epoch) return;
        this.#drop();
        this.#live = true;
      })().catch((err: Error) => opts.logger.warn({ err: err.message }, 'silences are read from Redis on every firing: invalidation tracking unavailable'));
    });
  }

  private readonly clock: Clock;

  /** Silences in force now, soonest ending first (SilenceStore.active, from memory when it may). */
  async active(): Promise<readonly Silence[]> {
    const now = this.clock();
    const cached = this.#cached;
    if (cached !== undefined && this.#live) return cached.some((s) => s.endsAt <= now) ? cached.filter((s) => s.endsAt > now) : cached;
    const generation = this.#generation;
    const live = await this.read();
    // Kept only when no invalidation arrived while it was read (the read may predate a write).
    if (this.#live && generation === this.#generation) this.#cached = live;
    return live;
  }

  /**
   * active() when it needs no read: the copy in memory, else undefined (a drain body's firings
   * are then admitted after its script, which reads them: src/actions/queue.ts admission()).
   */
  inMemory(): readonly Silence[] | undefined {
    const cached = this.#cached;
    if (cached === undefined || !this.#live) return undefined;
    const now = this.clock();
    return cached.some((s) => s.endsAt <= now) ? cached.filter((s) => s.endsAt > now) : cached;
  }

  /** Whether the copy is kept (the invalidation connection is subscribed). */
  get tracking(): boolean {
    return this.#live;
  }

  close(): void {
    this.#live = false;
    this.#sub?.disconnect();
  }

  #drop(): void {
    this.#generation++;
    this.#cached = undefined;
  }
}
