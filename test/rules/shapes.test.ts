import { describe, expect, it } from 'vitest';
import { hasShape, isFirDyno, processTypeOf, restartStableTarget } from '../../src/rules/shapes.js';
import { redisKeys } from '../../src/keys.js';

/** Fir dyno names (../shared/docs/heroku-fir-telemetry.md §3) next to Cedar's. */
describe('dyno shapes', () => {
  it.each([
    ['web.1', 'web', false],
    ['worker_2.13', 'worker_2', false],
    ['web-12a34b56d-e78f9', 'web', true],
    ['worker-23z34x56y-w78k9', 'worker', true],
    ['web-848cd4f64d-pvpr2', 'web', true],
    ['node-worker-5d9c8b7f6-q2x4z', 'node-worker', true],
    ['web.4ed720fa31-ur8z1', 'web', true],
    ['node-worker.4ed720fa31-w4llb', 'node-worker', true],
  ] as const)('%s is a dyno of process type %s (Fir: %s)', (dyno, type, fir) => {
    expect(hasShape('dyno', dyno)).toBe(true);
    expect(processTypeOf(dyno)).toBe(type);
    expect(hasShape('processType', type)).toBe(true);
    expect(isFirDyno(dyno)).toBe(fir);
  });

  it.each(['web', 'web-1', 'web-12a34b56d', 'web-12a34b56d-e78f', 'web-12a34b56d-e78f9x', 'Web-12a34b56d-e78f9', 'web-12a34b56d-e78f9\n', 'web/12a34b56d-e78f9', 'web-12a34b56d_e78f9'])('refuses %j as a dyno', (dyno) => {
    expect(hasShape('dyno', dyno)).toBe(false);
  });

  it('keys the cooldown and flapping of a Fir dyno by its process type, Cedar dynos by name', () => {
    const keys = redisKeys('p');
    const before = keys.threshold('r', 'my-app', 'web-12a34b56d-e78f9');
    const after = keys.threshold('r', 'my-app', 'web-7f6e5d4c3-a1b2c');
    expect(after.cooldown).toBe(before.cooldown);
    expect(after.window).not.toBe(before.window);
    expect(keys.flapping('my-app', 'web-7f6e5d4c3-a1b2c')).toBe(keys.flapping('my-app', 'web-12a34b56d-e78f9'));
    expect(keys.threshold('r', 'my-app', 'web.1').cooldown).not.toBe(keys.threshold('r', 'my-app', 'web.2').cooldown);
    expect(keys.threshold('r', 'my-app', 'worker-7f6e5d4c3-a1b2c').cooldown).not.toBe(before.cooldown);
    expect(restartStableTarget('web.1')).toBe('web.1');
  });
});

describe('Fir dyno names through the actions of a firing', () => {
  it('stop key, Sidekiq hostname and both restart scopes resolve for a Fir dyno (Cedar shapes alone rejected them)', async () => {
    const { loadRulesText } = await import('../../src/rules/load.js');
    const { DryEvaluator } = await import('../../src/rules/dryRun.js');
    const r = loadRulesText(`version: 1
rules:
  - name: worker-memory
    match: { process: "worker-*", message: '^Error R14 ' }
    actions:
      - { type: redis-stop-key }
      - { type: sidekiq-stop }
      - { type: heroku-restart }
      - { type: heroku-restart, scope: process-type }
`, 'r.yml', {});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const dyno = 'worker-23z34x56y-w78k9';
    const { firings } = await new DryEvaluator(r.ruleSet).evaluate([
      { app: 'fir-app', id: 'e1', receivedAt: 1, timestamp: '2026-12-01T00:00:00+00:00', source: 'heroku', process: dyno, message: 'Error R14 (Memory quota exceeded)' },
    ]);
    expect(firings).toHaveLength(1);
    expect(firings[0]!.processType).toBe('worker');
    expect(firings[0]!.actions).toMatchObject([
      { type: 'redis-stop-key', key: `puma::stop::${dyno}` },
      { type: 'sidekiq-stop', hostname: dyno },
      { type: 'heroku-restart', scope: 'dyno', dyno },
      { type: 'heroku-restart', scope: 'process-type', dyno: 'worker' },
    ]);
  });
});
