import { describe, expect, it } from 'vitest';
import { MemoryDynoStore } from '../../src/dynos/dynoMemory.js';
import type { MemorySample } from '../../src/dynos/DynoRecord.js';
import { buildReport, formatReport } from '../../src/dynos/report.js';

/**
 * The leak report of a Fir app: instances are dyno names (a restart is a new name), Fir restarts
 * at 100 % of the quota with nothing logged, and the quota may be unknown.
 */
const HOUR = 3_600_000;
const T0 = Date.parse('2026-11-30T00:00:00Z');

/** One instance per name, one sample a minute from `startMb` rising `mbPerHour`, while below `stopMb`. */
function leaking(names: readonly string[], startMb: number, mbPerHour: number, stopMb: number, limitMb: number | undefined): MemorySample[] {
  const out: MemorySample[] = [];
  let at = T0;
  for (const name of names) {
    for (let v = startMb; v < stopMb; v += mbPerHour / 60) {
      out.push({ dyno: name, instance: name, at, valueMb: v, limitMb });
      at += 60_000;
    }
    at += 30_000; // the replacement's first sample, half a minute later
  }
  return out;
}

describe('a Fir app in the leak report', () => {
  it('per process type from Fir names: growth, time to the quota, and Fir\'s restarts at 100 %', async () => {
    const store = new MemoryDynoStore();
    const web = leaking(['web-5d9c8b7f6-aaaa1', 'web-5d9c8b7f6-bbbb2', 'web-7e8f9a0b1-cccc3'], 200, 40, 512, 512);
    // A worker without a limit metric (and no fir.memory_quota): it grows from 100 MB at 20 MB/h.
    const worker = leaking(['node-worker-5d9c8b7f6-dddd4'], 100, 20, 300, undefined);
    await store.write('fir-app', { samples: [...web, ...worker], events: [] });
    const r = buildReport('fir-app', await store.read('fir-app'), 7 * 24 * HOUR);

    const w = r.types.find((t) => t.processType === 'web')!;
    expect(w.generation).toBe('fir');
    expect(w.instances).toBe(3);
    expect(w.growthMbPerHour!.median).toBeGreaterThan(40 * 0.95);
    expect(w.growthMbPerHour!.median).toBeLessThan(40 * 1.05);
    expect(w.quotaMb).toBe(512);
    // 200 → 512 MB at 40 MB/h: 7.8 h; the first two ended there and were replaced, the newest is still the last one seen.
    expect(w.hoursTo100).toBeCloseTo(7.8, 0);
    expect(w.hoursTo90).toBeCloseTo((0.9 * 512 - 200) / 40, 0);
    expect(w.quotaRestarts).toBe(2);
    expect(w.sentence).toMatch(/^web grows ~40 MB\/h and reaches its 512 MB quota ~7\.\d h after start; Fir restarted it at its memory limit 2 times; mallet did not act on it/);

    const k = r.types.find((t) => t.processType === 'node-worker')!;
    expect(k.quotaMb).toBeUndefined();
    expect(k.growthMbPerHour!.median).toBeCloseTo(20, 0);
    expect(k.quotaRestarts).toBe(0);
    expect(k.sentence).toContain('node-worker grows ~20 MB/h; quota unknown (no memory-limit metric arrived: set fir.memory_quota for it)');
    expect(formatReport(r)).toContain('restarts at the memory limit 2 (');
  });

  it('a Fir instance that stopped well below its quota, or is still the newest, is no restart at the quota', async () => {
    const store = new MemoryDynoStore();
    const low = leaking(['web-5d9c8b7f6-aaaa1'], 200, 40, 400, 512);
    const next = leaking(['web-5d9c8b7f6-bbbb2'], 200, 40, 511, 512).map((s) => ({ ...s, at: s.at + 6 * HOUR }));
    await store.write('fir-app', { samples: [...low, ...next], events: [] });
    const w = buildReport('fir-app', await store.read('fir-app'), 7 * 24 * HOUR).types[0]!;
    expect(w.quotaRestarts).toBe(0);
    expect(w.sentence).not.toContain('restarted it at its memory limit');
  });

  it('an R15 line is a restart at the memory limit, counted once with the Fir end it explains', async () => {
    const store = new MemoryDynoStore();
    const web = leaking(['web-5d9c8b7f6-aaaa1', 'web-5d9c8b7f6-bbbb2'], 200, 40, 512, 512);
    const end = web.filter((s) => s.dyno === 'web-5d9c8b7f6-aaaa1').at(-1)!.at;
    const cedar = leaking(['worker.1'], 300, 60, 700, 512).map((s) => ({ ...s, instance: 'd97d0ea7-cf3d-411b-b453-d2943a50b456' }));
    await store.write('app', {
      samples: [...web, ...cedar],
      events: [
        { kind: 'quota-restart', dyno: 'web-5d9c8b7f6-aaaa1', at: end + 1000, detail: 'R15' },
        { kind: 'quota-restart', dyno: 'worker.1', at: T0 + 7 * HOUR, detail: 'R15' },
      ],
    });
    const r = buildReport('app', await store.read('app'), 7 * 24 * HOUR);
    expect(r.types.find((t) => t.processType === 'web')!.quotaRestarts).toBe(1);
    const worker = r.types.find((t) => t.processType === 'worker')!;
    expect(worker.generation).toBe('cedar');
    expect(worker.quotaRestarts).toBe(1);
    expect(worker.sentence).toContain('Heroku restarted it at its memory limit 1 time;');
  });

  it('an app with no samples is told how to get them on Cedar and on Fir', () => {
    const r = buildReport('quiet', { instances: [], events: [] }, 7 * 24 * HOUR);
    expect(r.advice).toContain('heroku labs:enable log-runtime-metrics -a quiet');
    expect(r.advice).toContain('--signals logs,metrics');
  });
});
