/**
 * What a service process went through over a stretch of a benchmark, read from outside it: its
 * own Prometheus metrics (GC pauses by size, the event loop's longest delay since the previous
 * scrape) and the kernel's scheduler counters of its main thread (time run, time spent runnable
 * but waiting for a CPU). Evidence for where the slowest trigger-latency probes' time went.
 */
import { readFileSync } from 'node:fs';

type Samples = Map<string, number>;

async function scrape(url: string): Promise<Samples> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** Main thread's [run ns, runnable-but-waiting ns] (/proc/PID/schedstat). */
function schedstat(pid: number): [number, number] {
  const [run, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
  return [run ?? NaN, wait ?? NaN];
}

export interface HealthWindow { end(): Promise<string> }

const sum = (s: Samples, prefix: string) => [...s].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);

export async function watchHealth(url: string, pid: number): Promise<HealthWindow> {
  const before = await scrape(url); // also resets the event-loop delay histogram
  const sched0 = schedstat(pid);
  const t0 = performance.now();
  return {
    async end() {
      const after = await scrape(url);
      const [run1, wait1] = schedstat(pid);
      const wallS = (performance.now() - t0) / 1000;
      const d = (prefix: string) => sum(after, prefix) - sum(before, prefix);
      const gcs = d('nodejs_gc_duration_seconds_count');
      const gcOver10 = gcs - d('nodejs_gc_duration_seconds_bucket{le="0.01"');
      const gcOver100 = gcs - d('nodejs_gc_duration_seconds_bucket{le="0.1"');
      const lagMax = after.get('nodejs_eventloop_lag_max_seconds') ?? NaN;
      const lagP99 = after.get('nodejs_eventloop_lag_p99_seconds') ?? NaN;
      return `over ${wallS.toFixed(1)} s: main thread ran ${((run1 - sched0[0]) / 1e9).toFixed(1)} s and waited ${((wait1 - sched0[1]) / 1e9).toFixed(1)} s runnable for a CPU; `
        + `${gcs} GC pauses, ${d('nodejs_gc_duration_seconds_sum').toFixed(2)} s in all, ${gcOver10} over 10 ms, ${gcOver100} over 100 ms; `
        + `of them ${['minor', 'major', 'incremental'].map((k) => `${k} ${d(`nodejs_gc_duration_seconds_count{kind="${k}"`)} (${(d(`nodejs_gc_duration_seconds_sum{kind="${k}"`) * 1000).toFixed(0)} ms)`).join(', ')}; `
        + `event-loop delay p99 ${(lagP99 * 1000).toFixed(0)} ms, max ${(lagMax * 1000).toFixed(0)} ms`;
    },
  };
}
