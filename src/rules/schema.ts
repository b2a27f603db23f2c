import { z } from 'zod';
import { DURATION_PATTERN } from './duration.js';
import { HEROKU_APP_NAME } from '../herokuAppName.js';

/**
 * The shape of the rules file (SPEC §4), checked by zod over the parsed YAML. Structure, types,
 * unknown keys and simple formats are caught here; what needs compiling (RE2, globs, templates,
 * `${VAR}`, units, duplicates) is checked in compile.ts. Every issue keeps its path so load.ts can
 * point at the YAML node.
 */
const duration = z.string({ error: 'expected a duration like 30s, 5m, 1h (<integer><ms|s|m|h|d>)' })
  .regex(DURATION_PATTERN, { error: 'bad duration: expected <integer><ms|s|m|h|d>, e.g. 30s, 5m, 1h' });
const text = z.string();
const count = z.number({ error: 'expected a positive integer' }).int({ error: 'expected a positive integer' }).min(1, { error: 'expected a positive integer' });

const stopKey = z.strictObject({
  type: z.literal('redis-stop-key'),
  key: text.optional(),
  value: text.optional(),
  ttl: duration.optional(),
  redis_url: text.optional(),
  /** false: done once written, for a consumer that reads the key without deleting it. */
  watch: z.boolean().optional(),
});
const sidekiqStop = z.strictObject({
  type: z.literal('sidekiq-stop'),
  hostname: text.optional(),
  tag: text.optional(),
  namespace: z.string().regex(/^[A-Za-z0-9:._-]{1,100}$/, { error: 'namespace: expected [A-Za-z0-9:._-]{1,100}' }).optional(),
  quiet_timeout: duration.optional(),
  stop_timeout: duration.optional(),
  redis_url: text.optional(),
});
const herokuRestart = z.strictObject({
  type: z.literal('heroku-restart'),
  scope: z.enum(['dyno', 'process-type']).optional(),
  dyno: text.optional(),
  token: text.optional(),
});
const notify = z.strictObject({
  type: z.literal('notify'),
  url: text,
  text: text.optional(),
});

export const ACTION_TYPES = ['redis-stop-key', 'sidekiq-stop', 'heroku-restart', 'notify'] as const;
const action = z.discriminatedUnion('type', [stopKey, sidekiqStop, herokuRestart, notify]);

/** `predict:` (src/rules/predict.ts checks the field names, `reaches` and the bounds). */
export const predictSchema = z.strictObject({
  value: z.string({ error: 'expected a field name like sample#memory_total' }),
  reaches: z.string({ error: 'expected a limit like "100% sample#memory_quota" or "512MB"' }),
  within: duration,
  over: duration,
  min_samples: count.optional(),
});

const fieldCondition = z.union([z.string(), z.number()], { error: 'expected a value or a condition like ">= 29000ms"' });

export const ruleSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9-]+$/, { error: 'rule name must match [a-z0-9-]+' }),
  description: text.optional(),
  match: z.strictObject({
    source: z.enum(['heroku', 'app', 'any']).optional(),
    process: text.optional(),
    message: text.optional(),
    fields: z.record(z.string(), fieldCondition).optional(),
  }),
  target: text.optional(),
  threshold: z.strictObject({ count, within: duration.optional() }).optional(),
  predict: predictSchema.optional(),
  cooldown: duration.optional(),
  /** Matches from an instance this soon after its start or the app's release count as `grace` (src/rules/grace.ts). */
  grace: z.strictObject({ after_start: duration.optional(), after_release: duration.optional() }).optional(),
  dry_run: z.boolean().optional(),
  actions: z.array(action).min(1, { error: 'a rule needs at least one action' }),
  /** Escalation: actions run once when a step of the rule's job has failed for good. */
  on_failure: z.array(action).min(1, { error: 'on_failure needs at least one action (or leave it out)' }).optional(),
});

const app = z.strictObject({
  drain_tokens: z.array(z.string().regex(/^d\.[0-9a-f-]{36}$/, { error: 'drain token must look like d.<uuid>' })).optional(),
  drain_password: text.optional(),
  redis_url: text.optional(),
  heroku_api_token: text.optional(),
  /** Fir telemetry drains: the secret of the `Authorization: Bearer` header (an env reference). */
  telemetry_token: text.optional(),
});

const attributeName = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, { error: 'attribute name: expected [A-Za-z0-9._-]{1,100}' });
const metricGlobs = z.array(z.string()).min(1, { error: 'expected at least one metric-name glob' });
/** The Fir telemetry mapping (src/rules/FirMapping.ts holds the defaults). */
const fir = z.strictObject({
  dyno_attributes: z.array(attributeName).min(1, { error: 'expected at least one attribute name' }).optional(),
  service_attribute: attributeName.optional(),
  platform_services: z.record(z.string().min(1).max(100), z.string().regex(/^[a-z][a-z0-9._-]{0,63}$/, { error: 'process: expected [a-z][a-z0-9._-]{0,63}' })).optional(),
  metrics: z.strictObject({ memory_usage: metricGlobs.optional(), memory_limit: metricGlobs.optional(), cpu: metricGlobs.optional() }).optional(),
  /** Process type (or `*`) → memory limit, used when no limit metric arrives; checked in FirMapping. */
  memory_quota: z.record(z.string().max(64), z.string().max(40)).optional(),
});

const window = z.strictObject({ max_firings: count.optional(), within: duration.optional() });

export const rulesFileSchema = z.strictObject({
  version: z.literal(1, { error: 'version must be 1' }),
  apps: z.record(z.string().regex(HEROKU_APP_NAME, { error: 'app name must be a Heroku app name: lowercase letters, digits and dashes, starting with a letter, 2 to 30 characters' }), app.nullable()).optional(),
  /** Each rule is checked on its own (ruleSchema) so one broken rule does not hide the others' errors. */
  rules: z.array(z.unknown()),
  limits: z.strictObject({
    per_app: window.optional(),
    per_process_type: z.strictObject({ concurrency: count.optional() }).optional(),
    flapping: window.optional(),
  }).optional(),
  fir: fir.optional(),
});

export type RulesFile = z.output<typeof rulesFileSchema>;
export type RawRule = z.output<typeof ruleSchema>;
export type RawAction = RawRule['actions'][number];
