import type { Redis } from 'ioredis';
import type { RedisKeys } from '../keys.js';

/**
 * The frames of each drain already processed, for SPEC §3's "a retried frame is skipped whole".
 * Logplex sends one request at a time per drain and retries a frame at most 3 times, 5 s apart
 * at most (../shared/docs/heroku-drain-protocol.md §1), before it moves on: a retry always
 * comes within a minute of the first delivery and before the drain's next frames. So each drain
 * keeps one sorted set of its most recent frame ids, trimmed to the last `MAX_FRAMES` and to
 * `WINDOW_MS`, and the whole key expires a window after the drain's last frame. The cost is
 * bounded per drain whatever the traffic: at most 127 ids of ≤ 64 bytes, which Redis keeps as
 * one listpack (its compact encoding up to 128 members of ≤ 64 bytes), a few KiB.
 *
 * Idempotency beyond that horizon (a frame replayed after 15 minutes, or after 128 newer frames of
 * its drain) rests on the threshold records, which live window + cooldown: see pipeline.ts.
 */
export const RECENT_FRAMES = Object.freeze({
  /**
   * Frame ids kept per drain: one under Redis's default zset-max-listpack-entries (128), since a
   * frame is added before the set is trimmed, and a set that once exceeds it is not re-encoded.
   */
  maxFrames: 127,
  /** How long a frame id is kept: far beyond logplex's retries (3 attempts within a minute). */
  windowMs: 15 * 60_000,
});

/** The script lives in this .ts so the build ships it; its header documents KEYS, ARGV and returns. */
export const FRAME_DONE_LUA = `--[[
  frameDone: marks a drain's frame processed and trims the drain's set of recent frames.
  KEYS[1] the drain's recent frames: sorted set frame id -> when processed (ms)
  ARGV[1] frame id   ARGV[2] now (ms)   ARGV[3] window (ms)   ARGV[4] max frames kept
  Returns 1 when this call marked the frame (the first delivery to get this far), else 0.
]]
local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[4]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return added
`;

const COMMAND = 'malletFrameDone';
type WithFrameDone = { [COMMAND](key: string, frameId: string, at: number, windowMs: number, max: number): Promise<number> };

export class RecentFrames {
  constructor(private readonly redis: Redis, private readonly keys: RedisKeys) {
    // defineCommand: EVALSHA with the script loaded on demand.
    if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: FRAME_DONE_LUA });
  }

  /** Whether this delivery was already processed (its drain's set holds the frame id). */
  async done(app: string, drainToken: string, frameId: string): Promise<boolean> {
    return (await this.redis.zscore(this.keys.recentFrames(app, drainToken), frameId)) !== null;
  }

  /**
   * Marks the frame processed at `at` (ms) and trims the drain's set, atomically; true when this
   * delivery came first (two in flight at once: only one is counted).
   */
  async markDone(app: string, drainToken: string, frameId: string, at: number): Promise<boolean> {
    const { maxFrames, windowMs } = RECENT_FRAMES;
    const added = await (this.redis as unknown as WithFrameDone)[COMMAND](this.keys.recentFrames(app, drainToken), frameId, Math.trunc(at), windowMs, maxFrames);
    return added === 1;
  }
}
