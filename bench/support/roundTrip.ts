/**
 * What one Redis round trip costs this machine in Node CPU, whatever mallet does around it: a
 * tiny command, an 18 KB argument, and a 200-argument script call, each awaited one at a time.
 * The drain bench's figures only make sense beside these (a VM's socket calls can cost many
 * times what they cost on bare metal).
 *
 *   node --import tsx bench/support/roundTrip.ts [REDIS_URL]
 */
import { Redis } from 'ioredis';

const redis = new Redis(process.argv[2] ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: true });
redis.defineCommand('malletBenchNop', { numberOfKeys: 0, lua: 'return 1' });
const nop = (redis as unknown as { malletBenchNop(...a: string[]): Promise<number> }).malletBenchNop.bind(redis);
const big = 'x'.repeat(18_000);
const args = Array.from({ length: 200 }, (_, i) => `arg-${i}-${'y'.repeat(80)}`);
const cases: [string, () => Promise<unknown>][] = [
  ['ECHO of 1 byte', () => redis.echo('a')],
  ['ECHO of 18 KB', () => redis.echo(big)],
  ['EVALSHA with 200 arguments (18 KB)', () => nop(...args)],
];
const N = 3000;
await redis.ping();
console.log('| command | Node CPU µs per call | of which system | wall µs per call |\n|---|---:|---:|---:|');
for (let round = 0; round < 2; round++) {
  for (const [name, call] of cases) {
    const t0 = process.cpuUsage();
    const w0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) await call();
    const t = process.cpuUsage(t0);
    const wall = Number(process.hrtime.bigint() - w0) / 1000 / N;
    // The first round warms the JIT and the connection; only the second is printed.
    if (round === 1) console.log(`| ${name} | ${((t.user + t.system) / N).toFixed(1)} | ${(t.system / N).toFixed(1)} | ${wall.toFixed(1)} |`);
  }
}
redis.disconnect();
