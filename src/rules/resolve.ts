import type { ResolvedAction } from './Firing.js';
import type { ActionTemplate } from './CompiledRule.js';
import type { RuleMatch } from './match.js';
import { renderTemplate, slackEscape, type TemplateContext } from './template.js';
import { describeValue, hasShape, processTypeOf, type ShapeName } from './shapes.js';
import { RULE_BOUNDS } from './defaults.js';

/** A match with its templates rendered and every line-derived value shape-checked. */
export type Resolution =
  | { readonly ok: true; readonly target: string; readonly processType: string; readonly actions: readonly ResolvedAction[]; readonly triggerLine: string }
  | { readonly ok: false; readonly reason: string };

class Rejected extends Error {}

/**
 * Renders the rule's target and actions for one matched line. A value that would land in a Redis
 * key, a dyno name or a URL path and does not have that shape rejects the whole firing.
 */
export function resolveMatch(m: RuleMatch): Resolution {
  const { rule, event } = m;
  const base = {
    app: event.app,
    process: event.process,
    rule: rule.name,
    source: event.source,
    timestamp: event.timestamp,
    get message() { return event.message; },
    capture: (name: string) => m.captures?.[name] ?? '',
    field: (name: string) => m.fields?.get(name) ?? '',
  };
  try {
    const target = renderTemplate(rule.target, { ...base, target: '' } as TemplateContext);
    // The target becomes part of window/cooldown keys and usually a dyno name: key shape at least.
    check('redisKey', 'target', target);
    const ctx: TemplateContext = Object.assign(Object.create(null), base, { target, get message() { return event.message; } });
    const actions = rule.actions.map((a) => resolveAction(a, ctx, event.app));
    return { ok: true, target, processType: processTypeOf(target), actions, triggerLine: triggerLine(m) };
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
      return { type: a.type, key, value, ttlMs: a.ttlMs, ...(a.redisUrlRef !== undefined ? { redisUrlRef: a.redisUrlRef } : {}) };
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
  const line = `${e.timestamp} ${e.source}[${e.process}]: ${e.message}`;
  if (line.length * 3 <= RULE_BOUNDS.maxLineBytes) return line;
  const buf = Buffer.from(line, 'utf8');
  if (buf.length <= RULE_BOUNDS.maxLineBytes) return line;
  return buf.subarray(0, RULE_BOUNDS.maxLineBytes).toString('utf8');
}
