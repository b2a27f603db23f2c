import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { SidekiqKeys } from '../../src/actions/sidekiq/SidekiqKeys.js';

/**
 * A Sidekiq process simulated over real Redis, writing exactly what Sidekiq 6.4's heartbeat
 * writes (launcher.rb `❤`): SADD processes, HMSET info/busy/beat/quiet, EXPIRE 60, then RPOP one
 * signal. TSTP makes it quiet (visible at the next beat); TERM makes it SREM itself at the next
 * beat (Sidekiq pushes unfinished jobs back and clears its heartbeat), unless `ignoreTerm`.
 */
export interface SimulatedSidekiqOptions {
  readonly hostname: string;
  readonly tag?: string;
  readonly embedded?: boolean;
  /** Beats during which one job keeps running (Infinity: a job that never ends). */
  readonly busyBeats?: number;
  /** A wedged process that never exits. */
  readonly ignoreTerm?: boolean;
}

export class SimulatedSidekiq {
  readonly identity: string;
  readonly received: string[] = [];
  private quiet = false;
  private stopping = false;
  private gone = false;
  private busyBeats: number;

  constructor(private readonly redis: Redis, private readonly keys: SidekiqKeys, private readonly opts: SimulatedSidekiqOptions) {
    this.identity = `${opts.hostname}:${1000 + Math.floor(Math.random() * 9000)}:${randomBytes(6).toString('hex')}`;
    this.busyBeats = opts.busyBeats ?? 0;
  }

  get exited(): boolean {
    return this.gone;
  }

  async beat(): Promise<void> {
    if (this.gone) return;
    if (this.stopping && !this.opts.ignoreTerm) {
      // Sidekiq's stop: hard timeout pushes jobs back, then clear_heartbeat SREMs the identity.
      this.gone = true;
      await this.redis.srem(this.keys.processes, this.identity);
      return;
    }
    const info = JSON.stringify({
      hostname: this.opts.hostname,
      started_at: 1_700_000_000.5,
      pid: Number(this.identity.split(':')[1]),
      tag: this.opts.tag ?? '',
      concurrency: 5,
      queues: ['default'],
      labels: [],
      identity: this.identity,
      ...(this.opts.embedded ? { embedded: true } : {}),
    });
    const busy = this.busyBeats > 0 ? 1 : 0;
    const replies = await this.redis
      .multi()
      .sadd(this.keys.processes, this.identity)
      .hset(this.keys.process(this.identity), 'info', info, 'busy', String(busy), 'beat', String(Date.now() / 1000), 'quiet', String(this.quiet), 'rss', '123456')
      .expire(this.keys.process(this.identity), 60)
      .rpop(this.keys.signals(this.identity))
      .exec();
    if (this.busyBeats > 0) this.busyBeats -= 1;
    const msg = replies?.[3]?.[1];
    if (typeof msg !== 'string') return;
    this.received.push(msg);
    if (this.opts.embedded) return;
    if (msg === 'TSTP') this.quiet = true;
    if (msg === 'TERM') {
      this.quiet = true;
      this.stopping = true;
    }
  }
}
