import type { Redis } from 'ioredis';

const CONSUMED_TARGETS = [...Array.from({ length: 20 }, (_, i) => `web.${i + 1}`), ...Array.from({ length: 5 }, (_, i) => `worker.${i + 1}`)];

/**
 * A stand-in for the Puma plugin on the dynos tests use (web.1-20, worker.1-5): takes (GETDEL)
 * their stop keys under `PREFIX:puma::stop::` every 50 ms, as the plugin deletes what it acts on.
 */
export function consumeStopKeys(redis: Redis, prefix: string): { taken: Map<string, string>; stop(): void } {
  const taken = new Map<string, string>();
  const keys = CONSUMED_TARGETS.map((t) => `${prefix}:puma::stop::${t}`);
  const timer = setInterval(() => {
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.getdel(key);
    pipeline.exec().then((replies) => {
      replies?.forEach(([err, value], i) => { if (!err && typeof value === 'string') taken.set(keys[i]!, value); });
    }).catch(() => {});
  }, 50);
  return { taken, stop: () => clearInterval(timer) };
}

