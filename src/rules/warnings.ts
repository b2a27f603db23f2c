import type { RawAction, RawRule, RulesFile } from './schema.js';
import { RULE_DEFAULTS } from './defaults.js';
import { parseFieldCondition } from './fieldCondition.js';
import { requiredLiteral } from './literal.js';
import { parseTemplate } from './template.js';
import { processTypeOf } from './shapes.js';
import { unsetRefs } from './env.js';
import type { Report } from './compile.js';
import type { YamlPath } from './yamlPositions.js';

/**
 * A router line's logfmt keys that every router line carries (heroku-drain-protocol §3.2; some
 * may be empty, as `dyno=` on H10). request_id and protocol are missing from older lines.
 */
const ROUTER_FIELDS = ['at', 'method', 'path', 'host', 'fwd', 'dyno', 'connect', 'service', 'status', 'bytes'];

/** Also what /readyz says while no rule is loaded. */
export const NO_RULES_WARNING = 'rules: [] defines no rule: mallet reads every line and fires nothing, so all remediation is off';

/**
 * Things that load but will probably not do what was meant (`mallet check` prints them and
 * still exits 0): an action that does not fit the process it targets, a template that reads a
 * logfmt field the matched lines are not sure to carry, a restart with no token anywhere.
 */
export function ruleWarnings(file: RulesFile, rules: readonly (RawRule | undefined)[], env: Readonly<Record<string, string | undefined>>, warn: Report): void {
  // Valid, and easy to leave behind by accident (a template, a file emptied while editing): every
  // line is then read and none can fire.
  if (file.rules.length === 0) warn(['rules'], NO_RULES_WARNING);
  rules.forEach((rule, i) => {
    if (!rule) return;
    const at: YamlPath = ['rules', i];
    const type = targetProcessType(rule);
    const provided = providedFields(rule);
    checkFields(rule.target ?? RULE_DEFAULTS.target, [...at, rule.target === undefined ? 'match' : 'target'], provided, warn);
    rule.actions.forEach((a, j) => {
      const ap: YamlPath = [...at, 'actions', j];
      for (const [key, source] of templatesOf(a)) if (source !== undefined) checkFields(source, [...ap, key], provided, warn);
      checkFit(a, type, ap, warn);
      if (a.type === 'heroku-restart' && a.token === undefined) checkToken(file, env, ap, warn);
    });
  });
}

/** The process type every target of the rule has, when the rule says it; else undefined. */
function targetProcessType(rule: RawRule): string | undefined {
  const target = (rule.target ?? RULE_DEFAULTS.target).trim();
  if (/^\{\{\s*process\s*\}\}$/.test(target)) {
    const glob = rule.match.process;
    if (glob === undefined) return undefined;
    const type = processTypeOf(glob);
    // `web.*`, `worker.?`, `web.3`, `router`: a type written out before any wildcard.
    return /^[a-z][a-z0-9_]*$/.test(type) && (type === glob || glob[type.length] === '.') ? type : undefined;
  }
  const parsed = parseTemplate(target).template;
  if (parsed?.parts.every((p) => p.kind === 'text')) return processTypeOf(target);
  return undefined;
}

function checkFit(a: RawAction, type: string | undefined, at: YamlPath, warn: Report): void {
  if (type === undefined) return;
  if (type === 'router') {
    if (a.type !== 'notify') warn([...at, 'type'], `${a.type} targets "router", which is not a dyno: router lines name the dyno in their dyno= field (target: "{{fields.dyno}}")`);
    return;
  }
  if (a.type === 'redis-stop-key' && type !== 'web' && (a.key ?? RULE_DEFAULTS.stopKey).startsWith('puma::stop::')) {
    warn([...at, 'type'], `redis-stop-key on ${type}.* dynos: the puma::stop:: key is taken by the Puma plugin, which runs in web dynos (use sidekiq-stop for Sidekiq workers; ignore this if ${type} runs mallet/agent)`);
  }
  if (a.type === 'sidekiq-stop' && type === 'web') {
    warn([...at, 'type'], 'sidekiq-stop on web.* dynos: Sidekiq usually runs in worker dynos, and a web dyno has no Sidekiq process to quiet (use redis-stop-key for Puma)');
  }
}

/**
 * The logfmt keys every line the rule matches is sure to carry: the keys of its field conditions
 * (a condition on an absent key fails), the other field of a ratio, `key=` in the literal every
 * matching message contains, and the router's own keys when the rule reads only router lines.
 */
function providedFields(rule: RawRule): Set<string> {
  const out = new Set<string>();
  for (const [key, cond] of Object.entries(rule.match.fields ?? {})) {
    out.add(key);
    const c = parseFieldCondition(cond).condition;
    if (c?.kind === 'ratio') out.add(c.other);
  }
  if (rule.match.message !== undefined) {
    let literal: string | undefined;
    try { literal = requiredLiteral(rule.match.message)?.text; } catch { literal = undefined; }
    for (const m of (literal ?? '').matchAll(/(?:^|[\s])([A-Za-z0-9_#.-]{1,100})=/g)) out.add(m[1]!);
  }
  if ((rule.match.source ?? RULE_DEFAULTS.source) === 'heroku' && rule.match.process === 'router') for (const f of ROUTER_FIELDS) out.add(f);
  return out;
}

function checkFields(source: string, at: YamlPath, provided: Set<string>, warn: Report): void {
  const t = parseTemplate(source).template;
  if (!t) return;
  for (const p of t.parts) {
    if (p.kind !== 'fields' || provided.has(p.name)) continue;
    const hint = p.name === 'dyno'
      ? ' (router lines carry dyno=web.N: match process: router; runtime-metrics lines carry dyno=heroku.<id>.<uuid>, not a dyno name)'
      : '';
    warn(at, `{{fields.${p.name}}}: the lines this rule matches are not sure to carry ${p.name}= (name it under match.fields or in the message regex), so it may render empty${hint}`);
  }
}

function templatesOf(a: RawAction): [string, string | undefined][] {
  switch (a.type) {
    case 'redis-stop-key': return [['key', a.key], ['value', a.value]];
    case 'sidekiq-stop': return [['hostname', a.hostname]];
    case 'heroku-restart': return [['dyno', a.dyno]];
    case 'notify': return [['text', a.text]];
  }
}

function checkToken(file: RulesFile, env: Readonly<Record<string, string | undefined>>, at: YamlPath, warn: Report): void {
  if (unsetRefs(['HEROKU_API_TOKEN'], env).length === 0) return;
  const apps = file.apps ? Object.entries(file.apps) : undefined;
  const without = apps?.filter(([, a]) => a?.heroku_api_token === undefined).map(([n]) => n);
  if (without && without.length === 0) return;
  const where = without ? `apps ${without.join(', ')} have no heroku_api_token` : 'no app has a heroku_api_token';
  warn([...at, 'type'], `heroku-restart has no token: none on the action, ${where}, and HEROKU_API_TOKEN is not set (the step would fail)`);
}
