import RE2 from 're2';
import { DEFAULT_LIMITS, type AppEntry, type Limits } from './RuleSet.js';
import type { ActionTemplate, CompiledRule, CompiledRuleSet, RuleGrace } from './CompiledRule.js';
import type { RawAction, RawRule, RulesFile } from './schema.js';
import { RULE_BOUNDS, RULE_DEFAULTS } from './defaults.js';
import { parseDuration } from './duration.js';
import { compileGlob } from './glob.js';
import { literalBytes, requiredLiteral } from './literal.js';
import { parseFieldCondition, type FieldCondition } from './fieldCondition.js';
import { actionTemplates, parseTemplate, templateUses, type Template } from './template.js';
import { envRefs, expandEnv, unsetRefs } from './env.js';
import { compileFirMapping } from './FirMapping.js';
import { compilePredict, type RawPredict } from './predict.js';
import { predictSchema } from './schema.js';
import { salvage } from './salvage.js';
import { randomBytes } from 'node:crypto';
import { secretDigest } from '../basicAuth.js';

import type { YamlPath } from './yamlPositions.js';

/** Collects a problem at a path of the rules file; `key` points at the key rather than its value. */
export type Report = (path: YamlPath, message: string, opts?: { key?: boolean }) => void;

const NAMED_GROUP = /\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/g;

/**
 * Turns a schema-valid rules file into the runtime form, reporting every problem found (not just
 * the first). Returns undefined when anything was reported.
 */
export function compileRules(
  file: RulesFile, rawRules: readonly (RawRule | undefined)[], path: string,
  env: Readonly<Record<string, string | undefined>>, report: Report,
): CompiledRuleSet | undefined {
  let failed = false;
  const fail: Report = (p, m, o) => { failed = true; report(p, m, o); };

  const apps = compileApps(file, env, fail);
  const limits = compileLimits(file);
  const fir = compileFirMapping(file.fir, fail);
  const seen = new Map<string, number>();
  const rules: CompiledRule[] = [];
  file.rules.forEach((data, i) => {
    const name = (data as { name?: unknown } | null)?.name;
    if (typeof name === 'string') {
      const first = seen.get(name);
      if (first !== undefined) fail(['rules', i, 'name'], `duplicate rule name (first defined as rules[${first}])`);
      else seen.set(name, i);
    }
    // A rule the schema refused arrives salvaged (its valid parts) or not at all; either way the
    // loader has reported it, and whatever remains is still compiled for its own mistakes.
    const raw = rawRules[i];
    if (!raw) {
      failed = true;
      return;
    }
    // A `predict:` the schema refused in part (a bad duration) is still checked for the rest, and
    // still makes `{{prediction}}` known to the rule's templates.
    const predictData = (data as { predict?: unknown } | null)?.predict;
    const predict = raw.predict ?? (predictData === undefined ? undefined : salvage(predictSchema.partial(), predictData) ?? {});
    const rule = compileRule(raw, predict, ['rules', i], env, fail);
    if (rule) rules.push(rule);
  });
  if (failed) return undefined;

  const tokens = new Map<string, string>();
  for (const app of apps?.values() ?? []) for (const t of app.drainTokens) tokens.set(t, app.name);
  return Object.freeze({
    path,
    apps,
    limits,
    rules: Object.freeze(rules),
    fir,
    appForDrainToken: (token: string) => tokens.get(token),
  });
}

function regexError(e: unknown): string {
  return `regex does not compile under RE2 (no backreferences or lookaround): ${(e as Error).message}`;
}

function compileApps(file: RulesFile, env: Readonly<Record<string, string | undefined>>, fail: Report): ReadonlyMap<string, AppEntry> | undefined {
  if (!file.apps) return undefined;
  const apps = new Map<string, AppEntry>();
  const owner = new Map<string, string>();
  const telemetryOwner = new Map<string, string>();
  for (const [name, raw] of Object.entries(file.apps)) {
    (raw?.drain_tokens ?? []).forEach((t, j) => {
      const other = owner.get(t);
      if (other !== undefined) fail(['apps', name, 'drain_tokens', j], `drain token already belongs to app ${other}`);
      owner.set(t, name);
    });
    if (raw?.redis_url !== undefined) checkSecret(raw.redis_url, REDIS_URL, ['apps', name, 'redis_url'], env, fail);
    if (raw?.heroku_api_token !== undefined) checkSecret(raw.heroku_api_token, APP_TOKEN, ['apps', name, 'heroku_api_token'], env, fail);
    let telemetryTokenDigest: Buffer | undefined;
    if (raw?.telemetry_token !== undefined) {
      const at = ['apps', name, 'telemetry_token'];
      if (checkSecret(raw.telemetry_token, TELEMETRY_TOKEN, at, env, fail)) {
        const digest = secretDigest(expandEnv(raw.telemetry_token, env));
        const other = telemetryOwner.get(digest.toString('hex'));
        // The token decides the app, so two apps cannot share one.
        if (other !== undefined) fail(at, `telemetry token already belongs to app ${other}`);
        telemetryOwner.set(digest.toString('hex'), name);
        telemetryTokenDigest = digest;
      }
    }
    const drainPasswordDigest = raw?.drain_password === undefined ? undefined : drainPassword(raw.drain_password, ['apps', name, 'drain_password'], env, fail);
    apps.set(name, Object.freeze({
      name,
      drainTokens: Object.freeze([...(raw?.drain_tokens ?? [])]),
      ...(drainPasswordDigest !== undefined ? { drainPasswordDigest } : {}),
      ...(raw?.redis_url !== undefined ? { redisUrlRef: raw.redis_url } : {}),
      ...(raw?.heroku_api_token !== undefined ? { herokuTokenRef: raw.heroku_api_token } : {}),
      ...(telemetryTokenDigest !== undefined ? { telemetryTokenDigest } : {}),
    }));
  }
  return apps;
}

/**
 * An app's own drain password: a `${VAR}` reference (a literal would sit in the file for anyone
 * who reads it), expanded here once and kept only as its digest. The rules of
 * `MALLET_DRAIN_PASSWORD` apply (SPEC §2: 8 characters at least, no `:`); messages never show it.
 */
function drainPassword(ref: string, at: YamlPath, env: Readonly<Record<string, string | undefined>>, fail: Report): Buffer | undefined {
  const refs = envRefs(ref);
  if (refs.length === 0) {
    fail(at, 'drain_password must be an environment reference like ${MY_APP_DRAIN_PASSWORD}: passwords are secrets');
    return undefined;
  }
  // load.ts has already reported each unset variable at this position (or was told not to, for
  // `mallet check --allow-unset-env`): fail closed, with a digest no password matches, so an app
  // that names a password of its own is never opened by the shared one instead.
  if (unsetRefs(refs, env).length > 0) return secretDigest(randomBytes(32).toString('hex'));
  const value = expandEnv(ref, env);
  const names = refs.map((n) => '${' + n + '}').join(', ');
  if (value.length < 8) fail(at, `drain_password in ${names}: use at least 8 characters`);
  else if (value.includes(':')) fail(at, `drain_password in ${names} must not contain ":" (logplex splits the drain URL userinfo on it)`);
  else return secretDigest(value);
  return undefined;
}

function compileLimits(file: RulesFile): Limits {
  const l = file.limits;
  const ms = (d: string | undefined, fallback: number) => (d === undefined ? fallback : parseDuration(d)!);
  return Object.freeze({
    perApp: Object.freeze({
      maxFirings: l?.per_app?.max_firings ?? DEFAULT_LIMITS.perApp.maxFirings,
      withinMs: ms(l?.per_app?.within, DEFAULT_LIMITS.perApp.withinMs),
    }),
    perProcessType: Object.freeze({ concurrency: l?.per_process_type?.concurrency ?? DEFAULT_LIMITS.perProcessType.concurrency }),
    flapping: Object.freeze({
      maxFirings: l?.flapping?.max_firings ?? DEFAULT_LIMITS.flapping.maxFirings,
      withinMs: ms(l?.flapping?.within, DEFAULT_LIMITS.flapping.withinMs),
    }),
  });
}

/** What a secret-bearing value must expand to, and what it may be written as. */
interface SecretKind {
  readonly shape: RegExp;
  readonly what: string;
  /** Why a literal value is refused, or undefined when this literal may stay in job data. */
  literalError(value: string): string | undefined;
}

// Job data is shown on the dashboard (SPEC §5), and a literal is copied into it as is.
const DASHBOARD = 'job data is shown on the dashboard';
const mustBeRef = (name: string, example: string, why: string) => () =>
  `${name} must be an environment reference like \${${example}}: ${why} and ${DASHBOARD}`;

const REDIS_URL: SecretKind = {
  shape: /^rediss?:\/\//,
  what: 'a redis:// or rediss:// URL',
  // `redis://localhost:6379` holds nothing secret; userinfo or a password parameter does.
  literalError: (v) => (/^[a-z]+:\/\/[^/?#]*@|[?&]password=/i.test(v)
    ? `redis_url with a password must be an environment reference like \${MY_APP_REDIS_URL}: passwords are secrets and ${DASHBOARD}`
    : undefined),
};
const NOTIFY_URL: SecretKind = {
  shape: /^https?:\/\/[^\s/]+/, what: 'an http(s):// URL',
  literalError: mustBeRef('notify url', 'SLACK_WEBHOOK_URL', 'webhook URLs are secrets'),
};
const ACTION_TOKEN: SecretKind = {
  shape: /^\S+$/, what: 'a token',
  literalError: mustBeRef('token', 'HEROKU_API_TOKEN', 'API tokens are secrets'),
};
/** Sent by Heroku in every export's header (`--headers`); 16+ characters, so it cannot be guessed. */
const TELEMETRY_TOKEN: SecretKind = {
  shape: /^[!-~]{16,1000}$/, what: 'a token of 16 to 1000 printable ASCII characters',
  literalError: () => 'telemetry_token must be an environment reference like ${MY_APP_TELEMETRY_TOKEN}: it authenticates the app\'s telemetry drain, and rules files are committed and shown',
};
const APP_TOKEN: SecretKind = {
  shape: /^\S+$/, what: 'a token',
  literalError: mustBeRef('heroku_api_token', 'MY_APP_HEROKU_TOKEN', 'API tokens are secrets'),
};

/**
 * Secret-bearing values stay `${VAR}` references into job data and are expanded by the worker;
 * here they are only checked: written as a reference (a value with any `${VAR}` counts), every
 * variable set, and the expanded value of the expected kind. Messages never include the value.
 */
function checkSecret(ref: string, kind: SecretKind, at: YamlPath, env: Readonly<Record<string, string | undefined>>, fail: Report): boolean {
  const refs = envRefs(ref);
  if (refs.length === 0) {
    const literal = kind.literalError(ref);
    if (literal) {
      fail(at, literal);
      return false;
    }
  }
  const unset = unsetRefs(refs, env);
  // load.ts has already reported each unset variable at this position.
  if (unset.length > 0) return false;
  if (!kind.shape.test(expandEnv(ref, env))) {
    fail(at, `expected ${kind.what}${refs.length ? ` in ${refs.map((n) => '${' + n + '}').join(', ')}` : ''}`);
    return false;
  }
  return true;
}

function compileRule(raw: RawRule, rawPredict: Partial<RawPredict> | undefined, at: YamlPath, env: Readonly<Record<string, string | undefined>>, fail: Report): CompiledRule | undefined {
  let ok = true;
  const bad: Report = (p, m, o) => { ok = false; fail(p, m, o); };

  const process = raw.match.process === undefined ? undefined : compileGlob(raw.match.process);
  if (process?.error) bad([...at, 'match', 'process'], process.error);

  let regex: RE2 | undefined;
  let captureNames: string[] = [];
  let literal = undefined as ReturnType<typeof requiredLiteral>;
  if (raw.match.message !== undefined) {
    try {
      regex = new RE2(raw.match.message);
      captureNames = [...raw.match.message.matchAll(NAMED_GROUP)].map((m) => m[1]!);
      literal = requiredLiteral(raw.match.message);
      // A pure literal (`^Error R14 `) is answered by startsWith/includes alone.
      if (literal?.exact && captureNames.length === 0) regex = undefined;
    } catch (e) {
      bad([...at, 'match', 'message'], regexError(e));
    }
  }

  const fields: [string, FieldCondition][] = [];
  for (const [key, cond] of Object.entries(raw.match.fields ?? {})) {
    const r = parseFieldCondition(cond);
    if (r.error) bad([...at, 'match', 'fields', key], r.error);
    else fields.push([key, r.condition!]);
  }

  const tpl = (source: string, p: YamlPath): Template | undefined => {
    const r = parseTemplate(source);
    for (const e of r.errors) bad(p, e);
    if (r.template && rawPredict === undefined && templateUses(r.template, 'prediction')) bad(p, '{{prediction}}: only a rule with predict: has a prediction');
    for (const name of r.template?.captureNames ?? []) {
      if (!captureNames.includes(name)) bad(p, `{{captures.${name}}}: the message regex has no named group (?<${name}>…)`);
    }
    return r.template;
  };

  const target = tpl(raw.target ?? RULE_DEFAULTS.target, [...at, 'target']);
  if (target && templateUses(target, 'target')) bad([...at, 'target'], 'target cannot use {{target}}');
  if (target) refuseShapedPrediction(target, [...at, 'target'], bad);

  const count = raw.threshold?.count ?? RULE_DEFAULTS.thresholdCount;
  if (count > RULE_BOUNDS.maxThresholdCount) bad([...at, 'threshold', 'count'], `count is at most ${RULE_BOUNDS.maxThresholdCount}`);
  const withinMs = parseDuration(raw.threshold?.within ?? RULE_DEFAULTS.thresholdWithin)!;
  if (withinMs < 1 || withinMs > RULE_BOUNDS.maxWithinMs) bad([...at, 'threshold', 'within'], 'within must be between 1ms and 7d');
  const cooldownMs = parseDuration(raw.cooldown ?? RULE_DEFAULTS.cooldown)!;
  // The window id is the firing time; a zero cooldown could give two firings one id.
  if (cooldownMs < 1000 || cooldownMs > RULE_BOUNDS.maxCooldownMs) bad([...at, 'cooldown'], 'cooldown must be between 1s and 30d');

  const grace = compileGrace(raw.grace, [...at, 'grace'], bad);
  const predict = rawPredict === undefined ? undefined : compilePredict(rawPredict, [...at, 'predict'], bad);

  const actions: ActionTemplate[] = [];
  raw.actions.forEach((a, j) => {
    const compiled = compileAction(a, [...at, 'actions', j], tpl, env, bad, rawPredict !== undefined);
    if (compiled) actions.push(compiled);
  });
  const onFailure: ActionTemplate[] = [];
  (raw.on_failure ?? []).forEach((a, j) => {
    const compiled = compileAction(a, [...at, 'on_failure', j], tpl, env, bad, rawPredict !== undefined);
    if (compiled) onFailure.push(compiled);
  });

  if (!ok || !target) return undefined;
  // Necessary, not sufficient: the key with its `=`, and an equality's value, appear in the text.
  // Values first: `H12` is in few router lines, `code=` in every error line, `service=` in all, and
  // a line is dropped at the first literal it lacks.
  const values = new Set<string>();
  const keys = new Set<string>();
  for (const [key, c] of fields) {
    keys.add(key + '=');
    if (c.kind === 'equals' && c.value.length > 0 && !/["\\\s]/.test(c.value)) values.add(c.value);
    if (c.kind === 'ratio') keys.add(c.other + '=');
  }
  // A predict rule reads only lines carrying its sample (and its limit's field): the others are
  // dropped by these literals before logfmt, and never reach the predictor.
  if (predict) {
    keys.add(predict.value + '=');
    if (predict.reaches.kind === 'percent') keys.add(predict.reaches.of + '=');
  }
  const fieldLiterals = new Set([...values, ...keys]);
  const usesFields = fields.length > 0 || predict !== undefined || target.usesFields || [...actions, ...onFailure].some((a) => actionTemplates(a).some((t) => t.usesFields));
  return Object.freeze({
    name: raw.name,
    description: raw.description,
    source: raw.match.source === 'any' ? undefined : (raw.match.source ?? RULE_DEFAULTS.source),
    process: process?.matcher,
    literal,
    literalBytes: literal === undefined ? undefined : literalBytes(literal.text),
    regex,
    captureNames: Object.freeze(captureNames),
    fields: Object.freeze(fields),
    fieldLiterals: Object.freeze([...fieldLiterals]),
    fieldLiteralBytes: Object.freeze([...fieldLiterals].map((t) => literalBytes(t))),
    usesFields,
    target,
    count,
    withinMs,
    cooldownMs,
    ...(predict ? { predict } : {}),
    dryRun: raw.dry_run ?? false,
    ...(grace ? { grace } : {}),
    actions: Object.freeze(actions),
    onFailure: Object.freeze(onFailure),
  });
}

/** `grace:` in ms; each given key between 1s and RULE_BOUNDS.maxGraceMs, at least one key. */
function compileGrace(raw: RawRule['grace'], at: YamlPath, bad: Report): RuleGrace | undefined {
  if (raw === undefined) return undefined;
  if (raw.after_start === undefined && raw.after_release === undefined) {
    bad(at, 'grace needs after_start, after_release or both (or leave it out)');
    return undefined;
  }
  let ok = true;
  const ms = (key: 'after_start' | 'after_release'): number => {
    const text = raw[key];
    if (text === undefined) return 0;
    const v = parseDuration(text)!;
    if (v < 1000 || v > RULE_BOUNDS.maxGraceMs) {
      ok = false;
      bad([...at, key], `${key} must be between 1s and 1h`);
    }
    return v;
  };
  const grace = { afterStartMs: ms('after_start'), afterReleaseMs: ms('after_release') };
  return ok ? Object.freeze(grace) : undefined;
}

/**
 * The prediction is a sentence (spaces), so a shape-checked value (target, key, hostname, dyno)
 * that holds it would reject every predicted firing. Refused at load: the body script casts a
 * predicted sample's vote before the firing's templates are rendered with the prediction, so a
 * rendering that could fail there would make it differ from judge().
 */
function refuseShapedPrediction(t: Template, at: YamlPath, bad: Report): void {
  if (templateUses(t, 'prediction')) bad(at, '{{prediction}} is a sentence with spaces: a key or a name cannot hold it (use it in a notify text or a stop key value)');
}

function compileAction(
  a: RawAction, at: YamlPath,
  tpl: (s: string, p: YamlPath) => Template | undefined,
  env: Readonly<Record<string, string | undefined>>, bad: Report, predicts = false,
): ActionTemplate | undefined {
  const ms = (d: string | undefined, fallback: string) => parseDuration(d ?? fallback)!;
  switch (a.type) {
    case 'redis-stop-key': {
      if (a.redis_url !== undefined) checkSecret(a.redis_url, REDIS_URL, [...at, 'redis_url'], env, bad);
      const key = tpl(a.key ?? RULE_DEFAULTS.stopKey, [...at, 'key']);
      if (key) refuseShapedPrediction(key, [...at, 'key'], bad);
      const value = tpl(a.value ?? RULE_DEFAULTS.stopKeyValue, [...at, 'value']);
      if (!key || !value) return undefined;
      return { type: a.type, key, value, ttlMs: ms(a.ttl, RULE_DEFAULTS.stopKeyTtl), ...(a.redis_url !== undefined ? { redisUrlRef: a.redis_url } : {}), ...(a.watch === false ? { watch: false as const } : {}) };
    }
    case 'sidekiq-stop': {
      if (a.redis_url !== undefined) checkSecret(a.redis_url, REDIS_URL, [...at, 'redis_url'], env, bad);
      const hostname = tpl(a.hostname ?? RULE_DEFAULTS.sidekiqHostname, [...at, 'hostname']);
      if (hostname) refuseShapedPrediction(hostname, [...at, 'hostname'], bad);
      if (!hostname) return undefined;
      return {
        type: a.type, hostname,
        ...(a.tag !== undefined ? { tag: a.tag } : {}),
        ...(a.namespace !== undefined ? { namespace: a.namespace } : {}),
        quietTimeoutMs: ms(a.quiet_timeout, RULE_DEFAULTS.quietTimeout),
        stopTimeoutMs: ms(a.stop_timeout, RULE_DEFAULTS.stopTimeout),
        ...(a.redis_url !== undefined ? { redisUrlRef: a.redis_url } : {}),
      };
    }
    case 'heroku-restart': {
      if (a.token !== undefined) checkSecret(a.token, ACTION_TOKEN, [...at, 'token'], env, bad);
      const dyno = tpl(a.dyno ?? RULE_DEFAULTS.herokuRestartDyno, [...at, 'dyno']);
      if (dyno) refuseShapedPrediction(dyno, [...at, 'dyno'], bad);
      if (!dyno) return undefined;
      return { type: a.type, scope: a.scope ?? RULE_DEFAULTS.herokuRestartScope, dyno, ...(a.token !== undefined ? { tokenRef: a.token } : {}) };
    }
    case 'notify': {
      checkSecret(a.url, NOTIFY_URL, [...at, 'url'], env, bad);
      const text = tpl(a.text ?? (predicts ? RULE_DEFAULTS.predictNotifyText : RULE_DEFAULTS.notifyText), [...at, 'text']);
      if (!text) return undefined;
      return { type: a.type, urlRef: a.url, text };
    }
  }
}
