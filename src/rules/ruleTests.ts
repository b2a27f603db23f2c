import { z } from 'zod';
import type { $ZodIssue } from 'zod/v4/core';
import { DURATION_PATTERN, parseDuration } from './duration.js';
import { ACTION_TYPES } from './schema.js';
import { sortErrors, type RuleError } from './load.js';
import { describeZodIssue, parseWithPositions, type YamlPath } from './yamlPositions.js';
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
const durationError = (iss: { input?: unknown }) => `expected a duration like 30s, got ${JSON.stringify(iss.input)}`;
// A bare number (`every: 20`) is the likely slip, so it gets the same message as `20 seconds`.
const duration = z.string({ error: durationError }).regex(DURATION_PATTERN, { error: durationError });

const repeatError = 'expected a whole number from 1 to 10000';
const GROW = /^-?\d{1,6}(?:\.\d{1,2})?MB$/;

/** `heroku logs` form: optional timestamp, `source[process]: message`. */
const HEROKU_LOGS = /^(?:(\S+) )?([A-Za-z0-9_.-]+)\[([^\]\s]+)\]: ?(.*)$/s;

const lineSchema = z.strictObject({
  after: duration,
  line: z.string().regex(HEROKU_LOGS, { error: "expected 'source[process]: message' (heroku logs form)" }).optional(),
  source: z.string().optional(),
  process: z.string().optional(),
  message: z.string().optional(),
  /** An OTLP/JSON export (or a capture file), relative to the tests file: its records, at this time. */
  otlp: z.string().min(1).optional(),
  repeat: z.number({ error: repeatError }).int({ error: repeatError }).min(1, { error: repeatError }).max(10_000, { error: repeatError }).optional(),
  every: duration.optional(),
  /** Per repeat, add this to a field of the line (`{ "sample#memory_total": 2MB }`): a rising series. */
  grow: z.record(z.string().regex(/^[A-Za-z0-9_#.-]{1,100}$/, { error: 'expected a field name' }), z.string().regex(GROW, { error: 'expected a step like 2MB, 0.5MB or -1MB' })).optional(),
}).refine((l) => [l.line !== undefined, l.process !== undefined || l.message !== undefined, l.otlp !== undefined].filter(Boolean).length === 1, { error: 'give one of line, process and message, or otlp' });

const expectSchema = z.strictObject({
  at: duration,
  rule: z.string(),
  target: z.string(),
  actions: z.array(z.object({ type: z.enum(ACTION_TYPES).optional() }).catchall(z.union([z.string(), z.number(), z.boolean()]))).optional(),
});

export const ruleTestsSchema = z.strictObject({
  rules: z.string(),
  tests: z.array(z.strictObject({
    name: z.string(),
    app: z.string().optional(),
    start: z.string().refine((s) => Number.isFinite(Date.parse(s)), { error: 'expected an RFC 3339 time like 2024-11-14T00:00:00Z' }).optional(),
    lines: z.array(lineSchema),
    expect: z.array(expectSchema),
  })).min(1, { error: 'expected at least one test' }),
});

export type RuleTests = z.output<typeof ruleTestsSchema>;
export type RuleTest = RuleTests['tests'][number];
export type ExpectedFiring = z.output<typeof expectSchema>;

/** A tests file that parsed, with the means to report later findings (unknown rules) at their place. */
export interface LoadedRuleTests {
  readonly tests: RuleTests;
  errorAt(path: YamlPath, message: string, key?: boolean): RuleError;
}

export type RuleTestsResult = { ok: true; loaded: LoadedRuleTests } | { ok: false; errors: RuleError[] };

/** Reads a tests file as the rules file is read: every mistake at once, each at `file:line:col`. */
export function loadRuleTestsText(text: string, file: string): RuleTestsResult {
  const { doc, syntaxErrors, positionOf } = parseWithPositions(text);
  if (syntaxErrors.length > 0) return { ok: false, errors: sortErrors(syntaxErrors.map((e) => ({ file, ...e }))) };
  const errorAt = (path: YamlPath, message: string, key = false): RuleError =>
    ({ file, ...positionOf(path, key), message: withTestName(doc.getIn(['tests', path[1] ?? -1, 'name']), path, message) });
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const parsed = ruleTestsSchema.safeParse(data);
  if (!parsed.success) {
    const errors = parsed.error.issues.flatMap((issue) => describeTestsIssue(issue, data).map(([path, message, key]) => errorAt(path, message, key)));
    return { ok: false, errors: sortErrors(errors) };
  }
  return { ok: true, loaded: { tests: parsed.data, errorAt } };
}

/** Every `expect` naming a rule the rules file lacks: such a test could never pass, so say why. */
export function unknownRuleErrors(loaded: LoadedRuleTests, ruleNames: ReadonlySet<string>, rulesFile: string): RuleError[] {
  const errors: RuleError[] = [];
  for (const [i, t] of loaded.tests.tests.entries()) {
    for (const [k, e] of t.expect.entries()) {
      if (!ruleNames.has(e.rule)) errors.push(loaded.errorAt(['tests', i, 'expect', k, 'rule'], `unknown rule ${JSON.stringify(e.rule)} (not in ${rulesFile})`));
    }
  }
  return sortErrors(errors);
}

const NAMELESS = new Set<string>(['invalid_format', 'custom', 'too_small', 'too_big']);

function describeTestsIssue(issue: $ZodIssue, data: unknown): [YamlPath, string, boolean][] {
  return describeZodIssue(issue, data).map(([path, message, key]) => {
    const last = path[path.length - 1];
    // Format and refinement messages do not name their key; the others already do.
    const named = NAMELESS.has(issue.code) && typeof last === 'string';
    return [path, named ? `${last}: ${message}` : message, key];
  });
}

function withTestName(name: unknown, path: YamlPath, message: string): string {
  if (path[0] !== 'tests' || typeof path[1] !== 'number') return message;
  return typeof name === 'string' && name.length <= 100 ? `test ${JSON.stringify(name)}: ${message}` : `tests[${path[1]}]: ${message}`;
}

/** What an `otlp:` line holds: the messages the receiver makes of the file (loaded by the caller). */
export type OtlpLineMessages = (file: string, at: number) => readonly {
  readonly appName: string; readonly procId: string; readonly message: string;
  /** After the file's earliest record: a file of several samples keeps their spacing. */
  readonly offsetMs?: number;
}[];

/**
 * The test's lines as drain events, at start + after (each repeat `every` later); the file was
 * checked when loaded. An `otlp:` line gives one event per message of its file, at its time plus
 * the message's offset from the file's earliest (one export: all at its time).
 */
export function testEvents(test: RuleTest, index: number, otlp?: OtlpLineMessages): { events: DrainEvent[]; start: number } {
  const start = test.start ? Date.parse(test.start) : Date.UTC(2024, 10, 14);
  const events: DrainEvent[] = [];
  test.lines.forEach((l, j) => {
    let source = l.source ?? 'heroku';
    let proc = l.process ?? '';
    let message = l.message ?? '';
    if (l.line !== undefined) {
      const m = HEROKU_LOGS.exec(l.line)!;
      [source, proc, message] = [m[2]!, m[3]!, m[4]!];
    }
    const every = parseDuration(l.every ?? '0s')!;
    for (let k = 0; k < (l.repeat ?? 1); k++) {
      const at = start + parseDuration(l.after)! + k * every;
      if (l.otlp !== undefined) {
        (otlp?.(l.otlp, at) ?? []).forEach((m, n) => {
          const t = at + Math.max(0, m.offsetMs ?? 0);
          const timestamp = new Date(t).toISOString().replace('Z', '+00:00');
          events.push({ app: test.app ?? 'acme-shop', id: `test:${index}:${j}:${k}:${n}`, receivedAt: t, timestamp, source: m.appName, process: m.procId, message: m.message });
        });
        continue;
      }
      const text = l.grow === undefined ? message : grown(message, l.grow, k);
      events.push({
        app: test.app ?? 'acme-shop',
        id: `test:${index}:${j}:${k}`,
        receivedAt: at,
        timestamp: new Date(at).toISOString().replace('Z', '+00:00'),
        source,
        process: proc,
        message: text,
      });
    }
  });
  events.sort((a, b) => a.receivedAt - b.receivedAt);
  return { events, start };
}

/** The line with `key=<n>MB` of each `grow` field raised by k steps (2 decimals, as Heroku writes MB). */
function grown(message: string, grow: Readonly<Record<string, string>>, k: number): string {
  let out = message;
  for (const [key, step] of Object.entries(grow)) {
    const by = Number(step.slice(0, -2));
    const esc = key.replace(/[.#-]/g, (c) => '\\' + c);
    out = out.replace(new RegExp(`(^| )${esc}=(-?\\d+(?:\\.\\d+)?)MB`), (_m, sp: string, n: string) => `${sp}${key}=${(Number(n) + k * by).toFixed(2)}MB`);
  }
  return out;
}
