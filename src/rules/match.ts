import type { DrainEvent } from '../ingest/DrainEvent.js';
import { LogfmtFields } from '../ingest/logfmt.js';
import type { CompiledRule } from './CompiledRule.js';
import { testCondition } from './fieldCondition.js';
import { NEVER, RulePrefilter, bytePlanOf, type BytePlan } from './prefilter.js';

/** A line a rule matched, with what its templates may read. */
export interface RuleMatch {
  readonly rule: CompiledRule;
  readonly event: DrainEvent;
  /** Named groups of the message regex (absent groups are ''). */
  readonly captures: Readonly<Record<string, string>> | undefined;
  /** The line's logfmt fields, when a condition or template of the rule reads them. */
  readonly fields: ReadonlyMap<string, string> | undefined;
}

const NO_FIELDS: ReadonlyMap<string, string> = new Map();

/**
 * Appends to `out` every rule the event matches, in rule order. The cheap tests run first (APP-NAME
 * and the PROCID glob, remembered per kind of line; the regex's required literal; the fields'
 * literals), the regex only after them, and logfmt is parsed only for a rule with `fields` that
 * passed everything else (and then only the keys read: LogfmtFields). The literals are tested on
 * the line's bytes when the event offers it, so a line no rule can match is not even decoded.
 */
export function matchEvent(rules: readonly CompiledRule[], event: DrainEvent, out: RuleMatch[]): void {
  const source = event.source;
  const procId = event.process;
  // Only the rules whose APP-NAME and PROCID tests pass for this kind of line.
  const list = rulesForKind(rules, source, procId);
  if (list.length === 0) return;
  let message: string | undefined;
  let fields: ReadonlyMap<string, string> | undefined;
  // Until some rule needs the text itself, literals are looked for in the producer's bytes.
  const bytewise = event.messageIncludes !== undefined && event.messageStartsWith !== undefined;
  for (let i = 0; i < list.length; i++) {
    const rule = list[i]!;
    const lit = rule.literal;
    if (lit !== undefined) {
      const bytes = rule.literalBytes;
      if (message === undefined && bytewise && bytes !== undefined) {
        if (lit.anchored ? !event.messageStartsWith!(bytes) : !event.messageIncludes!(bytes)) continue;
      } else {
        message ??= event.message;
        if (lit.anchored ? !message.startsWith(lit.text) : !message.includes(lit.text)) continue;
      }
    }
    let captures: Record<string, string> | undefined;
    if (rule.regex !== undefined) {
      message ??= event.message;
      if (rule.captureNames.length === 0) {
        if (!rule.regex.test(message)) continue;
      } else {
        const m = rule.regex.exec(message);
        if (m === null) continue;
        captures = {};
        for (const name of rule.captureNames) captures[name] = m.groups?.[name] ?? '';
      }
    }
    const fieldLiterals = rule.fieldLiterals;
    if (fieldLiterals.length > 0) {
      let present = true;
      for (let j = 0; j < fieldLiterals.length && present; j++) {
        const bytes = rule.fieldLiteralBytes[j];
        if (message === undefined && bytewise && bytes !== undefined) present = event.messageIncludes!(bytes);
        else present = (message ??= event.message).includes(fieldLiterals[j]!);
      }
      if (!present) continue;
    }
    if (rule.usesFields) {
      message ??= event.message;
      // Read as asked (LogfmtFields): the rules read one or two keys of a line's nine or more.
      fields ??= message.includes('=') ? new LogfmtFields(message) : NO_FIELDS;
      let ok = true;
      for (let j = 0; j < rule.fields.length && ok; j++) {
        const [key, cond] = rule.fields[j]!;
        ok = testCondition(cond, key, fields);
      }
      if (!ok) continue;
    }
    out.push({ rule, event, captures, fields: rule.usesFields ? fields : undefined });
  }
}

/**
 * Whether matchEvent could match the event with any rule, from its header fields and byte tests
 * alone, never decoding the text: false only when every rule that passes the APP-NAME and PROCID
 * tests lacks a required literal (its regex's, or one of its fields'). A rule whose tests need the
 * text (no byte form of its literal, or an event without byte tests) counts as a possible match.
 * The ingest uses it to make no object at all for the lines no rule reads; how it decides, cheapest
 * test first, is prefilter.ts's RulePrefilter, compiled once per rules array (a reload's new array
 * gets its own on its first line).
 */
export function mayMatch(rules: readonly CompiledRule[], event: DrainEvent): boolean {
  let p = prefilter;
  if (p === undefined || p.rules !== rules) p = prefilter = new RulePrefilter(rules, kindPlan);
  return p.mayMatch(event);
}

let prefilter: RulePrefilter | undefined;
/** The byte plan of each kind's rules list (rulesForKind's lists are frozen and remembered: by identity). */
const plans = new WeakMap<readonly CompiledRule[], BytePlan>();

function kindPlan(rules: readonly CompiledRule[], source: string, procId: string): BytePlan {
  const list = rulesForKind(rules, source, procId);
  let plan = plans.get(list);
  if (plan === undefined) plans.set(list, (plan = list.length === 0 ? NEVER : bytePlanOf(list)));
  return plan;
}

/*
 * The rules whose APP-NAME and PROCID tests pass, remembered per (APP-NAME, PROCID): a drain
 * repeats a few dozen kinds (`heroku router`, `app web.1`), so most lines skip the per-rule tests
 * and the globs. PROCID comes from the line, so the table is bounded: when full it starts over
 * (one-off dynos `run.N` keep bringing new kinds; the kinds in use come back within lines). One
 * rules array at a time, by identity: compiled rule sets are frozen, and a reload starts a new table.
 */
const MAX_KINDS = 1024;
let kindsOf: readonly CompiledRule[] | undefined;
let kinds = new Map<string, Map<string, readonly CompiledRule[]>>();
let kindCount = 0;

function rulesForKind(rules: readonly CompiledRule[], source: string, procId: string): readonly CompiledRule[] {
  if (rules !== kindsOf) {
    kindsOf = rules;
    kinds = new Map();
    kindCount = 0;
  }
  let bySource = kinds.get(source);
  const known = bySource?.get(procId);
  if (known !== undefined) return known;
  if (kindCount >= MAX_KINDS) {
    kinds = new Map();
    kindCount = 0;
    bySource = undefined;
  }
  if (bySource === undefined) kinds.set(source, (bySource = new Map()));
  const passing = Object.freeze(rules.filter((r) => (r.source === undefined || r.source === source) && (r.process === undefined || r.process(procId))));
  bySource.set(procId, passing);
  kindCount++;
  return passing;
}
