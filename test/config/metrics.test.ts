import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';

/** SPEC §7: metric names and labels are part of the contract. */
const CONTRACT: Array<[name: string, type: string, labels: string[]]> = [
  ['mallet_lines_total', 'counter', ['app', 'source']],
  ['mallet_frames_invalid_total', 'counter', ['reason']],
  ['mallet_drain_requests_total', 'counter', ['status']],
  ['mallet_drain_request_duration_seconds', 'histogram', []],
  ['mallet_rule_matches_total', 'counter', ['rule']],
  ['mallet_firings_total', 'counter', ['rule', 'outcome']],
  ['mallet_actions_total', 'counter', ['type', 'outcome']],
  ['mallet_trigger_latency_seconds', 'histogram', []],
];

describe('metrics (SPEC §7)', () => {
  const metrics = createMetrics(undefined, { defaults: true });

  it.each(CONTRACT)('%s is a %s with labels %j', async (name, type, labels) => {
    const metric = metrics.registry.getSingleMetric(name) as unknown as { labelNames: string[]; get(): Promise<{ type: string }> } | undefined;
    expect(metric).toBeDefined();
    expect((await metric!.get()).type).toBe(type);
    expect([...metric!.labelNames].sort()).toEqual([...labels].sort());
  });

  it('includes the process defaults', async () => {
    expect(await metrics.registry.metrics()).toMatch(/^process_cpu_user_seconds_total /m);
  });
});
