/**
 * What a bench pass allocates, counted rather than timed (a loaded machine changes CPU time, not
 * bytes): run in a child process started with the V8 flags each mode needs (allocationChild).
 *
 * - `bytes`: the young generation made larger than a pass allocates, so no collection runs during
 *   one; a full collection before each pass, and the JS heap's growth over the pass is what it
 *   allocated (checked: a pass during which a collection ran is refused).
 * - `scavenges`: a fixed young generation (no growth heuristics), the scavenges over the passes.
 * - `sites`: V8's sampling heap profiler over the passes, collected objects kept, summed per
 *   allocating function and per nearest project function on the stack (a builtin's allocation,
 *   an array growing or a string concatenated, is charged to the project code that called it).
 */
import { Session } from 'node:inspector/promises';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';
import v8 from 'node:v8';

export type AllocationMode = 'bytes' | 'scavenges' | 'sites';

/** The node flags of a child measuring `mode`. */
export function allocationFlags(mode: AllocationMode): string[] {
  if (mode === 'bytes') return ['--expose-gc', '--min-semi-space-size=1024', '--max-semi-space-size=1024'];
  if (mode === 'scavenges') return ['--expose-gc', '--min-semi-space-size=16', '--max-semi-space-size=16'];
  return ['--expose-gc', '--min-semi-space-size=1024', '--max-semi-space-size=1024'];
}

interface Options { warmup: number; passes: number; lines: number }

export interface AllocationResult {
  mode: string;
  lines: number;
  /** bytes: per measured pass. */
  bytesPerPass?: number[];
  /** scavenges: minor and major collections over the measured passes. */
  scavenges?: number;
  majors?: number;
  /** sites: sampled bytes per pass, by allocating function and by nearest project function. */
  self?: Array<[string, number]>;
  project?: Array<[string, number]>;
  /** sites: the same by allocating stack (its innermost five frames). */
  stacks?: Array<[string, number]>;
}

const gc = (): void => (globalThis as { gc?: () => void }).gc!();
/** Lets the observer's queued entries arrive. */
const settle = () => new Promise<void>((r) => setTimeout(r, 20));

export async function measureAllocation(mode: string, pass: () => Promise<void>, o: Options): Promise<AllocationResult> {
  for (let i = 0; i < o.warmup; i++) await pass();
  let minors = 0;
  let majors = 0;
  /** Start times of the collections seen (entries arrive later than the collection ran). */
  const times: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      times.push(e.startTime);
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) minors++;
      else majors++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  if (mode === 'bytes') {
    const bytesPerPass: number[] = [];
    for (let i = 0; i < o.passes; i++) {
      gc();
      await settle();
      const from = performance.now();
      const before = v8.getHeapStatistics().used_heap_size;
      await pass();
      const after = v8.getHeapStatistics().used_heap_size;
      const to = performance.now();
      await settle();
      await settle();
      if (times.some((t) => t >= from && t <= to)) throw new Error('a collection ran during a measured pass: the young generation is too small for it');
      bytesPerPass.push(after - before);
    }
    obs.disconnect();
    return { mode, lines: o.lines, bytesPerPass };
  }
  if (mode === 'scavenges') {
    gc();
    await settle();
    minors = 0;
    majors = 0;
    for (let i = 0; i < o.passes; i++) await pass();
    await settle();
    obs.disconnect();
    return { mode, lines: o.lines, scavenges: minors, majors };
  }
  obs.disconnect();
  const session = new Session();
  session.connect();
  gc();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
  for (let i = 0; i < o.passes; i++) await pass();
  const { profile } = await session.post('HeapProfiler.stopSampling');
  session.disconnect();
  const self = new Map<string, number>();
  const project = new Map<string, number>();
  const stacks = new Map<string, number>();
  const walk = (node: typeof profile.head, nearest: string, path: readonly string[]): void => {
    const f = node.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
    const mine = /\/(src|bench)\//.test(f.url) && !f.url.includes('node_modules') ? name : nearest;
    const chain = [name, ...path].slice(0, 5);
    if (node.selfSize > 0) {
      self.set(name, (self.get(name) ?? 0) + node.selfSize);
      project.set(mine, (project.get(mine) ?? 0) + node.selfSize);
      const key = chain.join(' < ');
      stacks.set(key, (stacks.get(key) ?? 0) + node.selfSize);
    }
    for (const c of node.children) walk(c, mine, chain);
  };
  walk(profile.head, '(outside the project)', []);
  const top = (m: Map<string, number>) => [...m].map(([k, v]) => [k, Math.round(v / o.passes)] as [string, number]).sort((a, b) => b[1] - a[1]).slice(0, 40);
  return { mode, lines: o.lines, self: top(self), project: top(project), stacks: top(stacks) };
}

function shortUrl(url: string): string {
  const i = url.search(/\/(src|bench|node_modules)\//);
  return i >= 0 ? url.slice(i + 1) : url.replace(/^node:/, '');
}
