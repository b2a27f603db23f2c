import { describe, expect, it } from 'vitest';
import { MemoryDynoStore } from '../../src/dynos/dynoMemory.js';
import { leakReportSection } from '../../src/dynos/reportSection.js';
import type { MemorySample } from '../../src/dynos/DynoRecord.js';
import { UUID_A } from './events.js';

describe('the status page leak-report section', () => {
  it('has a sentence and a chart with remediation marks per type, and advice for an app without metrics', async () => {
    const store = new MemoryDynoStore();
    const T0 = Date.parse('2024-11-14T00:00:00Z');
    const samples: MemorySample[] = [];
    for (let i = 0; i < 600; i++) samples.push({ dyno: 'web.1', instance: UUID_A, at: T0 + i * 60_000, valueMb: 150 + (20 * i) / 60, limitMb: 512 });
    await store.write('acme-shop', { samples, events: [{ kind: 'remediation', dyno: 'web.1', at: T0 + 500 * 60_000, detail: 'web-memory-high/redis-stop-key' }] });
    const s = await leakReportSection(store, ['acme-shop', 'quiet-app'], 7 * 86_400_000);
    expect(s.id).toBe('leaks');
    expect(s.html).toContain('<p>web grows ~20 MB/h and would reach its 512 MB quota ~18.1 h after start; mallet stopped or restarted it 1 time in 0.4 days.</p>');
    expect(s.html).toMatch(/<svg [^>]*aria-label="web memory over time"/);
    expect(s.html).toContain('<title>2024-11-14T08:20:00.000Z web.1 web-memory-high/redis-stop-key</title>');
    expect(s.html).toContain('<code>heroku labs:enable log-runtime-metrics -a quiet-app</code>');
    expect(s.html).not.toContain('`');
  });
});
