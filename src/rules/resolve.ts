import type { ResolvedAction } from './Firing.js';
import type { ActionTemplate } from './CompiledRule.js';
import type { RuleMatch } from './match.js';
import { renderTemplate, slackEscape, type TemplateContext } from './template.js';
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
    const actions = rule.actions.map((a) => resolveAction(a, ctx, event.app));
    const onFailure = rule.onFailure.map((a) => resolveAction(a, ctx, event.app));
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
