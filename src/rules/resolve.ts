import type { ResolvedAction } from './Firing.js';
import type { ActionTemplate, CompiledRule } from './CompiledRule.js';
import type { RuleMatch } from './match.js';
import { actionTemplates, renderTemplate, slackEscape, type Template, type TemplateContext } from './template.js';
import { describeValue, hasShape, processTypeOf, type ShapeName } from './shapes.js';
import { RULE_BOUNDS } from './defaults.js';
import { truncateUtf8 } from '../truncateUtf8.js';

/** A match with its templates rendered and every line-derived value shape-checked. */
export type Resolution =
  | { readonly ok: true; readonly target: string; readonly processType: string; readonly actions: readonly ResolvedAction[]; readonly onFailure: readonly ResolvedAction[]; readonly triggerLine: string }
  | { readonly ok: false; readonly reason: string };

class Rejected extends Error {}

/**
 * Renders the rule's target and actions for one matched line. A value that would land in a Redis
 * key, a dyno name or a URL path and does not have that shape rejects the whole firing.
 */
export function resolveMatch(m: RuleMatch, prediction = ''): Resolution {
  const { rule, event } = m;
  // A rule whose templates read only the line's header (app, process, source) and its own name
  // resolves every line of one kind to the same target and actions: they are kept per rule and
  // PROCID (a body's matches are a few rules' lines of a few dynos), only the trigger line made
  // per line. The same checks decided them, so a line answered from there is resolved as it
  // would have been; what is rejected is not kept.
  let kinds = memos.get(rule);
  if (kinds === undefined) memos.set(rule, (kinds = headerOnly(rule) ? new Map() : null));
  const memo = kinds?.get(event.process);
  if (memo !== undefined && memo.app === event.app && memo.source === event.source) {
    return { ok: true, target: memo.target, processType: memo.processType, actions: memo.actions, onFailure: memo.onFailure, triggerLine: triggerLine(m) };
  }
  const r = resolveMatchAfresh(m, prediction);
  if (kinds != null && r.ok) {
    // PROCID comes from the line: bounded as match.ts's kinds are, by starting over.
    if (kinds.size >= MAX_KINDS) kinds.clear();
    kinds.set(event.process, { app: event.app, source: event.source, target: r.target, processType: r.processType, actions: r.actions, onFailure: r.onFailure });
  }
  return r;
}

/** The template variables of a line's header and its rule, which a kind of line shares. */
const HEADER_VARS: ReadonlySet<string> = new Set(['text', 'app', 'process', 'target', 'rule', 'source']);

function headerOnly(rule: CompiledRule): boolean {
  const ok = (t: Template) => t.parts.every((p) => HEADER_VARS.has(p.kind));
  return ok(rule.target) && [...rule.actions, ...rule.onFailure].every((a) => actionTemplates(a).every(ok));
}

/** A rule's resolution of one PROCID's lines (of one app and APP-NAME). */
interface Memo {
  readonly app: string;
  readonly source: string;
  readonly target: string;
  readonly processType: string;
  readonly actions: readonly ResolvedAction[];
  readonly onFailure: readonly ResolvedAction[];
}

/** Per rule its resolutions by PROCID, or null when its templates read more than the header (a reload's new rules start without). */
const memos = new WeakMap<CompiledRule, Map<string, Memo> | null>();
const MAX_KINDS = 1024;

/** resolveMatch without the kept resolutions (exported for the test that holds the two equal). */
export function resolveMatchAfresh(m: RuleMatch, prediction = ''): Resolution {
  const { rule, event } = m;
  // The trigger line reads the message anyway, so it is read once here.
  const ctx: { -readonly [K in keyof TemplateContext]: TemplateContext[K] } = {
    app: event.app,
    process: event.process,
    target: '',
    rule: rule.name,
    source: event.source,
    message: event.message,
    timestamp: event.timestamp,
    prediction,
    capture: (name) => m.captures?.[name] ?? '',
    field: (name) => m.fields?.get(name) ?? '',
  };
  try {
    // `target` may not refer to itself (load refuses it), so it renders with target ''.
    const target = renderTemplate(rule.target, ctx);
    // The target becomes part of window/cooldown keys and usually a dyno name: key shape at least.
    check('redisKey', 'target', target);
    ctx.target = target;
    // Frozen: a memo shares them between the lines of one kind (resolveMatch).
    const actions = Object.freeze(rule.actions.map((a) => Object.freeze(resolveAction(a, ctx, event.app))));
    const onFailure = Object.freeze(rule.onFailure.map((a) => Object.freeze(resolveAction(a, ctx, event.app))));
    return { ok: true, target, processType: processTypeOf(target), actions, onFailure, triggerLine: triggerLine(m) };
  } catch (e) {
    if (e instanceof Rejected) return { ok: false, reason: e.message };
    throw e;
  }
}

function check(shape: ShapeName, what: string, value: string): void {
  if (!hasShape(shape, value)) throw new Rejected(`${what} ${describeValue(value)} is not a valid ${shape}`);
}

function resolveAction(a: ActionTemplate, ctx: TemplateContext, app: string): ResolvedAction {
  switch (a.type) {
    case 'redis-stop-key': {
      const key = renderTemplate(a.key, ctx);
      check('redisKey', 'stop key', key);
      const value = renderTemplate(a.value, ctx).slice(0, 200);
      return { type: a.type, key, value, ttlMs: a.ttlMs, ...(a.redisUrlRef !== undefined ? { redisUrlRef: a.redisUrlRef } : {}), ...(a.watch === false ? { watch: false as const } : {}) };
    }
    case 'sidekiq-stop': {
      const hostname = renderTemplate(a.hostname, ctx);
      check('dyno', 'sidekiq hostname', hostname);
      return {
        type: a.type, hostname, quietTimeoutMs: a.quietTimeoutMs, stopTimeoutMs: a.stopTimeoutMs,
        ...(a.tag !== undefined ? { tag: a.tag } : {}),
        ...(a.namespace !== undefined ? { namespace: a.namespace } : {}),
        ...(a.redisUrlRef !== undefined ? { redisUrlRef: a.redisUrlRef } : {}),
      };
    }
    case 'heroku-restart': {
      check('appName', 'app', app);
      const rendered = renderTemplate(a.dyno, ctx);
      let dyno = rendered;
      if (a.scope === 'process-type') {
        dyno = processTypeOf(rendered);
        check('processType', 'process type', dyno);
      } else {
        check('dyno', 'dyno', dyno);
      }
      return { type: a.type, app, scope: a.scope, dyno, ...(a.tokenRef !== undefined ? { tokenRef: a.tokenRef } : {}) };
    }
    case 'notify': {
      // The text goes in a JSON body, not a key or path: bounded, not shape-checked, and what
      // came from the line is escaped for Slack (no pings or masked links from a log line).
      return { type: a.type, urlRef: a.urlRef, text: renderTemplate(a.text, ctx, slackEscape).slice(0, 4000) };
    }
  }
}

/** `TIMESTAMP source[process]: message`, as `heroku logs` prints it, at most 64 KiB. */
export function triggerLine(m: RuleMatch): string {
  const e = m.event;
  return truncateUtf8(`${e.timestamp} ${e.source}[${e.process}]: ${e.message}`, RULE_BOUNDS.maxLineBytes);
}
