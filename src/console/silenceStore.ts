import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.js';
import type { RedisKeys } from '../keys.js';
import { SILENCE_BOUNDS, type Silence } from './Silence.js';

/**
 * Silences in mallet's Redis, shared by every replica: one hash id → JSON. A silence ends by its
 * own `endsAt` (every reader ignores and deletes ended ones) and the hash itself expires when the
 * last one ends, so nothing needs a sweeper.
 */
export class SilenceStore {
  constructor(private readonly redis: Redis, private readonly keys: RedisKeys, private readonly clock: Clock) {}

  /** Silences in force now, soonest ending first. */
  async active(): Promise<Silence[]> {
    const now = this.clock();
    const all = await this.redis.hgetall(this.keys.silences());
    const live: Silence[] = [];
    const ended: string[] = [];
    for (const [id, json] of Object.entries(all)) {
      let s: Silence;
      try { s = JSON.parse(json) as Silence; } catch { ended.push(id); continue; }
      if (s.endsAt <= now) ended.push(id);
      else live.push(s);
    }
    if (ended.length > 0) await this.redis.hdel(this.keys.silences(), ...ended);
    return live.sort((a, b) => a.endsAt - b.endsAt);
  }

  async add(input: Omit<Silence, 'id' | 'startsAt' | 'endsAt'> & { durationMs: number }): Promise<Silence | 'full'> {
    const live = await this.active();
    if (live.length >= SILENCE_BOUNDS.maxActive) return 'full';
    const now = this.clock();
    const { durationMs, ...fields } = input;
    const silence: Silence = { id: 's' + randomBytes(6).toString('hex'), ...fields, startsAt: now, endsAt: now + durationMs };
    const key = this.keys.silences();
    const lastEnd = Math.max(silence.endsAt, ...live.map((s) => s.endsAt));
    await this.redis.multi().hset(key, silence.id, JSON.stringify(silence)).pexpire(key, lastEnd - now + 60_000).exec();
    return silence;
  }

  /** Ends a silence now; false when there is no such silence in force. */
  async expire(id: string): Promise<boolean> {
    if (!/^s[0-9a-f]{12}$/.test(id)) return false;
    const live = await this.active();
    if (!live.some((s) => s.id === id)) return false;
    return (await this.redis.hdel(this.keys.silences(), id)) === 1;
  }
}
