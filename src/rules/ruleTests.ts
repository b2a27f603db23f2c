import { z } from 'zod';
import { DURATION_PATTERN, parseDuration } from './duration.js';
import type { DrainEvent } from '../ingest/DrainEvent.js';

/**
 * The `mallet test` file, after `promtool test rules`: a rules file, and tests of input lines at
 * relative times with the firings they must cause.
 *
 *   rules: rules.example.yml          # relative to this file
 *   tests:
 *     - name: two R14 stop Puma
 *       app: acme-shop                # default acme-shop
 *       lines:
 *         - { after: 0s, line: 'heroku[web.1]: Error R14 (Memory quota exceeded)' }
 *         - { after: 30s, source: heroku, process: web.1, message: 'Error R14 (Memory quota exceeded)' }
 *         - { after: 1m, line: '...', repeat: 3, every: 20s }
 *       expect:
 *         - at: 30s
 *           rule: web-memory-quota
 *           target: web.1
 *           actions: [ { type: redis-stop-key, key: 'puma::stop::web.1', ttl: 60s } ]
 */
const duration = z.string().regex(DURATION_PATTERN, { error: 'expected a duration like 30s' });

const lineSchema = z.strictObject({
  after: duration,
  line: z.string().optional(),
  source: z.string().optional(),
  process: z.string().optional(),
  message: z.string().optional(),
  repeat: z.number().int().min(1).max(10_000).optional(),
  every: duration.optional(),
}).refine((l) => (l.line === undefined) !== (l.process === undefined && l.message === undefined), { error: 'give either line, or process and message' });

const expectSchema = z.strictObject({
  at: duration,
  rule: z.string(),
  target: z.string(),
  actions: z.array(z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]))).optional(),
});

export const ruleTestsSchema = z.strictObject({
  rules: z.string(),
  tests: z.array(z.strictObject({
    name: z.string(),
    app: z.string().optional(),
    start: z.string().optional(),
    lines: z.array(lineSchema),
    expect: z.array(expectSchema),
  })).min(1),
});

export type RuleTests = z.output<typeof ruleTestsSchema>;
export type RuleTest = RuleTests['tests'][number];
export type ExpectedFiring = z.output<typeof expectSchema>;

/** `heroku logs` form: optional timestamp, `source[process]: message`. */
const HEROKU_LOGS = /^(?:(\S+) )?([A-Za-z0-9_.-]+)\[([^\]\s]+)\]: ?(.*)$/s;

/** The test's lines as drain events, at start + after (each repeat `every` later). */
export function testEvents(test: RuleTest, index: number): { events: DrainEvent[]; start: number; errors: string[] } {
  const start = test.start ? Date.parse(test.start) : Date.UTC(2024, 10, 14);
  const errors: string[] = [];
  if (!Number.isFinite(start)) errors.push(`tests[${index}].start: not an RFC 3339 time`);
  const events: DrainEvent[] = [];
  test.lines.forEach((l, j) => {
    let source = l.source ?? 'heroku';
    let proc = l.process ?? '';
    let message = l.message ?? '';
    if (l.line !== undefined) {
      const m = HEROKU_LOGS.exec(l.line);
      if (!m) {
        errors.push(`tests[${index}].lines[${j}].line: expected 'source[process]: message' (heroku logs form)`);
        return;
      }
      [source, proc, message] = [m[2]!, m[3]!, m[4]!];
    }
    const every = parseDuration(l.every ?? '0s')!;
    for (let k = 0; k < (l.repeat ?? 1); k++) {
      const at = start + parseDuration(l.after)! + k * every;
      events.push({
        app: test.app ?? 'acme-shop',
        id: `test:${index}:${j}:${k}`,
        receivedAt: at,
        timestamp: new Date(at).toISOString().replace('Z', '+00:00'),
        source,
        process: proc,
        message,
      });
    }
  });
  events.sort((a, b) => a.receivedAt - b.receivedAt);
  return { events, start, errors };
}
