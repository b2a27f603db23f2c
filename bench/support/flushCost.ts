/**
 * Node CPU per body-sized script call when K calls are ready at once (K bodies finishing in the
 * same turn), three ways: each call written on its own (no auto-pipelining), ioredis
 * auto-pipelining, and the drain's BodyFlush (src/server/bodyFlush.ts). The script does nothing
 * (`return 1`), so this is the client's cost only: encoding, the socket write and read, replies
 * and promises. The calls carry ~100 arguments, ~3.4 KB, as a 100-line drain body does.
 *
 *   node --import tsx bench/support/flushCost.ts [REDIS_URL] [REDIS_PID]
 *
 * With the redis-server's PID (a private one), each cell also gives Redis's CPU per call (/proc).
 */
import { Redis } from 'ioredis';
import { BodyFlush } from '../../src/server/bodyFlush.js';
import { processCpuUs } from './serveProcess.js';

const redisPid = process.argv[3] ? Number(process.argv[3]) : undefined;

const url = process.argv[2] ?? 'redis://127.0.0.1:6379';
const plain = new Redis(url);
const auto = new Redis(url, { enableAutoPipelining: true });
const NOP = 'malletBenchBodyNop';
for (const r of [plain, auto]) r.defineCommand(NOP, { lua: 'return 1' });
const flush1m = new BodyFlush(plain, NOP, { maxCalls: 64, maxBytes: 1 << 20 });
const flush = new BodyFlush(plain, NOP);
const call: (string | number)[] = [3, '{bench}:frames', '{bench}:a', '{bench}:b'];
for (let i = 0; i < 100; i++) call.push(`value-${i}-${'v'.repeat(28)}`);
type Nop = Record<string, (c: (string | number)[]) => Promise<unknown>>;
const ways: [string, () => Promise<unknown>][] = [
  ['each call its own write', () => (plain as unknown as Nop)[NOP]!(call)],
  ['ioredis auto-pipelining', () => (auto as unknown as Nop)[NOP]!(call)],
  ['BodyFlush, 1 MiB bound', () => flush1m.call('{bench}:frames', call)],
  ['BodyFlush (its bound)', () => flush.call('{bench}:frames', call)],
];
const N = 8192;
await plain.ping();
await auto.ping();
console.log('| calls ready at once | ' + ways.map(([w]) => w).join(' | ') + ' |');
console.log('|---:|' + ways.map(() => '---:|').join(''));
for (let round = 0; round < 3; round++) {
  for (const k of [1, 8, 32]) {
    const cells: string[] = [];
    for (const [, fn] of ways) {
      const t0 = process.cpuUsage();
      const r0 = redisPid ? processCpuUs(redisPid) : 0;
      for (let i = 0; i < N / k; i++) await Promise.all(Array.from({ length: k }, fn));
      const t = process.cpuUsage(t0);
      const redisUs = redisPid ? ` (Redis ${((processCpuUs(redisPid) - r0) / N).toFixed(1)})` : '';
      cells.push(`${((t.user + t.system) / N).toFixed(1)} µs${redisUs}`);
    }
    // The first round warms the JIT and the connections; only the second is printed.
    if (round > 0) console.log(`| ${k} | ${cells.join(' | ')} |`);
  }
}
plain.disconnect();
auto.disconnect();
