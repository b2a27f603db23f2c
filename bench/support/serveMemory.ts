/**
 * Resident memory of `mallet serve` builds side by side (VmRSS and VmHWM from /proc), at start and
 * after a stretch of drain load at a fixed rate, on a private redis-server: for a change that adds
 * a thread or an isolate, what it costs a dyno's memory quota.
 *
 *   node --import tsx bench/support/serveMemory.ts SECONDS RATE NAME=BUILT_ROOT [NAME=BUILT_ROOT ...]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { startPrivateRedis, startServe } from './serveProcess.js';

const here = dirname(fileURLToPath(import.meta.url));
const [secondsArg, rateArg, ...builds] = process.argv.slice(2);
const PASSWORD = 'bench-drain-password';
const mib = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const redisUrl = await startPrivateRedis();
for (const b of builds) {
  const name = b.slice(0, b.indexOf('='));
  const serve = await startServe({ redisUrl, password: PASSWORD, root: resolve(b.slice(b.indexOf('=') + 1)) });
  await new Promise((r) => setTimeout(r, 2000));
  const atStart = mib(serve.pid, 'VmRSS');
  await new Promise<void>((res) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'drainLoad.ts'), serve.url, secondsArg ?? '20', rateArg ?? '200'], {
      env: { ...process.env, BENCH_DRAIN_PASSWORD: PASSWORD, BENCH_CONNECTIONS: '8' }, stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.once('exit', () => res());
  });
  console.log(`${name}: RSS ${atStart.toFixed(1)} MiB after start, ${mib(serve.pid, 'VmRSS').toFixed(1)} MiB after ${secondsArg ?? 20} s at ${rateArg ?? 200} req/s (peak ${mib(serve.pid, 'VmHWM').toFixed(1)} MiB); threads ${readFileSync(`/proc/${serve.pid}/status`, 'utf8').match(/Threads:\s+(\d+)/)![1]}; load average ${loadavg()[0]!.toFixed(2)}`);
  await serve.stop();
}
process.exit(0);
