/**
 * `{{var}}` templates of the rules file (SPEC §4), parsed once at load; rendering only walks the
 * parsed parts. Unknown variables are load errors, so a typo cannot render as an empty string.
 */
import type { ActionTemplate } from './CompiledRule.js';

export const TEMPLATE_VARS = ['app', 'process', 'target', 'rule', 'source', 'message', 'timestamp', 'prediction'] as const;
type PlainVar = (typeof TEMPLATE_VARS)[number];

export type TemplatePart =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: PlainVar }
  | { readonly kind: 'captures' | 'fields'; readonly name: string };

export interface Template {
  readonly source: string;
  readonly parts: readonly TemplatePart[];
  /** True when the template never reads the log line (a constant or only rule/app data). */
  readonly usesFields: boolean;
  readonly captureNames: readonly string[];
}

/** What a template can read; captures and fields are looked up lazily. */
export interface TemplateContext {
  readonly app: string;
  readonly process: string;
  readonly target: string;
  readonly rule: string;
  readonly source: string;
  readonly message: string;
  readonly timestamp: string;
  /** A predict rule's forecast ("web.1 reaches 512 MB in ~12 min at 41 MB/h"); '' elsewhere. */
  readonly prediction: string;
  capture(name: string): string;
  field(name: string): string;
}

const VAR = /\{\{\s*([^{}]*?)\s*\}\}/g;
const NAME = /^[A-Za-z0-9_#.-]{1,100}$/;

export function parseTemplate(source: string): { template?: Template; errors: string[] } {
  const parts: TemplatePart[] = [];
  const errors: string[] = [];
  const captureNames: string[] = [];
  let usesFields = false;
  let last = 0;
  for (const m of source.matchAll(VAR)) {
    if (m.index > last) parts.push({ kind: 'text', text: source.slice(last, m.index) });
    last = m.index + m[0].length;
    const expr = m[1]!;
    if ((TEMPLATE_VARS as readonly string[]).includes(expr)) {
      parts.push({ kind: expr as PlainVar });
      continue;
    }
    const dot = expr.indexOf('.');
    const head = dot === -1 ? expr : expr.slice(0, dot);
    const name = dot === -1 ? '' : expr.slice(dot + 1);
    if ((head === 'captures' || head === 'fields') && NAME.test(name)) {
      parts.push({ kind: head, name });
      if (head === 'fields') usesFields = true;
      else captureNames.push(name);
      continue;
    }
    errors.push(`unknown template variable {{${expr}}} (known: ${TEMPLATE_VARS.join(', ')}, captures.NAME, fields.NAME)`);
  }
  const rest = source.slice(last);
  if (rest.includes('{{') || rest.includes('}}')) errors.push(`unbalanced braces in template ${JSON.stringify(source)}`);
  if (rest.length > 0) parts.push({ kind: 'text', text: rest });
  if (errors.length > 0) return { errors };
  return { template: Object.freeze({ source, parts: Object.freeze(parts), usesFields, captureNames }), errors };
}

/** `escapeValue` applies to the variables only: the operator's own text is kept as written. */
export function renderTemplate(t: Template, ctx: TemplateContext, escapeValue: (value: string) => string = (v) => v): string {
  let out = '';
  for (const p of t.parts) {
    switch (p.kind) {
      case 'text': out += p.text; break;
      case 'captures': out += escapeValue(ctx.capture(p.name)); break;
      case 'fields': out += escapeValue(ctx.field(p.name)); break;
      default: out += escapeValue(ctx[p.kind]);
    }
  }
  return out;
}

/**
 * Slack reads `<!channel>`, `<@U123>` and `<https://x|label>` in a webhook's text as a ping and a
 * masked link; a log line must not be able to do either. Its documented escaping is these three.
 */
export function slackEscape(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** True when the template uses the variable (`target` may not refer to itself). */
export function templateUses(t: Template, kind: TemplatePart['kind']): boolean {
  return t.parts.some((p) => p.kind === kind);
}

/** The templates an action renders. */
export function actionTemplates(a: ActionTemplate): Template[] {
  switch (a.type) {
    case 'redis-stop-key': return [a.key, a.value];
    case 'sidekiq-stop': return [a.hostname];
    case 'heroku-restart': return [a.dyno];
    case 'notify': return [a.text];
  }
}
