/**
 * The worker stage of a firing (job stored → stop key written: the pickup, the ledger with the
 * lock and slot, the SET) with the action worker on the event loop of a busy process against in
 * a thread of it, on a private redis-server. The busy process stands in for the drain: its event
 * loop runs synchronous chunks of CHUNK_MS (a body's parse and judge, a scavenge) back to back for
 * DUTY of the time, yielding to I/O in between, as the drain's loop does under load. The stage is
 * read from what the worker stored (the job's `timestamp`, the step ledger's record), so the
 * bench's own waits do not enter it. Alternating blocks of probes, per placement and chunk.
 *
 *   node --import tsx bench/support/workerPlacement.ts PROBES_PER_BLOCK BLOCKS CHUNK_MS[,CHUNK_MS...] DUTY
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { ActionQueue } from '../../src/actions/queue.js';
import { loadConfig } from '../../src/config.js';
import { redisKeys } from '../../src/keys.js';
import { createMetrics } from '../../src/metrics.js';
import { startService, type Service } from '../../src/server/service.js';
import { percentile } from './latencyProbe.js';
import { benchRules, startPrivateRedis } from './serveProcess.js';

const [perBlockArg, blocksArg, chunksArg, dutyArg] = process.argv.slice(2);
const perBlock = Number(perBlockArg ?? 50);
const blocks = Number(blocksArg ?? 4);
const chunks = (chunksArg ?? '0,5,20').split(',').map(Number);
const duty = Number(dutyArg ?? 0.6);
const GAP_MS = 40;

const redisUrl = await startPrivateRedis();
const redis = new Redis(redisUrl);
const logger = pino({ level: 'silent' });

/** Keeps the event loop busy for `duty` of the time in chunks of `chunkMs`, yielding to I/O between them. */
function busyLoop(chunkMs: number): () => void {
  let on = chunkMs > 0;
  const idleMs = chunkMs * (1 - duty) / duty;
  const spin = () => {
    if (!on) return;
    const until = performance.now() + chunkMs;
    while (performance.now() < until) { /* the drain's synchronous work */ }
    setTimeout(spin, idleMs);
  };
  if (on) setTimeout(spin, 0);
  return () => { on = false; };
}

const placements = [['event loop', true], ['thread', 'thread']] as const;
const spans = new Map<string, number[]>();
for (let b = 0; b < blocks; b++) {
  for (const chunk of chunks) {
    const order = b % 2 === 0 ? placements : [...placements].reverse();
    for (const [name, worker] of order) {
      const prefix = `mallet-place-${randomBytes(4).toString('hex')}`;
      const dir = mkdtempSync(join(tmpdir(), 'mallet-place-'));
      const config = loadConfig({ REDIS_URL: redisUrl, MALLET_KEY_PREFIX: prefix, MALLET_QUEUE_PREFIX: prefix, MALLET_RULES: benchRules(dir), LOG_LEVEL: 'silent', PORT: '0' }, dir);
      const service: Service = await startService({ config, logger, http: false, worker });
      const keys = redisKeys(prefix, prefix);
      const queue = new ActionQueue({ connection: redis, queuePrefix: prefix, keys, metrics: createMetrics(undefined, { defaults: false }), logger, dryRun: false, getLimits: () => service.ruleSet().limits });
      await new Promise((r) => setTimeout(r, 500));
      const stop = busyLoop(chunk);
      const ids: string[] = [];
      for (let n = 0; n < perBlock + 3; n++) {
        const target = `probe.${n}`;
        const id = `f${randomBytes(20).toString('hex')}`;
        await queue.submit([{ id, rule: 'latency-probe', app: 'bench-place', target, processType: 'probe', window: '1', firedAt: Date.now(), receivedAt: Date.now(), triggerLines: ['Error R14'], dryRun: false,
          actions: [{ type: 'redis-stop-key', key: `${prefix}::stop::${target}`, value: '1', ttlMs: 60_000, watch: false }] }]);
        if (n >= 3) ids.push(id);
        await new Promise((r) => setTimeout(r, GAP_MS));
      }
      stop();
      const key = `${name}@${chunk}`;
      const list = spans.get(key) ?? [];
      for (const id of ids) {
        let step: string | null = null;
        for (let i = 0; i < 200 && step === null; i++) {
          step = await redis.hget(keys.jobSteps(id), '0');
          if (step === null) await new Promise((r) => setTimeout(r, 25));
        }
        const stored = Number(await redis.hget(`${prefix}:mallet-actions:${id}`, 'timestamp'));
        if (step !== null) list.push((JSON.parse(step) as { at: number }).at - stored);
      }
      spans.set(key, list);
      await queue.close();
      await service.close();
      console.log(`block ${b} ${key}: ${ids.length} probes; load average ${loadavg()[0]!.toFixed(2)}`);
    }
  }
}
console.log(`\njob stored → stop key written, ms (p50 / p90 / p99 / max), ${blocks} blocks × ${perBlock} probes, the process's loop busy ${Math.round(duty * 100)} % in chunks of the size shown; load average at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('| worker on | busy chunk | probes | p50 | p90 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|');
for (const [key, xs] of spans) {
  const s = [...xs].sort((a, c) => a - c);
  const [name, chunk] = key.split('@');
  console.log(`| ${name} | ${chunk} ms | ${s.length} | ${percentile(s, 50)} | ${percentile(s, 90)} | ${percentile(s, 99)} | ${s.at(-1)} |`);
}
redis.disconnect();
process.exit(0);
